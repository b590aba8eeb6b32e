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

/**
 * One steering operator in the library (table steering_operator, migration V2). Its tensors are in
 * {@link OperatorData}, written in the same transaction; a deferred trigger refuses a commit that leaves a row
 * without matching data.
 */
@Entity
@Table(name = "steering_operator")
public class OperatorRecord extends PanacheEntityBase {

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    @Column(nullable = false)
    public String name;

    @Column(nullable = false)
    public String description = "";

    @JdbcTypeCode(SqlTypes.ARRAY)
    @Column(nullable = false, columnDefinition = "text[]")
    public String[] tags = new String[0];

    @Column(name = "model_id", nullable = false)
    public String modelId;

    @Column(name = "model_fingerprint", nullable = false)
    public String modelFingerprint;

    @Column(name = "concept_prompt", nullable = false)
    public String conceptPrompt;

    /** JSON array of the concept's token ids. */
    @JdbcTypeCode(SqlTypes.JSON)
    @Column(name = "concept_ids", nullable = false, columnDefinition = "jsonb")
    public String conceptIds;

    @Column(nullable = false)
    public int layer;

    /** "full" or "lowrank". */
    @Column(nullable = false)
    public String form;

    /** null for the full form. */
    public Integer rank;

    @Column(nullable = false)
    public String dtype;

    @Column(name = "size_bytes", nullable = false)
    public long sizeBytes;

    @Column(nullable = false)
    public String sha256;

    /** The build report as JSON (null for imported operators). */
    @JdbcTypeCode(SqlTypes.JSON)
    @Column(columnDefinition = "jsonb")
    public String build;

    @Column(name = "created_at", nullable = false)
    public OffsetDateTime createdAt;
}
