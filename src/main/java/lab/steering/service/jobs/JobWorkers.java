package lab.steering.service.jobs;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import lab.steering.service.Busy;
import lab.steering.service.Refusal;
import lab.steering.store.JobStore;
import org.jboss.logging.Logger;

/**
 * One instance's worker pool for the job table: {@code workers} threads claim queued jobs of the kinds this
 * instance knows, oldest first, and run them; a timer renews the leases of the running jobs (and reads their
 * cancellation flags) every third of the lease, and reaps expired leases of every instance. A worker stops its job
 * at the next progress point when cancellation was requested, when its lease was lost, or when the instance stops
 * (a graceful stop gives the job back to the queue without counting the attempt). Not a CDI bean: the app has one
 * ({@link JobQueue}), a test can start several with different instance ids on one database.
 */
public final class JobWorkers implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(JobWorkers.class);

    /** Where a claimed job's work runs: the app's {@link WorkLimiter}, or the worker thread itself. */
    public interface Executor {
        /** Whether a job claimed now would start at once (a worker does not claim otherwise). */
        boolean hasCapacity();

        /** Runs the task and waits for it; {@link Busy} when refused. */
        <T> T run(Callable<T> task);

        /** Runs on the calling thread, always has capacity. */
        Executor DIRECT = new Executor() {
            @Override
            public boolean hasCapacity() {
                return true;
            }

            @Override
            public <T> T run(Callable<T> task) {
                try {
                    return task.call();
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        };
    }

    /** Runs work in one database transaction (the app: a JTA transaction; the datasource's connections join it). */
    public interface Transactions {
        <T> T inTransaction(Supplier<T> work);

        Transactions NONE = Supplier::get;
    }

    /**
     * @param leaseSeconds        a running job's lease; renewed every third of it
     * @param pollMillis          how often an idle worker looks for queued jobs (a local submission wakes it at once)
     * @param progressWriteMillis at most one progress write per job in this time (the heartbeat writes it too)
     * @param keepFinished        finished jobs kept in the table (older ones deleted by the timer)
     */
    public record Settings(String instanceId, int workers, double leaseSeconds, long pollMillis,
                           long progressWriteMillis, int keepFinished) {
    }

    /** A job this instance runs now. */
    private static final class Running {
        final JobStore.Job job;
        final Thread thread;
        volatile String stage = "starting";
        volatile double progress;
        volatile boolean cancelRequested;
        volatile boolean lost;
        volatile long lastWrite;
        volatile boolean written; // the first progress point always writes (and reads the cancel flag)

        Running(JobStore.Job job, Thread thread) {
            this.job = job;
            this.thread = thread;
        }
    }

    private final JobStore store;
    private final Settings settings;
    private final Map<String, JobKind> kinds;
    private final Executor executor;
    private final Transactions tx;
    private final ObjectMapper json;
    private final List<Thread> threads = new ArrayList<>();
    private final Map<UUID, Running> running = new ConcurrentHashMap<>();
    private final Object wake = new Object();
    private ScheduledExecutorService timer;
    private volatile boolean stopping;
    private volatile boolean halted;
    private volatile boolean paused;
    private volatile boolean failing; // the database answered with an error last time (logged once per streak)
    private long ticks;

    public JobWorkers(JobStore store, Settings settings, Map<String, JobKind> kinds, Executor executor,
                      Transactions tx, ObjectMapper json) {
        this.store = store;
        this.settings = settings;
        this.kinds = Map.copyOf(kinds);
        this.executor = executor;
        this.tx = tx;
        this.json = json;
    }

    public String instanceId() {
        return settings.instanceId();
    }

    public synchronized JobWorkers start() {
        if (!threads.isEmpty()) {
            return this;
        }
        long beatMs = Math.max(50, (long) (settings.leaseSeconds() * 1000 / 3));
        timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "jobs-timer-" + settings.instanceId());
            t.setDaemon(true);
            return t;
        });
        timer.scheduleWithFixedDelay(this::tick, 0, beatMs, TimeUnit.MILLISECONDS);
        for (int i = 0; i < Math.max(1, settings.workers()); i++) {
            Thread t = new Thread(this::loop, "jobs-worker-" + settings.instanceId() + "-" + (i + 1));
            t.setDaemon(true);
            threads.add(t);
            t.start();
        }
        LOG.infof("job workers started: instance %s, %d workers, lease %.1f s, kinds %s", settings.instanceId(),
                threads.size(), settings.leaseSeconds(), kinds.keySet());
        return this;
    }

    /** Wakes idle workers (a job was just queued here). */
    public void wake() {
        synchronized (wake) {
            wake.notifyAll();
        }
    }

    /** While paused (draining) this instance claims no job; the running ones go on. */
    public void pause(boolean pause) {
        paused = pause;
        if (!pause) {
            wake();
        }
    }

    /**
     * A cancellation requested through this instance for a job it runs: seen at the next progress point without
     * waiting for a database read (other instances' requests are read at progress writes and heartbeats).
     */
    public void requestCancel(UUID id) {
        Running r = running.get(id);
        if (r != null) {
            r.cancelRequested = true;
        }
    }

    /** Ids of the jobs running on this instance now. */
    public List<UUID> runningJobs() {
        return List.copyOf(running.keySet());
    }

    // ---- the worker loop -------------------------------------------------------------------------------------

    private void loop() {
        while (!stopping) {
            Optional<JobStore.Job> claimed = Optional.empty();
            try {
                if (!paused && executor.hasCapacity()) {
                    claimed = store.claim(settings.instanceId(), kinds.keySet(), settings.leaseSeconds());
                }
                ok();
            } catch (RuntimeException e) {
                trouble("cannot claim a job", e);
            }
            if (halted) {
                return; // a claim that raced with halt() is left for the reaper, as after a crash
            }
            if (claimed.isPresent()) {
                execute(claimed.get());
                continue;
            }
            synchronized (wake) {
                try {
                    wake.wait(settings.pollMillis());
                } catch (InterruptedException e) {
                    if (stopping) {
                        return;
                    }
                }
            }
        }
    }

    private void execute(JobStore.Job job) {
        Running r = new Running(job, Thread.currentThread());
        running.put(job.id(), r);
        int attempt = job.attempts();
        String me = settings.instanceId();
        try {
            JobKind kind = kinds.get(job.kind());
            LOG.infof("job %s (%s) claimed by %s, attempt %d of %d", job.id(), job.kind(), me, attempt,
                    job.maxAttempts());
            JobKind.Outcome outcome = executor.run(() -> {
                checkpoint(r);
                return kind.run(job, (stage, fraction) -> progress(r, stage, fraction));
            });
            checkpoint(r);
            tx.inTransaction(() -> {
                if (halted) {
                    throw new JobStore.LeaseLost(job.id());
                }
                Object result = outcome.commit();
                if (!store.done(job.id(), me, attempt, write(result))) {
                    throw new JobStore.LeaseLost(job.id());
                }
                return result;
            });
            LOG.infof("job %s (%s) done on %s", job.id(), job.kind(), me);
        } catch (Busy e) {
            // the local executor filled up between the capacity check and the claim: back to the queue
            safely(() -> store.release(job.id(), me, attempt, "instance " + me + " was busy"));
        } catch (CancellationException e) {
            if (halted) {
                return;
            }
            if (r.lost) {
                LOG.warnf("job %s: %s lost its lease; stopped", job.id(), me);
            } else if (r.cancelRequested) {
                safely(() -> store.finish(job.id(), me, attempt, "cancelled", null, null, null, null));
            } else if (stopping) {
                safely(() -> store.release(job.id(), me, attempt, "instance " + me + " stopped"));
            } else {
                safely(() -> store.finish(job.id(), me, attempt, "cancelled", null, null, null, null));
            }
        } catch (JobStore.LeaseLost e) {
            LOG.warnf("%s (instance %s)", e.getMessage(), me);
        } catch (Refusal e) {
            if (!halted) {
                LOG.warnf("job %s (%s) failed: %s", job.id(), job.kind(), e.getMessage());
                safely(() -> store.finish(job.id(), me, attempt, "failed", null, e.getMessage(), e.kind().status(),
                        e.code()));
            }
        } catch (RuntimeException e) {
            if (halted) {
                return;
            }
            if (lab.steering.store.DatabaseErrors.unavailable(e)) {
                // not the job's fault: another attempt once the database is back (or, if it is still away when
                // this write is tried, the reaper requeues the job when its lease runs out)
                LOG.warnf("job %s (%s): the database went away during attempt %d on %s (%s); back to the queue",
                        job.id(), job.kind(), attempt, me, e.getMessage());
                safely(() -> store.retry(job.id(), me, attempt, "the database was unavailable during attempt "
                        + attempt, "database_unavailable"));
            } else {
                failed(job, me, attempt, e);
            }
        } catch (Error e) {
            if (!halted) {
                failed(job, me, attempt, e);
            }
        } finally {
            running.remove(job.id());
            if (Thread.interrupted() && !stopping) {
                LOG.debugf("job %s: interrupt cleared", job.id());
            }
        }
    }

    /** Marks the job failed: its waiting request answers with the message. */
    private void failed(JobStore.Job job, String me, int attempt, Throwable e) {
        LOG.errorf(e, "job %s (%s) failed on %s", job.id(), job.kind(), me);
        // a database failure's message quotes SQL and values: those stay in the log
        String msg = lab.steering.store.DatabaseErrors.fromTheDatabase(e)
                ? "a database statement failed (details in the log of instance " + me + ")"
                : e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
        safely(() -> store.finish(job.id(), me, attempt, "failed", null, msg, null, "job_failed"));
    }

    private void progress(Running r, String stage, double fraction) {
        checkpoint(r);
        r.stage = stage;
        r.progress = fraction;
        long now = System.nanoTime();
        if (!r.written || now - r.lastWrite >= settings.progressWriteMillis() * 1_000_000L) {
            r.written = true;
            r.lastWrite = now;
            beat(r);
            checkpoint(r);
        }
    }

    /** Throws CancellationException when the job must stop here. */
    private void checkpoint(Running r) {
        if (halted) {
            throw new CancellationException("instance " + settings.instanceId() + " halted");
        }
        if (r.lost) {
            throw new CancellationException("lease lost");
        }
        if (r.cancelRequested) {
            throw new CancellationException("cancelled by request");
        }
        if (stopping) {
            throw new CancellationException("instance " + settings.instanceId() + " stopping");
        }
    }

    private void beat(Running r) {
        if (halted) {
            return;
        }
        try {
            Optional<JobStore.Beat> b = store.heartbeat(r.job.id(), settings.instanceId(), r.job.attempts(),
                    settings.leaseSeconds(), r.progress, r.stage);
            if (b.isEmpty()) {
                r.lost = true;
            } else if (b.get().cancelRequested()) {
                r.cancelRequested = true;
            }
            ok();
        } catch (RuntimeException e) {
            trouble("cannot renew the lease of job " + r.job.id(), e); // the lease may run out: the reaper decides
        }
    }

    // ---- the timer: heartbeats, the reaper, purging -----------------------------------------------------------

    private void tick() {
        if (halted) {
            return;
        }
        for (Running r : running.values()) {
            beat(r);
        }
        try {
            for (JobStore.Reaped j : store.reap()) {
                LOG.warnf("job %s: the lease of worker %s ran out (attempt %d); now %s", j.id(), j.owner(),
                        j.attempts(), j.status());
            }
            if (ticks++ % 100 == 0) {
                store.purge(settings.keepFinished());
            }
            ok();
        } catch (RuntimeException e) {
            trouble("cannot reap expired jobs", e);
        }
    }

    // ---- stopping ----------------------------------------------------------------------------------------------

    /**
     * Graceful stop: running jobs stop at their next progress point and go back to the queue (attempt not
     * counted); waits up to {@code waitMillis} for them, then gives back any still running (their late writes are
     * refused by the fence).
     */
    public void stop(long waitMillis) {
        stopping = true;
        wake();
        for (Thread t : threads) {
            if (!running.values().stream().anyMatch(r -> r.thread == t)) {
                t.interrupt(); // idle: waiting for work
            }
        }
        long deadline = System.nanoTime() + waitMillis * 1_000_000L;
        for (Thread t : threads) {
            try {
                t.join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000L));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        for (Running r : running.values()) {
            safely(() -> store.release(r.job.id(), settings.instanceId(), r.job.attempts(),
                    "instance " + settings.instanceId() + " stopped"));
        }
        if (timer != null) {
            timer.shutdownNow();
        }
    }

    @Override
    public void close() {
        stop(10_000);
    }

    /**
     * For tests: the instance dies as if its process were killed: no heartbeat, no further write of any kind; its
     * threads are interrupted and stop at their next progress point. Its running jobs are left to the reaper of
     * another instance once their leases run out.
     */
    public void halt() {
        halted = true;
        stopping = true;
        if (timer != null) {
            timer.shutdownNow();
        }
        for (Thread t : threads) {
            t.interrupt();
        }
        for (Thread t : threads) {
            try {
                t.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    // ---- helpers -----------------------------------------------------------------------------------------------

    private String write(Object result) {
        try {
            return json.writeValueAsString(result);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("the job's result is not serialisable: " + e.getMessage(), e);
        }
    }

    private void safely(Runnable r) {
        try {
            r.run();
        } catch (RuntimeException e) {
            trouble("cannot record the end of a job", e);
        }
    }

    private void ok() {
        failing = false;
    }

    private void trouble(String what, RuntimeException e) {
        if (!failing) {
            LOG.warnf("%s (instance %s): %s; retrying quietly", what, settings.instanceId(), e.getMessage());
        } else {
            LOG.debugf("%s: %s", what, e.getMessage());
        }
        failing = true;
    }
}
