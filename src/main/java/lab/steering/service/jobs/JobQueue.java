package lab.steering.service.jobs;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Any;
import jakarta.enterprise.inject.Instance;
import jakarta.inject.Inject;
import java.net.InetAddress;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import javax.sql.DataSource;
import lab.steering.config.LabConfig;
import lab.steering.model.LanguageModel;
import lab.steering.service.Busy;
import lab.steering.service.ClientGone;
import lab.steering.service.Refusal;
import lab.steering.service.models.ModelRegistry;
import lab.steering.store.JobStore;
import org.jboss.logging.Logger;

/**
 * Long work as jobs in PostgreSQL (table {@code job}, V3__jobs.sql): submitted by any replica, claimed by any
 * replica's worker pool ({@link JobWorkers}) with {@code FOR UPDATE SKIP LOCKED}, progress and results readable
 * from every replica. The kinds are the {@link JobKind} beans; this instance runs all of them, its work going
 * through the {@link WorkLimiter} (so jobs and the synchronous endpoints share its bound on heavy work).
 */
@ApplicationScoped
public class JobQueue {

    private static final Logger LOG = Logger.getLogger(JobQueue.class);

    @Inject
    DataSource dataSource;
    @Inject
    LabConfig config;
    @Inject
    WorkLimiter limiter;
    @Inject
    ObjectMapper json;
    @Inject
    ModelRegistry registry;
    @Inject
    @Any
    Instance<JobKind> kindBeans;

    private volatile JobStore store;
    private volatile JobWorkers workers;
    private volatile String instanceId;

    void onStart(@Observes StartupEvent e) {
        int n = config.jobs().workers().orElse(Math.max(1, config.jacobian().maxRunning()));
        if (n <= 0) {
            LOG.infof("job workers: none on instance %s (lab.jobs.workers=0): jobs run on other replicas",
                    instanceId());
            return;
        }
        Map<String, JobKind> kinds = new LinkedHashMap<>();
        for (JobKind k : kindBeans) {
            kinds.put(k.name(), k);
        }
        workers = new JobWorkers(store(), settings(instanceId(), n), kinds, limiterExecutor(), jta(), json).start();
    }

    void onStop(@Observes ShutdownEvent e) {
        JobWorkers w = workers;
        if (w != null) {
            w.stop(5_000);
        }
    }

    /**
     * Draining: while on, this instance claims no new job (the running ones finish); other replicas take the
     * queue. For maintenance, and for tests that run jobs on a second worker pool.
     */
    public void drain(boolean on) {
        JobWorkers w = workers;
        if (w != null) {
            w.pause(on);
        }
    }

    /** This instance's id: lab.jobs.instance-id, else the host name and a random suffix. */
    public String instanceId() {
        if (instanceId == null) {
            instanceId = config.jobs().instanceId().filter(s -> !s.isBlank()).orElseGet(() -> {
                String host;
                try {
                    host = InetAddress.getLocalHost().getHostName();
                } catch (Exception ex) {
                    host = "instance";
                }
                return host + "-" + UUID.randomUUID().toString().substring(0, 8);
            });
        }
        return instanceId;
    }

    public JobStore store() {
        if (store == null) {
            store = new JobStore(dataSource);
        }
        return store;
    }

    /** The worker settings from the configuration, for {@code instance} with {@code n} workers. */
    public JobWorkers.Settings settings(String instance, int n) {
        LabConfig.Jobs j = config.jobs();
        return new JobWorkers.Settings(instance, n, j.leaseSeconds(), j.pollMs(), j.progressWriteMs(), j.kept());
    }

    /** Jobs run through the limiter; a worker claims only while the limiter has a free running slot. */
    JobWorkers.Executor limiterExecutor() {
        return new JobWorkers.Executor() {
            @Override
            public boolean hasCapacity() {
                return limiter.hasIdleWorker();
            }

            @Override
            public <T> T run(Callable<T> task) {
                return limiter.run(task);
            }
        };
    }

