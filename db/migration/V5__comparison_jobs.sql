-- Comparison batches as jobs of kind 'comparison' (lab.steering.service.ComparisonJobs): the job's request names
-- the stored comparison ({"comparison": ID, ...}); any replica's worker pool runs it and writes its entries.
--
-- One source of truth: while a batch is queued or running, its state is the job row's (status, stage, progress,
-- error, finished_at: claim, heartbeat, cancel, reaper, finish). The trigger below copies that state to the
-- comparison row in the same transaction as each change of the job row, so the two can never disagree, and the
-- comparison keeps its final state after the finished job is purged (lab.jobs.kept). The application writes a
-- job-backed comparison's state nowhere else. Progress never goes back: a retried job (its worker was lost)
-- restarts at 0 in the job row, the comparison keeps what its stored entries already show.

ALTER TABLE comparison ADD COLUMN job_id UUID;   -- the batch's job; null: one prompt, answered at once
CREATE UNIQUE INDEX comparison_job_id ON comparison (job_id);

-- Batches left queued or running before this migration ran in one app's memory: they will never finish.
UPDATE comparison SET status = 'failed', stage = 'failed', finished_at = now(),
                      error = 'interrupted: the app stopped before it finished'
 WHERE status IN ('queued', 'running');

CREATE FUNCTION comparison_follows_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE comparison c
       SET status = NEW.status, stage = NEW.stage, error = NEW.error, finished_at = NEW.finished_at,
           progress = CASE WHEN NEW.status = 'done' THEN 1 ELSE GREATEST(c.progress, NEW.progress) END
     WHERE c.job_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER job_comparison_state AFTER INSERT OR UPDATE ON job
    FOR EACH ROW WHEN (NEW.kind = 'comparison') EXECUTE FUNCTION comparison_follows_job();
