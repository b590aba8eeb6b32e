package lab.steering.service.analysis;

import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.annotation.JsonInclude;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.time.Instant;
import java.util.Optional;
import lab.steering.jacobian.Analysis;
import lab.steering.jacobian.Target;
import lab.steering.model.LanguageModel;
import lab.steering.service.jobs.JobKind;
import lab.steering.service.jobs.JobQueue;
import lab.steering.store.JobStore;

/**
 * Analyses as jobs of kind {@value #KIND} in the database ({@link JobQueue}): submitted here, run by any replica's
 * workers (through its {@link WorkLimiter}), polled for progress and cancelled from any replica. A running job
 * stops at its next progress point after a cancellation request. The newest lab.jobs.kept finished jobs are kept.
 */
@ApplicationScoped
public class JacobianJobs implements JobKind {

    public static final String KIND = "jacobian";

    /**
     * What GET /api/jacobian/jobs/{id} shows. {@code worker} is the instance that runs (or ran) it.
     * {@code estimateSeconds}: the time estimated when it was submitted ({@link JacobianService#cost});
     * {@code remainingSeconds}: until it is done, from the time it has run and its progress (before any progress,
     * and while queued, the estimate less the time run); absent once finished.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record View(String id, String status, double progress, String stage, String model, String method, int tokens,
                       Instant createdAt, Instant finishedAt, Boolean cancelRequested, Analysis.Result result,
                       String error, Integer attempts, String worker, Double estimateSeconds,
                       Double remainingSeconds) {
    }

    /** The validated request as stored in the job table, with the time estimated for it (null in older rows). */
    public record Payload(String prompt, long[] ids, String method, String dtype, int topK, int[] layers, String mode,
                          String component, boolean bothSigns, Double estimateSeconds) {

        public Payload(String prompt, long[] ids, String method, String dtype, int topK, int[] layers, String mode,
                       String component, boolean bothSigns) {
            this(prompt, ids, method, dtype, topK, layers, mode, component, bothSigns, null);
        }

        static Payload of(JacobianService.Request r, double estimateSeconds) {
            Analysis.Options o = r.options();
            return new Payload(r.prompt(), r.ids(), o.method().apiName(),
                    o.dtype() == DataType.FLOAT64 ? "float64" : "float32", o.topK(), o.layers(), o.mode().name(),
                    o.component().name(), o.bothSigns(), estimateSeconds);
        }
    }

    @Inject
    JacobianService service;
    @Inject
    JobQueue queue;

    @Override
    public String name() {
        return KIND;
    }

    /** Queues an analysis; {@link Busy} when the job queue is full (nothing is then stored). */
    public View submit(JacobianService.Request request) {
        return submit(request, null);
    }

    /** As above, with the client's Idempotency-Key (null: none): a retry gets the first request's job. */
    public View submit(JacobianService.Request request, String idempotencyKey) {
        double estimate = service.cost(request.model(), request.ids().length, request.options(), false).seconds();
        return view(queue.submit(KIND, request.model().id(), Payload.of(request, estimate), "Jacobian job",
                idempotencyKey));
    }

    public Optional<View> get(String id) {
        return queue.get(id, true).filter(j -> j.kind().equals(KIND)).map(this::view);
    }

    /**
     * Requests cancellation: a queued job is cancelled at once (it is never claimed); a running one stops at its
     * next progress point (on whichever replica runs it); a finished one is left as it is.
     */
    public Optional<View> cancel(String id) {
        if (queue.get(id, false).filter(j -> j.kind().equals(KIND)).isEmpty()) {
            return Optional.empty();
        }
        return queue.cancel(id).map(j -> j.finished() ? queue.get(id, true).orElse(j) : j).map(this::view);
    }

    /** The job's model id and stored request (for a page showing a job submitted on another replica). */
    public Optional<java.util.Map.Entry<String, Payload>> request(String id) {
        return queue.get(id, false).filter(j -> j.kind().equals(KIND))
                .map(j -> java.util.Map.entry(j.modelId(), queue.request(j, Payload.class)));
    }

    View view(JobStore.Job j) {
        Payload p = queue.request(j, Payload.class);
        return new View(j.id().toString(), j.status(), j.status().equals("done") ? 1 : j.progress(), j.stage(),
                j.modelId(), p.method(), p.ids().length, j.createdAt(), j.finishedAt(),
                j.cancelRequested() && !j.finished() ? Boolean.TRUE : null,
                queue.result(j, Analysis.Result.class), j.error(), j.attempts() == 0 ? null : j.attempts(), j.owner(),
                p.estimateSeconds(), remaining(j, p.estimateSeconds()));
    }

    /**
     * Seconds left: elapsed * (1 - p) / p once the progress is past 2 % (it is linear in the work done), else the
     * estimate less the time run; null when finished or when neither is known.
     */
    static Double remaining(JobStore.Job j, Double estimate) {
        if (j.finished()) {
            return null;
        }
        double p = j.progress();
        double elapsed = j.startedAt() == null || !j.status().equals("running") ? 0
                : Math.max(0, java.time.Duration.between(j.startedAt(), Instant.now()).toMillis() / 1000.0);
        if (elapsed > 0 && p >= 0.02) {
            return elapsed * (1 - p) / p;
        }
        return estimate == null ? null : Math.max(0, estimate - elapsed);
    }

    @Override
    public Outcome run(JobStore.Job job, Progress progress) {
        LanguageModel model = queue.model(job);
        Payload p = queue.request(job, Payload.class);
        Analysis.Method method = null;
        for (Analysis.Method m : Analysis.Method.values()) {
            if (m.apiName().equals(p.method())) {
                method = m;
            }
        }
        if (method == null) {
            throw new IllegalStateException("job " + job.id() + ": unknown method '" + p.method() + "'");
        }
        Analysis.Options options = service.options(method, p.dtype().equals("float64") ? DataType.FLOAT64
                        : DataType.FLOAT32, p.topK(), p.layers(), Target.Mode.valueOf(p.mode()),
                Target.Component.valueOf(p.component()), p.bothSigns());
        JacobianService.Request request = new JacobianService.Request(model, p.prompt(), p.ids(), options,
                Target.output(model.config().numLayers()));
        Analysis.Result r = service.run(request, progress::update);
        return () -> r;
    }
}
