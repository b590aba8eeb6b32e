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

/** One /api/generate call as stored (table generation_run, migration V1). JSON columns hold plain JSON text. */
@Entity
@Table(name = "generation_run")
public class GenerationRun extends PanacheEntityBase {

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    @Column(name = "created_at", nullable = false)
    public OffsetDateTime createdAt;

    @Column(name = "model_id", nullable = false)
    public String modelId;

    @Column(nullable = false)
    public String prompt;

    /** The request's generation parameters. */
    @JdbcTypeCode(SqlTypes.JSON)
    @Column(nullable = false, columnDefinition = "jsonb")
    public String params;

    @Column(name = "prompt_tokens", nullable = false)
    public int promptTokens;

    @Column(nullable = false)
    public String completion;

    /** The generated tokens with ids and log-probabilities. */
    @JdbcTypeCode(SqlTypes.JSON)
    @Column(nullable = false, columnDefinition = "jsonb")
    public String tokens;

    @Column(name = "finish_reason", nullable = false)
    public String finishReason;

    @Column(name = "prompt_ms", nullable = false)
    public double promptMs;

    @Column(name = "per_token_ms", nullable = false)
    public double perTokenMs;
}
