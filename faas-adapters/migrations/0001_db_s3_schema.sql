-- Schema of the `db_s3` storage (SPEC section 7). Sources live in S3; these
-- tables hold the metadata.
--
-- (Literal values of inserts stay untyped, so they fit an adopted TEXT or
-- JSONB env column alike.)
--
-- The three tables are the ones SPEC section 7 names, created only when
-- missing: a database written by the earlier implementation is adopted as
-- it is, and brought up to the two additions of this implementation:
--   collection_paths.parent_path  a foreign key to the parent collection, so
--                                 PostgreSQL itself refuses to delete a
--                                 collection that has sub-collections, even
--                                 against concurrent writers;
--   function_versions.env_json    the function env saved with each version,
--                                 so a pinned old version runs with its own
--                                 env (older rows get the function's env).
-- New text keys use COLLATE "C" (byte order); the code sorts listings itself
-- anyway, so adopted tables with another collation list the same.

CREATE TABLE IF NOT EXISTS collection_paths (
    path       TEXT COLLATE "C" PRIMARY KEY,
    env_json   JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS functions (
    collection_path TEXT COLLATE "C" NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    language        TEXT NOT NULL DEFAULT 'javascript',
    env_json        JSONB NOT NULL DEFAULT '{}'::jsonb,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_path, name)
);

CREATE TABLE IF NOT EXISTS function_versions (
    id              BIGSERIAL PRIMARY KEY,
    collection_path TEXT COLLATE "C" NOT NULL,
    function_name   TEXT COLLATE "C" NOT NULL,
    version         BIGINT NOT NULL CHECK (version >= 1),
    s3_key          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (collection_path, function_name, version)
);

-- Versions without a function row (older data) get one, so every version
-- can be locked, listed and deleted through its function.
INSERT INTO functions (collection_path, name, language, env_json, updated_at)
SELECT v.collection_path, v.function_name, 'javascript', '{}', now()
FROM (SELECT DISTINCT collection_path, function_name FROM function_versions) v
ON CONFLICT (collection_path, name) DO NOTHING;

-- Older data may lack the root, the collections its functions live in, and
-- the ancestors of its collections: every collection path names its lineage.
INSERT INTO collection_paths (path, env_json, created_at)
VALUES ('', '{}', now())
ON CONFLICT (path) DO NOTHING;

INSERT INTO collection_paths (path, env_json, created_at)
SELECT f.collection_path, '{}', now() FROM (SELECT DISTINCT collection_path FROM functions) f
ON CONFLICT (path) DO NOTHING;

INSERT INTO collection_paths (path, env_json, created_at)
SELECT a.path, '{}', now()
FROM (
    SELECT DISTINCT array_to_string((string_to_array(c.path, '/'))[1:n], '/') AS path
    FROM collection_paths c,
         generate_series(1, coalesce(array_length(string_to_array(c.path, '/'), 1), 1) - 1) AS n
    WHERE c.path <> ''
) a
ON CONFLICT (path) DO NOTHING;

-- Addition 1: the parent of every collection but the root.
ALTER TABLE collection_paths ADD COLUMN IF NOT EXISTS parent_path TEXT COLLATE "C";
UPDATE collection_paths
SET parent_path = CASE
    WHEN strpos(path, '/') = 0 THEN ''
    ELSE regexp_replace(path, '/[^/]*$', '')
END
WHERE path <> '';
UPDATE collection_paths SET parent_path = NULL WHERE path = '';
CREATE INDEX IF NOT EXISTS collection_paths_parent_path ON collection_paths (parent_path);

-- Addition 2: the env of every version.
ALTER TABLE function_versions ADD COLUMN IF NOT EXISTS env_json JSONB;
UPDATE function_versions v
SET env_json = coalesce(f.env_json::text, '{}')::jsonb
FROM functions f
WHERE v.env_json IS NULL AND f.collection_path = v.collection_path AND f.name = v.function_name;
UPDATE function_versions SET env_json = '{}'::jsonb WHERE env_json IS NULL;
ALTER TABLE function_versions ALTER COLUMN env_json SET DEFAULT '{}'::jsonb;
ALTER TABLE function_versions ALTER COLUMN env_json SET NOT NULL;

-- The tree and the ownership, enforced by PostgreSQL.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'collection_paths_root_has_no_parent') THEN
        ALTER TABLE collection_paths ADD CONSTRAINT collection_paths_root_has_no_parent
            CHECK ((path = '') = (parent_path IS NULL));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'collection_paths_parent_fk') THEN
        ALTER TABLE collection_paths ADD CONSTRAINT collection_paths_parent_fk
            FOREIGN KEY (parent_path) REFERENCES collection_paths (path);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'functions_collection_fk') THEN
        ALTER TABLE functions ADD CONSTRAINT functions_collection_fk
            FOREIGN KEY (collection_path) REFERENCES collection_paths (path);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'function_versions_function_fk') THEN
        ALTER TABLE function_versions ADD CONSTRAINT function_versions_function_fk
            FOREIGN KEY (collection_path, function_name) REFERENCES functions (collection_path, name);
    END IF;
END
$$;
