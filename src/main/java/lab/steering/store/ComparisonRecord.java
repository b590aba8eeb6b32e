package lab.steering.store;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;
import java.time.OffsetDateTime;
import java.util.UUID;
import org.hibernate.annotations.JdbcTypeCode;
import org.hibernate.type.SqlTypes;

/**
 * One architecture comparison and its state (table comparison, migrations V4 and V5). For a batch, status, stage,
 * progress, error and finishedAt are the job's ({@link #jobId}), copied by a database trigger: read them, never
 * write them.
 */
@Entity
@Table(name = "comparison")
public class ComparisonRecord extends PanacheEntityBase {

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    @Column(name = "created_at", nullable = false)
    public OffsetDateTime createdAt;

    @Column(name = "finished_at")
    public OffsetDateTime finishedAt;

    /** queued, running, done, failed or cancelled. */
    @Column(nullable = false)
    public String status;

    /** 0..1. */
    @Column(nullable = false)
    public double progress;

    @Column(nullable = false)
    public String stage;

    public String error;

    @JdbcTypeCode(SqlTypes.ARRAY)
    @Column(nullable = false, columnDefinition = "text[]")
    public String[] models = new String[0];

    @Column(name = "prompt_count", nullable = false)
    public int promptCount;

    /** The batch's job (table job); null for one prompt answered at once. */
    @Column(name = "job_id")
    public UUID jobId;

    /** The validated request as JSON text. */
    @JdbcTypeCode(SqlTypes.JSON)
    @Column(nullable = false, columnDefinition = "jsonb")
    public String request;
}
