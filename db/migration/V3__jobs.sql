-- Long work (Jacobian analyses, operator builds, sweeps) as jobs in the database: any replica's worker pool claims
-- a queued job (SELECT ... FOR UPDATE SKIP LOCKED, oldest first), renews its lease while it runs, writes progress,
-- and stores the result here, so that every replica can show any job. A job whose lease ran out (its instance died)
-- is requeued while attempts < max_attempts, else failed (lab.steering.service.JobStore, JobWorkers).
-- request and result are JSON, not JSONB: JSONB refuses the escape \u0000, and decoded token texts contain it.
CREATE TABLE job (
    id               UUID        PRIMARY KEY,
    seq              BIGSERIAL   NOT NULL UNIQUE,          -- claim order (first in, first out)
    kind             TEXT        NOT NULL,                 -- jacobian | operator-build | sweep | ...
    model_id         TEXT,                                 -- the model the work needs (null: none)
    request          JSON        NOT NULL,                 -- the validated request, as the kind reads it back
    status           TEXT        NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    progress         DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    stage            TEXT        NOT NULL DEFAULT 'queued',
    attempts         INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),   -- claims so far
    max_attempts     INTEGER     NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    owner            TEXT,                                 -- instance id of the worker that runs (or last ran) it
    lease_until      TIMESTAMPTZ,                          -- running: renewed by the owner's heartbeat
    heartbeat_at     TIMESTAMPTZ,
    result           JSON,                                 -- done: the kind's result (an analysis: a few hundred kB)
    error            TEXT,                                 -- failed: what went wrong
    error_status     INTEGER,                              -- failed by a refusal: its HTTP status (else null)
    error_code       TEXT,                                 -- failed: a stable code (the API's "error")
    cancel_requested BOOLEAN     NOT NULL DEFAULT false,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    CHECK (status <> 'running' OR (owner IS NOT NULL AND lease_until IS NOT NULL)),
    CHECK (status <> 'done' OR result IS NOT NULL),
    CHECK ((status IN ('done', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CHECK (attempts <= max_attempts)
);
CREATE INDEX job_queued ON job (seq) WHERE status = 'queued';
CREATE INDEX job_running_lease ON job (lease_until) WHERE status = 'running';
CREATE INDEX job_finished ON job (finished_at) WHERE finished_at IS NOT NULL;
