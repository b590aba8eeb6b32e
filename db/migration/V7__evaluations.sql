-- The steering benchmark (issue 14): suites and evaluations.

-- A suite: concepts (name, concept prompt, optional contrast prompt, concept words) x neutral prompts, as the JSON
-- that GET /api/suites/{id} exports and POST /api/suites imports (lab.steering.steer.EvalSuite).
CREATE TABLE eval_suite (
    id            BIGSERIAL PRIMARY KEY,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    name          TEXT        NOT NULL,
    concept_count INTEGER     NOT NULL CHECK (concept_count >= 1),
    prompt_count  INTEGER     NOT NULL CHECK (prompt_count >= 2),
    suite         JSONB       NOT NULL
);
CREATE INDEX eval_suite_created_at ON eval_suite (created_at DESC);

-- One benchmark run: its validated request (settings and the suite itself, so that a run stays readable and
-- repeatable after its suite changes or goes), its job's state, and when done the whole result
-- (lab.steering.eval.SteeringBenchmark.Result: per-method summaries, the selection grid, every output).
CREATE TABLE evaluation (
    id          BIGSERIAL PRIMARY KEY,
    created_at  TIMESTAMPTZ      NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    status      TEXT             NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    progress    DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    stage       TEXT             NOT NULL DEFAULT 'queued',
    error       TEXT,
    model_id    TEXT             NOT NULL,
    suite_id    BIGINT           REFERENCES eval_suite (id) ON DELETE SET NULL,   -- null: the default or an inline suite
    suite_name  TEXT             NOT NULL,
    job_id      UUID             UNIQUE,
    request     JSONB            NOT NULL,
    result      JSONB,
    CHECK (status <> 'done' OR result IS NOT NULL)
);
CREATE INDEX evaluation_created_at ON evaluation (created_at DESC);

-- As comparisons (V5): the job row is the one source of an evaluation's state while it is queued or running; this
-- trigger copies it in the same transaction as each change of the job row (progress too: a retried job starts the
-- run again from the beginning, and shows that). The result is written by the job's
-- commit in that same transaction, before the job is marked done.
CREATE FUNCTION evaluation_follows_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE evaluation e
       SET status = NEW.status, stage = NEW.stage, error = NEW.error, finished_at = NEW.finished_at,
           progress = CASE WHEN NEW.status = 'done' THEN 1 ELSE NEW.progress END
     WHERE e.job_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER job_evaluation_state AFTER INSERT OR UPDATE ON job
    FOR EACH ROW WHEN (NEW.kind = 'evaluation') EXECUTE FUNCTION evaluation_follows_job();
