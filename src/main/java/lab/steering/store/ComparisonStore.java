package lab.steering.store;

import io.quarkus.hibernate.orm.panache.Panache;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.transaction.Transactional;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.LongFunction;

/** The comparisons and their entries in PostgreSQL (tables comparison, comparison_entry); JSON columns as text. */
@ApplicationScoped
public class ComparisonStore {

    /** A stored comparison with its entries (prompt order, then the request's model order is up to the caller). */
    public record Stored(ComparisonRecord record, List<ComparisonEntry> entries) {
    }

    /** A comparison answered at once (no job): stored as running, its entries added, then finished. */
    @Transactional
    public long create(String[] models, int promptCount, String request) {
        return persist(models, promptCount, request, "running").id;
    }

    /**
     * A batch: the comparison (queued) and its job in one transaction, so that neither exists without the other;
     * {@code submit} queues the job for the new comparison's id and returns the job's id (it may throw
     * {@code Busy}: then nothing is stored).
     */
    @Transactional
    public long createBatch(String[] models, int promptCount, String request, LongFunction<UUID> submit) {
        ComparisonRecord r = persist(models, promptCount, request, "queued");
        r.jobId = submit.apply(r.id);
        return r.id;
    }

    private static ComparisonRecord persist(String[] models, int promptCount, String request, String status) {
        ComparisonRecord r = new ComparisonRecord();
        r.createdAt = Timestamps.now();
        r.status = status;
        r.stage = status;
        r.models = models;
        r.promptCount = promptCount;
        r.request = Columns.storableJson(request);
        r.persistAndFlush(); // the id, for the job's request
        return r;
    }

    private static final String UPSERT = "INSERT INTO comparison_entry (comparison_id, prompt_index, model_id, "
            + "combined_stable_rank, result) SELECT ?1, ?2, ?3, ?4, CAST(?5 AS jsonb) %s "
            + "ON CONFLICT (comparison_id, prompt_index, model_id) DO UPDATE "
            + "SET combined_stable_rank = EXCLUDED.combined_stable_rank, result = EXCLUDED.result";

    /** Stores one entry of a comparison answered at once (an entry already there is overwritten). */
    @Transactional
    public void add(long id, int promptIndex, String model, double combinedStableRank, String result) {
        Panache.getEntityManager().createNativeQuery(String.format(UPSERT, ""))
                .setParameter(1, id).setParameter(2, promptIndex).setParameter(3, model)
                .setParameter(4, combinedStableRank).setParameter(5, Columns.storableJson(result)).executeUpdate();
    }

    /**
     * Stores one entry of a batch for the worker that runs its job, fenced like every job write: only while
     * {@code job} is running under {@code owner} in attempt {@code attempt}; false (nothing written) otherwise. An
     * entry already there (an earlier attempt's) is overwritten: one row per comparison, prompt and model.
     */
    @Transactional
    public boolean add(UUID job, String owner, int attempt, long id, int promptIndex, String model,
                       double combinedStableRank, String result) {
        return Panache.getEntityManager().createNativeQuery(String.format(UPSERT, "WHERE EXISTS (SELECT 1 FROM job "
                        + "WHERE id = CAST(?6 AS uuid) AND owner = ?7 AND attempts = ?8 AND status = 'running')"))
                .setParameter(1, id).setParameter(2, promptIndex).setParameter(3, model)
                .setParameter(4, combinedStableRank).setParameter(5, Columns.storableJson(result))
                .setParameter(6, job.toString())
                .setParameter(7, owner).setParameter(8, attempt).executeUpdate() == 1;
    }

    /** The (prompt index, model) pairs already stored: "index/model". */
    @Transactional
    public Set<String> stored(long id) {
        List<?> rows = Panache.getEntityManager().createNativeQuery(
                "SELECT prompt_index || '/' || model_id FROM comparison_entry WHERE comparison_id = ?1")
                .setParameter(1, id).getResultList();
        Set<String> out = new HashSet<>();
        for (Object o : rows) {
            out.add((String) o);
        }
        return out;
    }

    /**
     * Finishes a comparison answered at once (a batch's state is its job's); returns it as stored (its times to the
     * microsecond), or null when it is not there.
     */
    @Transactional
    public ComparisonRecord finish(long id, String status, String error) {
        ComparisonRecord r = ComparisonRecord.findById(id);
        if (r == null) {
            return null;
        }
        r.status = status;
        r.stage = status;
        r.error = error;
        r.finishedAt = Timestamps.now();
        if (status.equals("done")) {
            r.progress = 1;
        }
        return r;
    }

    @Transactional
    public Optional<Stored> find(long id) {
        Optional<ComparisonRecord> r = ComparisonRecord.findByIdOptional(id);
        return r.map(rec -> new Stored(rec, ComparisonEntry.<ComparisonEntry>list(
                "comparisonId = ?1 ORDER BY promptIndex, id", id)));
    }

    @Transactional
    public Optional<ComparisonRecord> record(long id) {
        return ComparisonRecord.findByIdOptional(id);
    }

    /** Newest first. */
    @Transactional
    public List<ComparisonRecord> list(int limit) {
        return ComparisonRecord.<ComparisonRecord>find("ORDER BY createdAt DESC, id DESC").page(0, limit).list();
    }
}
