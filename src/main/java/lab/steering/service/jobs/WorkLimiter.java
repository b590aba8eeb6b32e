package lab.steering.service.jobs;

import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import lab.steering.config.LabConfig;
import lab.steering.model.LanguageModel;
import lab.steering.service.Busy;
import lab.steering.service.ClientGone;
import lab.steering.service.models.ModelRegistry;

/**
 * The bounded executor every heavy request goes through (synchronous analyses, exports, layer rebuilds, and the
 * jobs this instance's {@link JobWorkers} claim, which claim only while a worker is idle): at most
 * {@code lab.jacobian.max-running} tasks run, {@code lab.jacobian.max-queued} wait, and anything beyond is refused
 * at once with {@link Busy} (the API's 429), never queued without bound.
 */
@ApplicationScoped
public class WorkLimiter {

    /** How often a waiting request checks that its client is still connected. */
    private static final long CLIENT_CHECK_MS = 200;

    private final ThreadPoolExecutor pool;
    private final int maxRunning;
    private final int maxQueued;
    private volatile double averageMs = -1; // moving average of task durations (the Retry-After estimate)
    private volatile CountDownLatch hold;   // tests: workers wait at their next checkpoint while set

    @Inject
    ModelRegistry registry;

    WorkLimiter(LabConfig config) {
        this.maxRunning = Math.max(1, config.jacobian().maxRunning());
        this.maxQueued = Math.max(0, config.jacobian().maxQueued());
        BlockingQueue<Runnable> queue = maxQueued == 0 ? new SynchronousQueue<>() : new ArrayBlockingQueue<>(maxQueued);
        AtomicInteger n = new AtomicInteger();
        this.pool = new ThreadPoolExecutor(maxRunning, maxRunning, 0, TimeUnit.MILLISECONDS, queue, r -> {
            Thread th = new Thread(r, "heavy-worker-" + n.incrementAndGet());
            th.setDaemon(true);
            return th;
        }, new ThreadPoolExecutor.AbortPolicy());
    }

    /**
     * Queues a task, or throws {@link Busy} when running + queued are at their limits. The models the submitting
     * thread holds (its request's) stay pinned while the task runs, and models the task finds are pinned until it
     * ends ({@link ModelRegistry#openScope}): none is unloaded under it, even when its request is gone.
     */
    public <T> Future<T> submit(Callable<T> task) {
        ModelRegistry models = registry;
        List<LanguageModel> carried = models == null ? List.of() : models.heldHere();
        try {
            return pool.submit(() -> {
                long t0 = System.nanoTime();
                try (ModelRegistry.Scope scope = models == null ? null : models.openScope(carried)) {
                    return task.call();
                } finally {
                    double ms = (System.nanoTime() - t0) / 1e6;
                    averageMs = averageMs < 0 ? ms : 0.7 * averageMs + 0.3 * ms;
                }
            });
        } catch (RejectedExecutionException e) {
            int retry = retryAfterSeconds();
            throw new Busy("the workers for heavy requests are busy (" + pool.getActiveCount() + " running, "
                    + pool.getQueue().size() + " queued; limits " + maxRunning + " and " + maxQueued
                    + "); retry in about " + retry + " s", retry);
        }
    }

    /**
     * Runs a task through the limiter and waits for it (the synchronous endpoints). Its exceptions come back as
     * they were thrown; if the waiting thread is interrupted, or the HTTP client it serves goes away
     * ({@link ClientGone}), the task is cancelled: taken off the queue, or interrupted, which stops it at its next
     * {@link #checkpoint()}.
     */
    public <T> T run(Callable<T> task) {
        BooleanSupplier gone = ClientGone.watch();
        Future<T> f = submit(task);
        try {
            while (true) {
                try {
                    return f.get(CLIENT_CHECK_MS, TimeUnit.MILLISECONDS);
                } catch (TimeoutException e) {
                    if (gone.getAsBoolean()) {
                        f.cancel(true);
                        throw new ClientGone.Abandoned("the client closed its connection; its heavy request was"
                                + " stopped");
                    }
                }
            }
        } catch (InterruptedException e) {
            f.cancel(true);
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted while waiting for the result");
        } catch (ExecutionException e) {
            throw ClientGone.rethrown(e);
        }
    }

    /** Tasks running now. */
    public int running() {
        return pool.getActiveCount();
    }

    /** Whether a task submitted now would start at once (a job worker claims a job only then). */
    public boolean hasIdleWorker() {
        return pool.getActiveCount() + pool.getQueue().size() < maxRunning;
    }

    /** Tasks waiting now. */
    public int queued() {
        return pool.getQueue().size();
    }

    int retryAfterSeconds() {
        double avg = averageMs < 0 ? 5000 : averageMs;
        double waitMs = avg * (pool.getQueue().size() + 1) / maxRunning;
        return (int) Math.max(1, Math.min(3600, Math.ceil(waitMs / 1000)));
    }

    /**
     * Called by tasks at their progress points: returns at once, unless the task was cancelled (its thread
     * interrupted) or {@link #hold()} is in effect.
     *
     * @throws CancellationException when cancelled, or interrupted while held
     */
    public void checkpoint() {
        if (Thread.currentThread().isInterrupted()) {
            throw new CancellationException("cancelled");
        }
        CountDownLatch h = hold;
        if (h != null) {
            try {
                h.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CancellationException("interrupted");
            }
        }
    }

    /**
     * For tests that need a task to stay "running" deterministically: until the returned handle is closed, every
     * task blocks at its next {@link #checkpoint()}.
     */
    public AutoCloseable hold() {
        CountDownLatch h = new CountDownLatch(1);
        hold = h;
        return () -> {
            hold = null;
            h.countDown();
        };
    }

    @PreDestroy
    void close() {
        pool.shutdownNow();
    }
}
