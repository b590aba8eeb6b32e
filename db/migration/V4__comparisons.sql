-- Architecture comparisons (POST /api/compare): one prompt or a batch of prompts over several models.

-- One comparison: the validated request (models with their shapes, prompts, settings) and the job's state.
CREATE TABLE comparison (
    id           BIGSERIAL PRIMARY KEY,
    created_at   TIMESTAMPTZ      NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    status       TEXT             NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    progress     DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    stage        TEXT             NOT NULL DEFAULT 'queued',
    error        TEXT,
    models       TEXT[]           NOT NULL,             -- model ids, in the order the request named them
    prompt_count INTEGER          NOT NULL CHECK (prompt_count >= 1),
    request      JSONB            NOT NULL              -- {models: [{id, architecture, ...}], prompts, batch, dtype, topK, vectors}
);
CREATE INDEX comparison_created_at ON comparison (created_at DESC);

-- The analysis of one prompt on one model: stable ranks, top singular values, decoded singular vectors.
CREATE TABLE comparison_entry (
    id                   BIGSERIAL PRIMARY KEY,
    comparison_id        BIGINT           NOT NULL REFERENCES comparison (id) ON DELETE CASCADE,
    prompt_index         INTEGER          NOT NULL CHECK (prompt_index >= 0),
    model_id             TEXT             NOT NULL,
    combined_stable_rank DOUBLE PRECISION NOT NULL,
    result               JSONB            NOT NULL,
    UNIQUE (comparison_id, prompt_index, model_id)
);
