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
 * One steering-benchmark run (table evaluation, migration V7). Status, stage, progress, error and finishedAt are its
 * job's ({@link #jobId}), copied by a database trigger: read them, never write them.
 */
@Entity
@Table(name = "evaluation")
public class EvaluationRecord extends PanacheEntityBase {

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

    @Column(name = "model_id", nullable = false)
    public String modelId;

    @Column(name = "suite_id")
    public Long suiteId;

    @Column(name = "suite_name", nullable = false)
    public String suiteName;

    @Column(name = "job_id")
    public UUID jobId;

    /** The validated request (settings and suite) as JSON text. */
    @JdbcTypeCode(SqlTypes.JSON)
    @Column(nullable = false, columnDefinition = "jsonb")
    public String request;

    /** Done: the result (lab.steering.eval.SteeringBenchmark.Result) as JSON text. */
    @JdbcTypeCode(SqlTypes.JSON)
    @Column(columnDefinition = "jsonb")
    public String result;
}
