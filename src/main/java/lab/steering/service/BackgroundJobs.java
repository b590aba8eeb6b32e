package lab.steering.service;

import java.util.concurrent.Future;

/**
 * Where background work runs. Today: the {@link WorkLimiter}'s bounded executor, in memory ({@link LimiterJobs});
 * the interface is all callers see, so the work can move to a database-backed job queue without touching them.
 */
public interface BackgroundJobs {

    /**
     * Queues {@code task}; throws {@link WorkLimiter.Busy} (the API's 429) when nothing more can wait.
     *
     * @param what names the work in a refusal ("comparison 7")
     * @return a handle whose {@code cancel(false)} drops the task while it still waits
     */
    Future<?> submit(String what, Runnable task);

    /** Forgets a queued task that was cancelled, so that it frees its place at once. */
    void drop(Future<?> queued);
}
