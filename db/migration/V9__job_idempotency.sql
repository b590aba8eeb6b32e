-- Idempotent submissions (issue 18): a POST that queues a job may carry an Idempotency-Key header. The key is kept
-- with the job, unique per kind, together with a hash of the validated request: a retried POST with the same key
-- and the same request gets the first job (and so its result) instead of a second one; the same key with another
-- request is refused (422). A key is remembered as long as its job is kept (lab.jobs.kept).
ALTER TABLE job ADD COLUMN idempotency_key TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 255);
ALTER TABLE job ADD COLUMN request_hash TEXT;
CREATE UNIQUE INDEX job_idempotency ON job (kind, idempotency_key) WHERE idempotency_key IS NOT NULL;