    /** A JTA transaction (the datasource's connections join it, as do Panache calls). */
    public static JobWorkers.Transactions jta() {
        return new JobWorkers.Transactions() {
            @Override
            public <T> T inTransaction(Supplier<T> work) {
                try {
                    return QuarkusTransaction.requiringNew().call(work::get);
                } catch (RuntimeException e) {
                    for (Throwable t = e; t != null; t = t.getCause()) {
                        if (t instanceof JobStore.LeaseLost lost) {
                            throw lost;
                        }
                        if (t instanceof Refusal r) {
                            throw r;
                        }
                    }
                    throw e;
                }
            }
        };
    }

    private int maxQueued() {
        return config.jobs().maxQueued().orElse(Math.max(0, config.jacobian().maxQueued()));
    }

    /**
     * Queues a job of {@code kind} (its request serialised as JSON); {@link Busy} when the queue
     * (all replicas) already holds lab.jobs.max-queued jobs. {@code what} names the work in that message.
     */
    public JobStore.Job submit(String kind, String modelId, Object request, String what) {
        return submit(kind, modelId, request, what, (String) null);
    }

    /**
     * As above, with the client's Idempotency-Key (null: none). A key already held by a job of this kind that was
     * submitted with the same request gives that job, whatever its state, instead of a new one: a retried POST
     * follows the first one's work and gets its result. The same key with another request is refused (422
     * idempotency_key_reused); a key that is not 1 to 255 printable ASCII characters is 400
     * invalid_idempotency_key.
     */
    public JobStore.Job submit(String kind, String modelId, Object request, String what, String idempotencyKey) {
        String body = write(kind, request);
        return submit(kind, modelId, body, what, key(idempotencyKey, kind, modelId + "\n" + body));
    }

    /**
     * A client's Idempotency-Key and the hash of what its request asks for (the validated request, not anything
     * the submission adds, such as the id of a row it creates).
     */
    public record Key(String key, String requestHash) {
    }

