package lab.steering.service;

import io.quarkus.hibernate.orm.panache.Panache;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.transaction.Transactional;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Optional;
import lab.steering.store.ComparisonEntry;
import lab.steering.store.ComparisonRecord;

/** The comparisons and their entries in PostgreSQL (tables comparison, comparison_entry); JSON columns as text. */
@ApplicationScoped
public class ComparisonStore {

    /** A stored comparison with its entries (prompt order, then the request's model order is up to the caller). */
    public record Stored(ComparisonRecord record, List<ComparisonEntry> entries) {
    }

    @Transactional
    public long create(String[] models, int promptCount, String request, String status) {
        ComparisonRecord r = new ComparisonRecord();
        r.createdAt = OffsetDateTime.now();
        r.status = status;
        r.stage = status;
        r.models = models;
        r.promptCount = promptCount;
        r.request = request;
        r.persist();
        return r.id;
    }

    @Transactional
    public void delete(long id) {
        ComparisonRecord.deleteById(id);
    }

    @Transactional
    public void running(long id) {
        ComparisonRecord r = ComparisonRecord.findById(id);
        r.status = "running";
        r.stage = "starting";
    }

    /** Stores one entry and the progress it brings, in one transaction. */
    @Transactional
    public void add(long id, int promptIndex, String model, double combinedStableRank, String result,
                    double progress, String stage) {
        ComparisonEntry e = new ComparisonEntry();
        e.comparisonId = id;
        e.promptIndex = promptIndex;
        e.modelId = model;
        e.combinedStableRank = combinedStableRank;
        e.result = result;
        e.persist();
        ComparisonRecord r = ComparisonRecord.findById(id);
        r.progress = Math.min(1, progress);
        r.stage = stage;
    }

    @Transactional
    public void finish(long id, String status, String error) {
        ComparisonRecord r = ComparisonRecord.findById(id);
        if (r == null) {
            return;
        }
        r.status = status;
        r.stage = status;
        r.error = error;
        r.finishedAt = OffsetDateTime.now();
        if (status.equals("done")) {
            r.progress = 1;
        }
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

    /** Comparisons left queued or running by a previous run of the app: they will never finish. */
    @Transactional
    public int failInterrupted() {
        return Panache.getEntityManager().createNativeQuery("UPDATE comparison SET status = 'failed', stage = 'failed',"
                + " error = 'interrupted: the app stopped before it finished', finished_at = now()"
                + " WHERE status IN ('queued', 'running')").executeUpdate();
    }
}
