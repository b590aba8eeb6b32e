package lab.steering.store;

import io.quarkus.hibernate.orm.panache.Panache;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.transaction.Transactional;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.function.LongFunction;

/** Suites and evaluations in PostgreSQL (tables eval_suite, evaluation; V7); JSON columns as text. */
@ApplicationScoped
public class EvaluationStore {

    /** An evaluation in a list: no request, no result. */
    public record Listed(long id, String status, double progress, String stage, java.time.OffsetDateTime createdAt,
                         java.time.OffsetDateTime finishedAt, String model, String suite) {
    }

    @Transactional
    public EvalSuiteRecord createSuite(String name, int concepts, int prompts, String json) {
        EvalSuiteRecord r = new EvalSuiteRecord();
        r.createdAt = Timestamps.now();
        r.name = name;
        r.conceptCount = concepts;
        r.promptCount = prompts;
        r.suite = Columns.storableJson(json);
        r.persistAndFlush();
        return r;
    }

    @Transactional
    public Optional<EvalSuiteRecord> suite(long id) {
        return EvalSuiteRecord.findByIdOptional(id);
    }

    /** Newest first, without their JSON. */
    @Transactional
    public List<EvalSuiteRecord> suites(int limit) {
        return EvalSuiteRecord.<EvalSuiteRecord>find("ORDER BY createdAt DESC, id DESC").page(0, limit).list();
    }

    /**
     * An evaluation (queued) and its job in one transaction; {@code submit} queues the job for the new id and
     * returns the job's id (it may throw {@code Busy}: then nothing is stored).
     */
    @Transactional
    public long create(String model, Long suiteId, String suiteName, String request, LongFunction<UUID> submit) {
        EvaluationRecord r = new EvaluationRecord();
        r.createdAt = Timestamps.now();
        r.status = "queued";
        r.stage = "queued";
        r.modelId = model;
        r.suiteId = suiteId;
        r.suiteName = suiteName;
        r.request = Columns.storableJson(request);
        r.persistAndFlush();
        r.jobId = submit.apply(r.id);
        return r.id;
    }

    /**
     * Writes the result; joins the transaction that marks the job done (the job's commit), so the result is stored
     * only if this worker still holds the job. False when the evaluation is gone.
     */
    @Transactional
    public boolean result(long id, String json) {
        return Panache.getEntityManager().createNativeQuery("UPDATE evaluation SET result = CAST(?1 AS jsonb) "
                + "WHERE id = ?2").setParameter(1, Columns.storableJson(json)).setParameter(2, id).executeUpdate() == 1;
    }

    @Transactional
    public Optional<EvaluationRecord> find(long id) {
        return EvaluationRecord.findByIdOptional(id);
    }

    /** Newest first. */
    @Transactional
    public List<Listed> list(int limit) {
        List<Object[]> rows = Panache.getEntityManager().createQuery("SELECT e.id, e.status, e.progress, e.stage, "
                + "e.createdAt, e.finishedAt, e.modelId, e.suiteName FROM EvaluationRecord e "
                + "ORDER BY e.createdAt DESC, e.id DESC", Object[].class).setMaxResults(limit).getResultList();
        return rows.stream().map(r -> new Listed((Long) r[0], (String) r[1], (Double) r[2], (String) r[3],
                (java.time.OffsetDateTime) r[4], (java.time.OffsetDateTime) r[5], (String) r[6], (String) r[7]))
                .toList();
    }
}
