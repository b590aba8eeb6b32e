-- Steering vectors in the library beside the operators (issue 16): built from a concept (and contrast) prompt at
-- one or more layers, or imported from a GGUF control vector. The data is the GGUF file itself.

CREATE TABLE steering_vector (
    id                BIGSERIAL PRIMARY KEY,
    name              TEXT        NOT NULL,
    description       TEXT        NOT NULL DEFAULT '',
    tags              TEXT[]      NOT NULL DEFAULT '{}',
    model_id          TEXT        NOT NULL,
    model_fingerprint TEXT        NOT NULL,             -- sha256 hex of the model's config and weights
    concept_prompt    TEXT        NOT NULL DEFAULT '',  -- '' for a file another tool wrote
    contrast_prompt   TEXT        NOT NULL DEFAULT '',
    concept_ids       JSONB       NOT NULL,             -- [id, ...]
    contrast_ids      JSONB       NOT NULL,
    layers            INTEGER[]   NOT NULL CHECK (cardinality(layers) >= 1 AND 1 <= ALL (layers)), -- app numbering
    dim               INTEGER     NOT NULL CHECK (dim >= 1),
    dtype             TEXT        NOT NULL,
    source            TEXT        NOT NULL CHECK (source IN ('built', 'imported')),
    size_bytes        BIGINT      NOT NULL,             -- length of the GGUF data
    sha256            TEXT        NOT NULL,             -- sha256 hex of the GGUF data
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX steering_vector_model ON steering_vector (model_id, created_at DESC);

-- The vector as one GGUF control vector file (the bytes GET /api/vectors/{id}/export?format=gguf returns).
CREATE TABLE steering_vector_data (
    vector_id BIGINT PRIMARY KEY REFERENCES steering_vector (id) ON DELETE CASCADE,
    data      BYTEA  NOT NULL
);

-- As for operators (V2): a vector row never exists without its complete data, checked at commit.
CREATE FUNCTION steering_vector_check_data() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_id BIGINT;
    v    steering_vector%ROWTYPE;
    blob BYTEA;
BEGIN
    IF TG_TABLE_NAME = 'steering_vector' THEN
        v_id := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        v_id := OLD.vector_id;
    ELSE
        v_id := NEW.vector_id;
    END IF;
    SELECT * INTO v FROM steering_vector WHERE id = v_id;
    IF NOT FOUND THEN
        RETURN NULL; -- deleted in the same transaction
    END IF;
    SELECT data INTO blob FROM steering_vector_data WHERE vector_id = v_id;
    IF blob IS NULL OR octet_length(blob) <> v.size_bytes OR encode(sha256(blob), 'hex') <> v.sha256 THEN
        RAISE EXCEPTION 'steering vector % has no data or data that does not match its size and sha256', v_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER steering_vector_complete
    AFTER INSERT OR UPDATE OF size_bytes, sha256 ON steering_vector
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION steering_vector_check_data();
CREATE CONSTRAINT TRIGGER steering_vector_data_complete
    AFTER INSERT OR UPDATE OR DELETE ON steering_vector_data
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION steering_vector_check_data();

-- A run steered with a saved vector names it (kind 'vector'); set to null when the vector is deleted.
ALTER TABLE steering_run ADD COLUMN vector_id BIGINT REFERENCES steering_vector (id) ON DELETE SET NULL;
CREATE INDEX steering_run_vector ON steering_run (vector_id);
