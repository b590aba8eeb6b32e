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
 * One steering vector in the library (table steering_vector, migration V6), beside the operators. Its data, a GGUF
 * control vector, is in {@link VectorData}, written in the same transaction (a deferred trigger checks it).
 */
@Entity
@Table(name = "steering_vector")
public class VectorRecord extends PanacheEntityBase {

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

    /** "" for a file another tool wrote. */
    @Column(name = "concept_prompt", nullable = false)
    public String conceptPrompt = "";

    @Column(name = "contrast_prompt", nullable = false)
    public String contrastPrompt = "";

    /** JSON arrays of token ids. */
    @JdbcTypeCode(SqlTypes.JSON)
    @Column(name = "concept_ids", nullable = false, columnDefinition = "jsonb")
    public String conceptIds;

    @JdbcTypeCode(SqlTypes.JSON)
    @Column(name = "contrast_ids", nullable = false, columnDefinition = "jsonb")
    public String contrastIds;

    /** The app's layer numbering (as an operator's split layer), ascending. */
    @JdbcTypeCode(SqlTypes.ARRAY)
    @Column(nullable = false, columnDefinition = "integer[]")
    public int[] layers;

    @Column(nullable = false)
    public int dim;

    @Column(nullable = false)
    public String dtype;

    /** "built" or "imported". */
    @Column(nullable = false)
    public String source;

    @Column(name = "size_bytes", nullable = false)
    public long sizeBytes;

    @Column(nullable = false)
    public String sha256;

    @Column(name = "created_at", nullable = false)
    public OffsetDateTime createdAt;
}
