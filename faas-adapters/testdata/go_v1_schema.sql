-- The schema the Go version (v1) creates at start-up, as docs/api.md
-- "Adopting a Go database" describes it: INTEGER versions, nullable TEXT env
-- columns, no root row. A test fixture: the adoption tests load it, add rows
-- as the Go version writes them, and start the Rust store on top.
CREATE TABLE IF NOT EXISTS collection_paths (
    path       TEXT PRIMARY KEY,
    env_json   TEXT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS functions (
    collection_path TEXT NOT NULL DEFAULT '',
    name            TEXT NOT NULL,
    language        TEXT NOT NULL,
    env_json        TEXT,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (collection_path, name)
);
CREATE TABLE IF NOT EXISTS function_versions (
    id              BIGSERIAL PRIMARY KEY,
    collection_path TEXT NOT NULL DEFAULT '',
    function_name   TEXT NOT NULL,
    version         INTEGER NOT NULL,
    s3_key          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (collection_path, function_name, version),
    FOREIGN KEY (collection_path, function_name) REFERENCES functions (collection_path, name) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_function_versions_lookup ON function_versions (collection_path, function_name);
