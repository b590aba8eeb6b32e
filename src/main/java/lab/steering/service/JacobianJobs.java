package lab.steering.service;

import com.fasterxml.jackson.annotation.JsonInclude;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.time.Instant;
import java.util.Iterator;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import lab.steering.config.LabConfig;
import lab.steering.jacobian.Analysis;
import org.jboss.logging.Logger;

/**
 * Analyses as in-memory jobs: submitted through the {@link WorkLimiter} (so they share its bounds with the
 * synchronous endpoint), polled for progress, cancelled at the next progress point. Finished jobs are kept up to
 * {@code lab.jacobian.jobs-kept}, oldest dropped first; nothing survives a restart.
 */
@ApplicationScoped
public class JacobianJobs {

    private static final Logger LOG = Logger.getLogger(JacobianJobs.class);

    public enum Status {
        QUEUED, RUNNING, DONE, FAILED, CANCELLED;

        public boolean finished() {
            return this == DONE || this == FAILED || this == CANCELLED;
        }

        @Override
        public String toString() {
            return name().toLowerCase();
        }
    }

    /** What GET /api/jacobian/jobs/{id} shows. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record View(String id, String status, double progress, String stage, String model, String method, int tokens,
                       Instant createdAt, Instant finishedAt, Boolean cancelRequested, Analysis.Result result,
                       String error) {
    }

    private static final class Job {
        final String id = UUID.randomUUID().toString();
        final JacobianService.Request request;
        final Instant createdAt = Instant.now();
        volatile Status status = Status.QUEUED;
        volatile double progress;
        volatile String stage = "queued";
        volatile boolean cancelRequested;
        volatile Analysis.Result result;
        volatile String error;
        volatile Instant finishedAt;
        volatile Future<?> future;

        Job(JacobianService.Request request) {
            this.request = request;
        }

        View view() {
            return new View(id, status.toString(), progress, stage, request.model().id(),
                    request.options().method().apiName(), request.ids().length,
                    createdAt, finishedAt, cancelRequested && !status.finished() ? Boolean.TRUE : null, result, error);
        }

        synchronized boolean start() {
            if (cancelRequested) {
                finish(Status.CANCELLED, null);
                return false;
            }
            status = Status.RUNNING;
            stage = "starting";
            return true;
        }

        synchronized void finish(Status s, String message) {
            finishedAt = Instant.now(); // before the status: eviction sorts finished jobs by it
            error = message;
            status = s;
            if (s == Status.DONE) {
                progress = 1;
                stage = "done";
            } else {
                stage = s.toString();
            }
        }
    }

    @Inject
    JacobianService service;
    @Inject
    WorkLimiter limiter;
    @Inject
    LabConfig config;

    private final Map<String, Job> jobs = new ConcurrentHashMap<>();

    /** Queues an analysis; {@link WorkLimiter.Busy} when the limiter is full (the job is then not kept). */
    public View submit(JacobianService.Request request) {
        Job job = new Job(request);
        jobs.put(job.id, job);
        try {
            job.future = limiter.submit(() -> {
                execute(job);
                return null;
            });
        } catch (WorkLimiter.Busy e) {
            jobs.remove(job.id);
            throw e;
        }
        evict();
        return job.view();
    }

    public Optional<View> get(String id) {
        return Optional.ofNullable(jobs.get(id)).map(Job::view);
    }

    /**
     * Requests cancellation: a queued job is cancelled at once (and leaves the queue); a running one stops at its
     * next progress point; a finished one is left as it is.
     */
    public Optional<View> cancel(String id) {
        Job job = jobs.get(id);
        if (job == null) {
            return Optional.empty();
        }
        synchronized (job) {
            if (!job.status.finished()) {
                job.cancelRequested = true;
                if (job.status == Status.QUEUED) {
                    Future<?> f = job.future;
                    if (f != null) {
                        f.cancel(false);
                        limiter.remove(f);
                    }
                    job.finish(Status.CANCELLED, null);
                }
            }
        }
        return Optional.of(job.view());
    }

    private void execute(Job job) {
        if (!job.start()) {
            return;
        }
        try {
            Analysis.Result r = service.run(job.request, (stage, fraction) -> {
                if (job.cancelRequested) {
                    throw new CancellationException("cancelled by request");
                }
                job.stage = stage;
                job.progress = fraction;
            });
            job.result = r;
            job.finish(Status.DONE, null);
        } catch (CancellationException e) {
            job.finish(Status.CANCELLED, null);
        } catch (RuntimeException | OutOfMemoryError e) {
            LOG.errorf(e, "Jacobian job %s failed", job.id);
            job.finish(Status.FAILED, e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()));
        }
    }

    /** Drops the oldest finished jobs beyond the configured number. */
    private void evict() {
        int keep = Math.max(0, config.jacobian().jobsKept());
        long finished = jobs.values().stream().filter(j -> j.status.finished()).count();
        if (finished <= keep) {
            return;
        }
        Iterator<Job> oldest = jobs.values().stream().filter(j -> j.status.finished())
                .sorted((a, b) -> a.finishedAt.compareTo(b.finishedAt)).iterator();
        for (long n = finished - keep; n > 0 && oldest.hasNext(); n--) {
            jobs.remove(oldest.next().id);
        }
    }
}
