-- Schema of the `db_s3` storage (SPEC section 7). Sources live in S3; these
-- tables hold the metadata. Text keys use COLLATE "C" so that their order
-- (and every index on them) is byte order, as the SourceStore contract asks.

-- Collections, the root included (path ''). `parent_path` is an addition to
-- SPEC section 7: with its foreign key the database itself refuses to delete
-- a collection that still has sub-collections, even against concurrent writers.
CREATE TABLE collection_paths (
    path        TEXT COLLATE "C" PRIMARY KEY,
    parent_path TEXT COLLATE "C" REFERENCES collection_paths (path),
    env_json    JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((path = '') = (parent_path IS NULL))
);
CREATE INDEX collection_paths_parent_path ON collection_paths (parent_path);

INSERT INTO collection_paths (path, parent_path) VALUES ('', NULL);

-- One row per function: its current language and env. The row is also the
-- lock a save takes (SELECT ... FOR UPDATE) to allocate the next version.
CREATE TABLE functions (
    collection_path TEXT COLLATE "C" NOT NULL REFERENCES collection_paths (path),
    name            TEXT COLLATE "C" NOT NULL,
    language        TEXT NOT NULL,
    env_json        JSONB NOT NULL DEFAULT '{}'::jsonb,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_path, name)
);

-- Every stored version. `env_json` is an addition to SPEC section 7: the
-- function env as it was saved with this version, so a pinned old version
-- runs with its own env (functions.env_json is the current version's).
CREATE TABLE function_versions (
    id              BIGSERIAL PRIMARY KEY,
    collection_path TEXT COLLATE "C" NOT NULL,
    function_name   TEXT COLLATE "C" NOT NULL,
    version         BIGINT NOT NULL CHECK (version >= 1),
    s3_key          TEXT NOT NULL,
    env_json        JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (collection_path, function_name, version),
    FOREIGN KEY (collection_path, function_name) REFERENCES functions (collection_path, name)
);
