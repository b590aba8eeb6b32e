-- Every /api/generate call: what was asked, what came back, when.
CREATE TABLE generation_run (
    id              BIGSERIAL PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    model_id        TEXT        NOT NULL,
    prompt          TEXT        NOT NULL,
    params          JSONB       NOT NULL,
    prompt_tokens   INTEGER     NOT NULL,
    completion      TEXT        NOT NULL,
    tokens          JSONB       NOT NULL,
    finish_reason   TEXT        NOT NULL,
    prompt_ms       DOUBLE PRECISION NOT NULL,
    per_token_ms    DOUBLE PRECISION NOT NULL
);
CREATE INDEX generation_run_created_at ON generation_run (created_at DESC);