    /** The key of a request ({@code identity}: what it asks for, as JSON); null when the client sent none. */
    public Key key(String idempotencyKey, String kind, Object identity) {
        if (idempotencyKey == null) {
            return null;
        }
        checkKey(idempotencyKey);
        String text = identity instanceof String t ? t : write(kind, identity);
        return new Key(idempotencyKey, lab.steering.steer.OperatorFile.sha256(
                (kind + "\n" + text).getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }

    /**
     * The job an earlier request with this key queued, if it is still kept and asked for the same thing (422
     * idempotency_key_reused when it asked for something else). Submissions that create rows before their job
     * (comparisons, evaluations) look here first.
     */
    public Optional<JobStore.Job> earlier(String kind, Key key, String what) {
        if (key == null) {
            return Optional.empty();
        }
        return store().findByKey(kind, key.key()).map(k -> {
            if (!key.requestHash().equals(k.requestHash())) {
                throw new Refusal(Refusal.Kind.UNPROCESSABLE, "idempotency_key_reused",
                        "Idempotency-Key '" + key.key() + "' was used for"
                        + " another " + what + " request (job " + k.job().id() + "); a new request needs a new key",
                        k.job().id());
            }
            return k.job();
        });
    }

    /**
     * For submissions that create a row before their job (comparisons, evaluations): the row an earlier request
     * with this key created, {@code rowOf} reading its id from that job's request and {@code get} the row; 409
     * idempotency_key_reused when the row was deleted since. Empty when the key is new (or there is none).
     */
    public <T> Optional<T> earlierRow(String kind, Key key, String what,
                                      java.util.function.ToLongFunction<JobStore.Job> rowOf,
                                      java.util.function.LongFunction<Optional<T>> get) {
        return earlier(kind, key, what).map(job -> get.apply(rowOf.applyAsLong(job)).orElseThrow(
                () -> new Refusal(Refusal.Kind.CONFLICT, "idempotency_key_reused", "the " + what
                        + " of Idempotency-Key '" + key.key() + "' was deleted; a new request needs a new key",
                        job.id())));
    }

    /**
     * Queues the job ({@code request}: its JSON), or gives the one the key already holds. Inside a transaction that
     * created rows for the job, a concurrent submission with the same key makes this one fail (409
     * idempotency_key_in_use), so that its rows roll back; the client's retry then finds the winner's job.
     */
    public JobStore.Job submit(String kind, String modelId, String request, String what, Key key) {
        Optional<JobStore.Job> first = earlier(kind, key, what);
        if (first.isPresent()) {
            return first.get();
        }
        UUID id = UUID.randomUUID();
        int max = maxQueued();
        switch (store().insert(id, kind, modelId, request, Math.max(1, config.jobs().maxAttempts()), max,
                key == null ? null : key.key(), key == null ? null : key.requestHash())) {
            case QUEUED -> {
            }
            case KEY_TAKEN -> {
                JobStore.Job other = earlier(kind, key, what).orElseThrow();
                throw new Refusal(Refusal.Kind.CONFLICT, "idempotency_key_in_use",
                        "another " + what + " request with Idempotency-Key '"
                        + key.key() + "' queued job " + other.id() + " at the same moment; retry with the same key"
                        + " to follow it", other.id());
            }
            default -> {
                int retry = limiter.retryAfterSeconds();
                throw new Busy(what + " refused: the job queue is full (" + max + " queued, the limit;"
                        + " lab.jobs.max-queued); retry in about " + retry + " s", retry);
            }
        }
        wake();
        return store().find(id, false).orElseThrow(() -> new IllegalStateException("job " + id + " vanished"));
    }

    private String write(String kind, Object request) {
        try {
            return json.writeValueAsString(request);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("the " + kind + " request is not serialisable: " + e.getMessage(), e);
        }
    }

    /** An Idempotency-Key header's value: null (none) or 1..255 printable ASCII characters. */
    private static void checkKey(String key) {
        if (key == null) {
            return;
        }
        boolean ok = !key.isEmpty() && key.length() <= 255;
        for (int i = 0; ok && i < key.length(); i++) {
            char c = key.charAt(i);
            ok = c >= 0x20 && c <= 0x7e;
        }
        if (!ok) {
            throw new Refusal(Refusal.Kind.INVALID, "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 printable ASCII"
                    + " characters, got " + (key.isEmpty() ? "an empty value" : key.length() + " characters"));
        }
    }

    /**
     * Wakes this instance's idle workers: a job was just queued here ({@link #submit} does it; a caller that
     * submits inside a transaction calls it again after the commit, when the job becomes visible to them).
     */
    public void wake() {
        JobWorkers w = workers;
        if (w != null) {
            w.wake();
        }
    }

    /** The job by its id (any text: not a UUID is simply not found). */
    public Optional<JobStore.Job> get(String id, boolean withResult) {
        return uuid(id).flatMap(u -> store().find(u, withResult));
    }

    /** Requests cancellation (see {@link JobStore#cancel}). */
    public Optional<JobStore.Job> cancel(String id) {
        Optional<JobStore.Job> j = uuid(id).flatMap(u -> store().cancel(u));
        JobWorkers w = workers;
        if (w != null && j.isPresent() && j.get().cancelRequested()) {
            w.requestCancel(j.get().id());
        }
        return j;
    }

    /**
     * Waits until the job is finished (whichever replica runs it) and returns it with its result; a failed or
     * cancelled job throws a {@link Refusal}: its own status and code when the work refused, else 500 job_failed
     * (409 cancelled).
     */
    public JobStore.Job await(UUID id, String what) {
        return await(id, what, java.time.Duration.ofMillis((long) (config.jobs().waitSeconds() * 1000)));
    }

    /**
     * As {@link #await(UUID, String)}, waiting at most {@code patience}: past it the job is cancelled and a 504
     * {@link Refusal} names it (a request never waits without bound). When the HTTP client of the waiting request
     * goes away ({@link ClientGone}) the job is cancelled too.
     */
    public JobStore.Job await(UUID id, String what, java.time.Duration patience) {
        BooleanSupplier gone = ClientGone.watch();
        long deadline = System.nanoTime() + patience.toNanos();
        long sleep = 10;
        while (true) {
            JobStore.Job j;
            try {
                j = store().find(id, false)
                        .orElseThrow(
                () -> new Refusal(Refusal.Kind.FAILED, "job_lost",
                                what + ": job " + id + " was deleted", id));
            } catch (IllegalStateException e) {
                if (!lab.steering.store.DatabaseErrors.unavailable(e)) {
                    throw e;
                }
                throw new Refusal(Refusal.Kind.UNAVAILABLE, "database_unavailable",
                        "the database became unavailable while waiting for "
                        + what + " (job " + id + "); the job goes on once it is back: follow it at /api/jobs/" + id
                        + ", or retry with the same Idempotency-Key to get its result", id);
            }
            if (j.finished()) {
                j = store().find(id, true).orElseThrow();
                switch (j.status()) {
                    case "done" -> {
                        return j;
                    }
                    case "cancelled" -> throw new Refusal(Refusal.Kind.CONFLICT, "cancelled",
                            what + " (job " + id + ") was cancelled",
                            id);
                    default -> throw new Refusal(j.errorStatus() == null ? Refusal.Kind.FAILED
                            : Refusal.Kind.of(j.errorStatus()),
                            j.errorCode() == null ? "job_failed" : j.errorCode(),
                            j.errorStatus() == null ? what + " failed (job " + id + "): " + j.error() : j.error(), id);
                }
            }
            if (gone.getAsBoolean()) {
                cancel(id.toString());
                throw new ClientGone.Abandoned("the client closed its connection; " + what + " (job " + id
                        + ") was cancelled");
            }
            if (System.nanoTime() - deadline > 0) {
                cancel(id.toString());
                throw new Refusal(Refusal.Kind.TIMEOUT, "timeout",
                        String.format(java.util.Locale.ROOT, "%s (job %s) did not finish"
                        + " within %.0f s (lab.jobs.wait-seconds) and was cancelled", what, id,
                        patience.toMillis() / 1000.0), id);
            }
            try {
                Thread.sleep(sleep);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CancellationException("interrupted while waiting for job " + id);
            }
            sleep = Math.min(200, sleep * 2);
        }
    }

    /** The job's result read back as {@code type}. */
    public <T> T result(JobStore.Job job, Class<T> type) {
        return read(job.result(), type, "result of job " + job.id());
    }

    /** The job's request read back as {@code type}. */
    public <T> T request(JobStore.Job job, Class<T> type) {
        return read(job.request(), type, "request of job " + job.id());
    }

    private <T> T read(String text, Class<T> type, String what) {
        if (text == null) {
            return null;
        }
        try {
            return json.readValue(text, type);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(what + " is not readable as " + type.getSimpleName() + ": "
                    + e.getOriginalMessage(), e);
        }
    }

    /**
     * The model a job needs, as loaded on this instance; a Refusal (404 unknown_model) naming this instance when it
     * does not have it (the job then fails with that message).
     */
    public LanguageModel model(JobStore.Job job) {
        return model(job, job.modelId());
    }

    /** Model {@code id}, which the job needs (a job that needs several names them in its request); as above. */
    public LanguageModel model(JobStore.Job job, String id) {
        return registry.find(id).orElseThrow(() -> registry.unknownModel(id, " on instance " + instanceId(),
                "; the " + job.kind() + " job cannot run here"));
    }

    private static Optional<UUID> uuid(String id) {
        try {
            return id == null ? Optional.empty() : Optional.of(UUID.fromString(id));
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }
}
