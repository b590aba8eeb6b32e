package lab.steering.store;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;
import java.time.OffsetDateTime;
import org.hibernate.annotations.JdbcTypeCode;
import org.hibernate.type.SqlTypes;

/** One POST /api/steer comparison as stored (table steering_run, migration V2). JSON columns hold JSON text. */
@Entity
@Table(name = "steering_run")
public class SteeringRun extends PanacheEntityBase {

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    @Column(name = "created_at", nullable = false)
    public OffsetDateTime createdAt;

    @Column(name = "model_id", nullable = false)
    public String modelId;

    /** The operator steered with (null for vector steering, or once the operator is deleted). */
    @Column(name = "operator_id")
    public Long operatorId;

    /** The saved vector steered with (null otherwise, or once the vector is deleted). */
    @Column(name = "vector_id")
    public Long vectorId;

    /** "operator" or "vector" (a saved vector, or one built for this run). */
    @Column(nullable = false)
    public String kind;

    @JdbcTypeCode(SqlTypes.JSON)
    @Column(nullable = false, columnDefinition = "jsonb")
    public String request;

    @JdbcTypeCode(SqlTypes.JSON)
    @Column(nullable = false, columnDefinition = "jsonb")
    public String normal;

    @JdbcTypeCode(SqlTypes.JSON)
    @Column(nullable = false, columnDefinition = "jsonb")
    public String steered;

    @JdbcTypeCode(SqlTypes.JSON)
    @Column(nullable = false, columnDefinition = "jsonb")
    public String diagnostics;
}
