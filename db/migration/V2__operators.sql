-- Steering operators (the library), their tensor data, and saved steering comparisons.

-- One operator: what it is and where it comes from. The tensors are in steering_operator_data.
CREATE TABLE steering_operator (
    id                BIGSERIAL PRIMARY KEY,
    name              TEXT        NOT NULL,
    description       TEXT        NOT NULL DEFAULT '',
    tags              TEXT[]      NOT NULL DEFAULT '{}',
    model_id          TEXT        NOT NULL,
    model_fingerprint TEXT        NOT NULL,             -- sha256 hex of the model's config and weights
    concept_prompt    TEXT        NOT NULL,
    concept_ids       JSONB       NOT NULL,             -- [id, ...], BOS included when the tokenizer adds it
    layer             INTEGER     NOT NULL CHECK (layer >= 1),
    form              TEXT        NOT NULL CHECK (form IN ('full', 'lowrank')),
    rank              INTEGER     CHECK ((form = 'full') = (rank IS NULL) AND (rank IS NULL OR rank >= 1)),
    dtype             TEXT        NOT NULL,
    size_bytes        BIGINT      NOT NULL,             -- length of the safetensors data
    sha256            TEXT        NOT NULL,             -- sha256 hex of the safetensors data
    build             JSONB,                            -- build report: sizes of both forms, fidelity, timings
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX steering_operator_model ON steering_operator (model_id, created_at DESC);

-- The operator as one safetensors file (the bytes GET /api/operators/{id}/export returns).
CREATE TABLE steering_operator_data (
    operator_id BIGINT PRIMARY KEY REFERENCES steering_operator (id) ON DELETE CASCADE,
    data        BYTEA  NOT NULL
);

-- An operator row never exists without its complete data: checked at commit (deferred), whichever table changed.
CREATE FUNCTION steering_operator_check_data() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    op_id BIGINT;
    op    steering_operator%ROWTYPE;
    blob  BYTEA;
BEGIN
    IF TG_TABLE_NAME = 'steering_operator' THEN
        op_id := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        op_id := OLD.operator_id;
    ELSE
        op_id := NEW.operator_id;
    END IF;
    SELECT * INTO op FROM steering_operator WHERE id = op_id;
    IF NOT FOUND THEN
        RETURN NULL; -- the operator was deleted in the same transaction
    END IF;
    SELECT data INTO blob FROM steering_operator_data WHERE operator_id = op_id;
    IF blob IS NULL THEN
        RAISE EXCEPTION 'steering operator % has no data', op_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF octet_length(blob) <> op.size_bytes OR encode(sha256(blob), 'hex') <> op.sha256 THEN
        RAISE EXCEPTION 'steering operator % data does not match its size and sha256', op_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER steering_operator_complete
    AFTER INSERT OR UPDATE OF size_bytes, sha256 ON steering_operator
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION steering_operator_check_data();
CREATE CONSTRAINT TRIGGER steering_operator_data_complete
    AFTER INSERT OR UPDATE OR DELETE ON steering_operator_data
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION steering_operator_check_data();

-- A POST /api/steer comparison: the validated request, the unsteered and steered continuations, diagnostics.
CREATE TABLE steering_run (
    id          BIGSERIAL PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    model_id    TEXT        NOT NULL,
    operator_id BIGINT      REFERENCES steering_operator (id) ON DELETE SET NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('operator', 'vector')),
    request     JSONB       NOT NULL,
    normal      JSONB       NOT NULL,
    steered     JSONB       NOT NULL,
    diagnostics JSONB       NOT NULL
);
CREATE INDEX steering_run_created_at ON steering_run (created_at DESC);
CREATE INDEX steering_run_operator ON steering_run (operator_id);
