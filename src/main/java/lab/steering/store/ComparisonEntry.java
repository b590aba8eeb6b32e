package lab.steering.store;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;
import org.hibernate.annotations.JdbcTypeCode;
import org.hibernate.type.SqlTypes;

/** One prompt's analysis on one model within a comparison (table comparison_entry, migration V4). */
@Entity
@Table(name = "comparison_entry")
public class ComparisonEntry extends PanacheEntityBase {

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    @Column(name = "comparison_id", nullable = false)
    public long comparisonId;

    @Column(name = "prompt_index", nullable = false)
    public int promptIndex;

    @Column(name = "model_id", nullable = false)
    public String modelId;

    @Column(name = "combined_stable_rank", nullable = false)
    public double combinedStableRank;

    /** The entry (ComparisonService.Entry) as JSON text. */
    @JdbcTypeCode(SqlTypes.JSON)
    @Column(nullable = false, columnDefinition = "jsonb")
    public String result;
}
