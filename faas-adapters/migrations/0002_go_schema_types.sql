-- Adoption of a database created by the Go version (docs/api.md §8.2,
-- "Adopting a Go database"). The Go schema differs from 0001 in its column
-- types: `function_versions.version` is INTEGER and the two `env_json`
-- columns are nullable TEXT holding JSON (`null`, SQL NULL or an object).
-- 0001 adopted the tables as they were; this brings the types in line:
--   function_versions.version  INTEGER -> BIGINT, with the >= 1 check;
--   collection_paths.env_json  TEXT NULL -> JSONB NOT NULL DEFAULT '{}';
--   functions.env_json         TEXT NULL -> JSONB NOT NULL DEFAULT '{}';
--   function_versions.env_json a JSON `null` copied from a Go row -> '{}'.
-- SQL NULL, an empty or blank string and the JSON `null` all mean "no env"
-- (what the Go version wrote for an empty env). Text that is not JSON makes
-- the cast fail: the migration (one transaction) rolls back and start-up
-- stops with PostgreSQL's message, leaving the database as it was.
--
-- Idempotent: every conversion first looks at the column's current type, so
-- a database created by 0001 (already BIGINT/JSONB) is left unchanged.
-- One-way: see README "Switching from the Go version".

DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'function_versions'
          AND column_name = 'version' AND data_type <> 'bigint'
    ) THEN
        ALTER TABLE function_versions ALTER COLUMN version TYPE BIGINT;
    END IF;

    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'collection_paths'
          AND column_name = 'env_json' AND data_type <> 'jsonb'
    ) THEN
        ALTER TABLE collection_paths ALTER COLUMN env_json DROP DEFAULT;
        ALTER TABLE collection_paths ALTER COLUMN env_json TYPE JSONB USING (
            CASE WHEN env_json IS NULL OR btrim(env_json) IN ('', 'null') THEN '{}'::jsonb
                 ELSE env_json::jsonb END
        );
    END IF;

    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'functions'
          AND column_name = 'env_json' AND data_type <> 'jsonb'
    ) THEN
        ALTER TABLE functions ALTER COLUMN env_json DROP DEFAULT;
        ALTER TABLE functions ALTER COLUMN env_json TYPE JSONB USING (
            CASE WHEN env_json IS NULL OR btrim(env_json) IN ('', 'null') THEN '{}'::jsonb
                 ELSE env_json::jsonb END
        );
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'function_versions_version_positive') THEN
        ALTER TABLE function_versions ADD CONSTRAINT function_versions_version_positive CHECK (version >= 1);
    END IF;
END
$$;

UPDATE collection_paths SET env_json = '{}'::jsonb WHERE env_json IS NULL OR env_json = 'null'::jsonb;
UPDATE functions SET env_json = '{}'::jsonb WHERE env_json IS NULL OR env_json = 'null'::jsonb;
UPDATE function_versions SET env_json = '{}'::jsonb WHERE env_json = 'null'::jsonb;

ALTER TABLE collection_paths ALTER COLUMN env_json SET DEFAULT '{}'::jsonb;
ALTER TABLE collection_paths ALTER COLUMN env_json SET NOT NULL;
ALTER TABLE functions ALTER COLUMN env_json SET DEFAULT '{}'::jsonb;
ALTER TABLE functions ALTER COLUMN env_json SET NOT NULL;
