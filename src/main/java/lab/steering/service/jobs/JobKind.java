package lab.steering.service.jobs;

import lab.steering.store.JobStore;

/**
 * One kind of long work that runs as a job (see {@link JobQueue}): a CDI bean implementing this is found by its
 * {@link #name()}, the {@code kind} column of the job table. Adding a kind: implement this (read the request JSON
 * back from {@link JobStore.Job#request()}, call {@link Progress#update} at the work's progress points), and submit
 * with {@link JobQueue#submit}; every replica's worker pool then runs it.
 */
public interface JobKind {

    /** The kind's name in the job table (stable: queued rows refer to it). */
    String name();

    /**
     * Runs the heavy part on a worker (outside any transaction) and returns what to commit. Throw a
     * {@link Refusal} for a failure with an HTTP status and code (e.g. the instance does not have the model),
     * anything else for an internal failure; a {@link java.util.concurrent.CancellationException} from
     * {@code progress} must propagate.
     */
    Outcome run(JobStore.Job job, Progress progress);

    /** Progress report and cancellation point: throws CancellationException when the job must stop. */
    interface Progress {
        void update(String stage, double fraction);
    }

    /**
     * Runs in the transaction that marks the job done (so a side effect such as storing an operator commits only
     * if this worker still holds the job) and returns the result, stored as JSON.
     */
    @FunctionalInterface
    interface Outcome {
        Object commit();
    }
}
