//! Against the real services of `scripts/start-test-services.sh`: each test
//! gets its own database (created from the test role) and its own S3 prefix,
//! so tests run in parallel without seeing each other.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use faas_ports::Language;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sqlx::{Connection, Executor, PgConnection};

use super::objects::s3_client;
use super::*;

const SETUP_HINT: &str =
    "start the test services first: `bash scripts/start-test-services.sh && source target/test-services.env`";

/// Generous outer bound for "the call returned within its storage timeout".
const OUTER_BOUND: Duration = Duration::from_secs(20);

fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("{name} is not set: {SETUP_HINT}"),
    }
}

/// The test services' settings with a prefix of its own.
fn services_config(prefix: &str) -> DbS3Config {
    DbS3Config {
        postgres_dsn: var("LOWCODE_FAAS_TEST_POSTGRES_DSN"),
        s3_endpoint: Some(var("LOWCODE_FAAS_TEST_S3_ENDPOINT")),
        s3_region: "us-east-1".into(),
        s3_bucket: var("LOWCODE_FAAS_TEST_S3_BUCKET"),
        s3_credentials: Some((
            var("LOWCODE_FAAS_TEST_S3_ACCESS_KEY"),
            var("LOWCODE_FAAS_TEST_S3_SECRET_KEY"),
        )),
        s3_use_path_style: true,
        s3_prefix: format!("{prefix}/"),
        storage_timeout: Duration::from_secs(10),
    }
}

/// `dsn` with its database replaced by `database`.
fn with_database(dsn: &str, database: &str) -> String {
    let (base, query) = match dsn.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (dsn, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    format!("{server}/{database}{query}")
}

/// A fresh database and S3 prefix for one test.
struct TestDb {
    admin_dsn: String,
    name: String,
    config: DbS3Config,
}

impl TestDb {
    async fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "faas_t_{label}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut config = services_config(&name);
        let admin_dsn = config.postgres_dsn.clone();
        let mut admin = PgConnection::connect(&admin_dsn)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to LOWCODE_FAAS_TEST_POSTGRES_DSN ({e}): {SETUP_HINT}"));
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name} ({e}): does the role have CREATEDB?"));
        admin.close().await.ok();
        config.postgres_dsn = with_database(&admin_dsn, &name);
        Self {
            admin_dsn,
            name,
            config,
        }
    }

    async fn store(&self) -> DbS3SourceStore {
        DbS3SourceStore::connect(self.config.clone()).await.unwrap()
    }

    /// Best effort: a failed test leaves its database for inspection.
    async fn drop_database(self) {
        if let Ok(mut admin) = PgConnection::connect(&self.admin_dsn).await {
            let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            if let Err(e) = admin.execute(sqlx::AssertSqlSafe(drop)).await {
                eprintln!("could not drop test database {}: {e}", self.name);
            }
        }
    }
}

fn cp(raw: &str) -> CollectionPath {
    CollectionPath::parse(raw).unwrap()
}

fn name(raw: &str) -> FunctionName {
    FunctionName::parse(raw).unwrap()
}

fn v(n: u64) -> Version {
    Version::new(n).unwrap()
}

fn env(pairs: &[(&str, &str)]) -> EnvMap {
    EnvMap::parse(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()).unwrap()
}

fn new_version(collection: &CollectionPath, fname: &str, source: &str, env: &EnvMap) -> NewVersion {
    NewVersion {
        collection_path: collection.clone(),
        name: name(fname),
        language: Language::Javascript,
        source_code: source.to_owned(),
        env: env.clone(),
    }
}

/// A store over `base`'s database but another S3 client: nothing is checked.
fn with_s3(base: &DbS3SourceStore, config: &DbS3Config) -> DbS3SourceStore {
    DbS3SourceStore::from_parts(base.inner.pool.clone(), s3_client(config).unwrap(), config).unwrap()
}

async fn version_rows(store: &DbS3SourceStore) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM function_versions")
        .fetch_one(&store.inner.pool)
        .await
        .unwrap()
}

/// A store over `config` without connecting or checking anything.
fn unchecked_store(config: &DbS3Config) -> DbS3SourceStore {
    let pool = pg_pool(config, pg_options(config).unwrap());
    DbS3SourceStore::from_parts(pool, s3_client(config).unwrap(), config).unwrap()
}

/// A TCP server that accepts connections and never answers.
async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_source_store_contract() {
    let db = TestDb::new("contract").await;
    let store = db.store().await;
    crate::testkit::source_store_contract(&store).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_contract_behind_the_function_cache() {
    let db = TestDb::new("cached").await;
    let store: Arc<dyn SourceStore> = Arc::new(db.store().await);
    let cached = crate::cache::CachedSourceStore::new(store, std::num::NonZeroUsize::new(4).unwrap());
    crate::testkit::source_store_contract(&cached).await;
    db.drop_database().await;
}

/// Env encryption at rest over `db_s3`: every `env_json` in PostgreSQL holds
/// sealed values, never the plaintext; reads (the current version and a
/// pinned one) return the plaintext; the contract holds behind the decorator.
#[cfg(feature = "encryption")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_env_at_rest_in_postgresql() {
    use crate::encryption::{EncryptedStore, EnvEncryptionConfig};
    const SECRET: &str = "pg-secret-value-7731";
    let db = TestDb::new("sealed").await;
    let keys = EnvEncryptionConfig {
        key: Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into()),
        previous_keys: Vec::new(),
    }
    .keyring()
    .unwrap();
    let inner = Arc::new(db.store().await);
    let store = EncryptedStore::new(inner.clone(), keys.clone());
    let team = cp("team");
    let secret = env(&[("TOKEN", SECRET)]);
    store.create_collection(&team, &secret).await.unwrap();
    store
        .set_collection_env(&CollectionPath::root(), &secret)
        .await
        .unwrap();
    store
        .save_function(&new_version(&team, "f", "v1", &secret))
        .await
        .unwrap();
    store
        .save_function(&new_version(&team, "f", "v2", &env(&[])))
        .await
        .unwrap();

    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT env_json::text FROM collection_paths UNION ALL SELECT env_json::text FROM functions \
         UNION ALL SELECT env_json::text FROM function_versions",
    )
    .fetch_all(&inner.inner.pool)
    .await
    .unwrap();
    assert!(rows.iter().all(|r| !r.contains(SECRET)), "{rows:?}");
    let sealed = rows
        .iter()
        .filter(|r| r.contains(faas_ports::SEALED_ENV_PREFIX))
        .count();
    assert_eq!(sealed, 3, "root, team and version 1: {rows:?}");

    assert_eq!(store.collection_env(&team).await.unwrap(), secret);
    assert_eq!(store.collection_env(&CollectionPath::root()).await.unwrap(), secret);
    let pinned = store.get_function(&team, &name("f"), Some(v(1))).await.unwrap();
    assert_eq!(pinned.env, secret);
    assert!(store
        .get_function(&team, &name("f"), None)
        .await
        .unwrap()
        .env
        .is_empty());
    let keyless = EncryptedStore::new(inner.clone(), crate::encryption::Keyring::default());
    let err = keyless.get_function(&team, &name("f"), Some(v(1))).await.unwrap_err();
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    drop((store, keyless, inner));
    db.drop_database().await;

    let db = TestDb::new("sealed_contract").await;
    let store = EncryptedStore::new(Arc::new(db.store().await), keys);
    crate::testkit::source_store_contract(&store).await;
    drop(store);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_saving_concurrently_get_distinct_versions() {
    const PER_STORE: u64 = 20;
    let db = TestDb::new("concurrent").await;
    // Separate pools, as two processes would have.
    let stores = [db.store().await, db.store().await];
    let root = CollectionPath::root();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..2 * PER_STORE {
        let store = stores[(i % 2) as usize].clone();
        let new = new_version(
            &root,
            "counter",
            &format!("export const handler = async () => ({{ ok: true, data: {i} }});\n"),
            &env(&[("SAVE", &i.to_string())]),
        );
        tasks.spawn(async move { store.save_function(&new).await });
    }
    let mut saved = Vec::new();
    while let Some(result) = tasks.join_next().await {
        saved.push(result.unwrap().expect("every concurrent save succeeds"));
    }
    let mut versions: Vec<u64> = saved.iter().map(|d| d.version.get()).collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=2 * PER_STORE).collect::<Vec<_>>(),
        "two processes saving one function get versions 1..=40 without gaps or duplicates"
    );
    let sources: BTreeSet<&str> = saved.iter().map(|d| d.source_code.as_str()).collect();
    assert_eq!(sources.len(), saved.len(), "every save wrote its own source");
    for d in &saved {
        let store = &stores[(d.version.get() % 2) as usize];
        let got = store
            .get_function(&root, &name("counter"), Some(d.version))
            .await
            .unwrap();
        assert_eq!(
            (got.source_code.as_str(), &got.env),
            (d.source_code.as_str(), &d.env),
            "v{} loads with the source and env its save wrote",
            d.version
        );
    }
    let listed = stores[0].list_versions(&root, &name("counter")).await.unwrap();
    let listed: Vec<u64> = listed.iter().map(|i| i.version.get()).collect();
    assert_eq!(
        listed,
        (1..=2 * PER_STORE).rev().collect::<Vec<_>>(),
        "full history, newest first"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn old_versions_stay_pinnable_with_their_own_env_at_the_spec_keys() {
    let db = TestDb::new("pin").await;
    let store = db.store().await;
    let team = cp("team/api");
    store.create_collection(&team, &EnvMap::new()).await.unwrap();
    let first = store
        .save_function(&new_version(&team, "hello", "// one", &env(&[("A", "1")])))
        .await
        .unwrap();
    store
        .save_function(&new_version(&team, "hello", "// two", &env(&[("B", "2")])))
        .await
        .unwrap();

    let old = store.get_function(&team, &name("hello"), Some(v(1))).await.unwrap();
    assert_eq!(old, first, "a pinned old version loads exactly as it was saved");
    let current = store.get_function(&team, &name("hello"), None).await.unwrap();
    assert_eq!(
        (current.version, current.source_code.as_str(), current.env.clone()),
        (v(2), "// two", env(&[("B", "2")]))
    );
    let err = store.get_function(&team, &name("hello"), Some(v(3))).await.unwrap_err();
    assert_eq!(err.code(), "VERSION_NOT_FOUND", "{err:?}");

    let keys: Vec<String> = sqlx::query_scalar("SELECT s3_key FROM function_versions ORDER BY version")
        .fetch_all(&store.inner.pool)
        .await
        .unwrap();
    let prefix = &db.config.s3_prefix;
    assert_eq!(
        keys,
        [
            format!("{prefix}functions/team/api/hello/v1.mjs"),
            format!("{prefix}functions/team/api/hello/v2.mjs")
        ],
        "sources live at {{prefix}}functions/{{collection/path}}/{{name}}/v{{N}}.mjs"
    );
    for key in &keys {
        store.inner.s3.head(&ObjectPath::parse(key).unwrap()).await.unwrap();
    }
    let root_fn = store
        .save_function(&new_version(&CollectionPath::root(), "top", "// top", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(
        store
            .inner
            .s3_key(&CollectionPath::root(), &root_fn.name, root_fn.version),
        format!("{prefix}functions/top/v1.mjs"),
        "root functions have no collection segment"
    );

    store.delete_function(&team, &name("hello")).await.unwrap();
    for key in &keys {
        let err = store.inner.s3.head(&ObjectPath::parse(key).unwrap()).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotFound { .. }),
            "delete_function removes the source objects, got {err:?}"
        );
    }
    db.drop_database().await;
}

#[tokio::test]
async fn a_failed_s3_write_leaves_no_version() {
    let db = TestDb::new("s3fail").await;
    let store = db.store().await;
    // Two real failures: the server refuses our signature (403), and no
    // server at all. (s3s-fs creates a missing bucket on the first put,
    // so a wrong bucket name does not fail there as it would on AWS.)
    let mut wrong_secret = db.config.clone();
    wrong_secret.s3_credentials = wrong_secret.s3_credentials.map(|(key, _)| (key, "wrong-secret".into()));
    let mut no_server = db.config.clone();
    no_server.s3_endpoint = Some(format!("http://127.0.0.1:{}", closed_port()));
    no_server.storage_timeout = Duration::from_secs(2);

    for (case, broken) in [("wrong secret", &wrong_secret), ("no server", &no_server)] {
        let broken = with_s3(&store, broken);
        let fname = if case == "wrong secret" { "f" } else { "g" };
        let root = CollectionPath::root();

        let err = broken
            .save_function(&new_version(&root, fname, "// lost", &EnvMap::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{case}: {err:?}");
        assert!(
            store
                .list_functions(&root)
                .await
                .unwrap()
                .iter()
                .all(|f| f.name.as_str() != fname),
            "{case}: a failed first save creates no function"
        );

        let rows_before = version_rows(&store).await;
        store
            .save_function(&new_version(&root, fname, "// one", &EnvMap::new()))
            .await
            .unwrap();
        let err = broken
            .save_function(&new_version(&root, fname, "// lost", &EnvMap::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{case}: {err:?}");
        assert_eq!(
            store.current_revision(&root, &name(fname)).await.unwrap().version,
            v(1),
            "{case}"
        );
        assert_eq!(
            version_rows(&store).await,
            rows_before + 1,
            "{case}: a failed save adds no version row"
        );
        let err = broken.health().await.unwrap_err();
        assert_eq!(
            err.code(),
            "STORAGE_UNAVAILABLE",
            "{case}: health sees S3 failing: {err:?}"
        );
        let saved = store
            .save_function(&new_version(&root, fname, "// two", &EnvMap::new()))
            .await
            .unwrap();
        assert_eq!(
            saved.version,
            v(2),
            "{case}: the failed save consumed no version number"
        );
        let got = store.get_function(&root, &name(fname), Some(v(2))).await.unwrap();
        assert_eq!(
            got.source_code, "// two",
            "{case}: nothing of the failed save is visible"
        );
    }
    db.drop_database().await;
}

#[tokio::test]
async fn an_orphaned_object_is_replaced_and_a_committed_one_never_is() {
    let db = TestDb::new("orphan").await;
    let store = db.store().await;
    let root = CollectionPath::root();
    // What a save that failed after its S3 write leaves behind.
    let key = store.inner.s3_key(&root, &name("f"), v(1));
    let path = ObjectPath::parse(&key).unwrap();
    store
        .inner
        .s3
        .put(&path, PutPayload::from_static(b"// orphan"))
        .await
        .unwrap();

    let saved = store
        .save_function(&new_version(&root, "f", "// one", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(saved.version, v(1));
    let got = store.get_function(&root, &name("f"), None).await.unwrap();
    assert_eq!(
        got.source_code, "// one",
        "the orphan was replaced by the save's source"
    );

    // The server honours `If-None-Match: *`: a committed object is never overwritten.
    let err = store
        .inner
        .s3
        .put_opts(
            &path,
            PutPayload::from_static(b"// other"),
            PutOptions::from(PutMode::Create),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::AlreadyExists { .. }),
        "a create over an existing object is refused, got {err:?}"
    );
    let got = store.get_function(&root, &name("f"), Some(v(1))).await.unwrap();
    assert_eq!(got.source_code, "// one");
    db.drop_database().await;
}

#[tokio::test]
async fn adopts_a_database_written_by_the_earlier_implementation() {
    let db = TestDb::new("adopt").await;
    // The three tables exactly as docs/api.md lists them, holding a
    // function in `team/api` without rows for the root or `team`.
    let mut conn = PgConnection::connect(&db.config.postgres_dsn).await.unwrap();
    let prefix = &db.config.s3_prefix;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE collection_paths (path TEXT PRIMARY KEY, env_json JSONB NOT NULL, \
                 created_at TIMESTAMPTZ NOT NULL DEFAULT now()); \
             CREATE TABLE functions (collection_path TEXT NOT NULL, name TEXT NOT NULL, language TEXT NOT NULL, \
                 env_json JSONB NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
                 PRIMARY KEY (collection_path, name)); \
             CREATE TABLE function_versions (id BIGSERIAL PRIMARY KEY, collection_path TEXT NOT NULL, \
                 function_name TEXT NOT NULL, version BIGINT NOT NULL, s3_key TEXT NOT NULL, \
                 created_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
                 UNIQUE (collection_path, function_name, version)); \
             INSERT INTO collection_paths (path, env_json) VALUES ('team/api', '{{\"T\": \"1\"}}'); \
             INSERT INTO functions VALUES ('team/api', 'hello', 'javascript', '{{\"A\": \"1\"}}', now()); \
             INSERT INTO function_versions (collection_path, function_name, version, s3_key) VALUES \
                 ('team/api', 'hello', 1, '{prefix}functions/team/api/hello/v1.mjs'), \
                 ('team/api', 'hello', 2, '{prefix}functions/team/api/hello/v2.mjs');"
    )))
    .await
    .unwrap();
    conn.close().await.unwrap();
    let s3 = s3_client(&db.config).unwrap();
    for n in [1, 2] {
        let path = ObjectPath::parse(format!("{prefix}functions/team/api/hello/v{n}.mjs")).unwrap();
        s3.put(&path, PutPayload::from(format!("// v{n}"))).await.unwrap();
    }

    let store = db.store().await;
    let team = cp("team/api");
    let paths: Vec<String> = store
        .list_collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(paths, ["team", "team/api"], "missing ancestors were added");
    assert_eq!(store.collection_env(&team).await.unwrap(), env(&[("T", "1")]));
    let old = store.get_function(&team, &name("hello"), Some(v(1))).await.unwrap();
    assert_eq!(
        (old.source_code.as_str(), old.env.clone()),
        ("// v1", env(&[("A", "1")])),
        "old versions load, with the function's env"
    );
    let err = store.delete_collection(&cp("team")).await.unwrap_err();
    assert_eq!(err.code(), "COLLECTION_NOT_EMPTY", "{err:?}");
    let saved = store
        .save_function(&new_version(&team, "hello", "// v3", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(saved.version, v(3), "numbering goes on from the adopted versions");
    store.delete_function(&team, &name("hello")).await.unwrap();
    db.drop_database().await;
}

/// The Go version's DDL (faas-adapters/testdata/go_v1_schema.sql).
const GO_V1_SCHEMA: &str = include_str!("../../testdata/go_v1_schema.sql");

/// The data type of a column, as PostgreSQL reports it.
async fn column_type(store: &DbS3SourceStore, table: &str, column: &str) -> String {
    sqlx::query_scalar(
        "SELECT data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
    )
    .bind(table)
    .bind(column)
    .fetch_one(&store.inner.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn adopts_a_database_created_by_the_go_version_idempotently() {
    let mut db = TestDb::new("go").await;
    // The Go version has no key prefix: its keys start at `functions/`. The
    // collection and root name carry the database name, so parallel runs on
    // the shared bucket never meet.
    db.config.s3_prefix = String::new();
    let team = db.name.clone();
    let api = format!("{team}/api");
    let root_name = format!("root.{team}");
    let mut conn = PgConnection::connect(&db.config.postgres_dsn).await.unwrap();
    conn.execute(GO_V1_SCHEMA).await.unwrap();
    // Rows as the Go version writes them: one row per collection and prefix,
    // env as JSON text (SQL NULL or `null` when empty), INTEGER versions.
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO collection_paths VALUES \
             ('{team}', '{{\"TEAM\":\"t\",\"SHARED\":\"team\",\"LOWCODE_FAAS_T\":\"x\"}}', now()), \
             ('{api}', 'null', now()); \
         INSERT INTO functions VALUES \
             ('{api}', 'hello', 'javascript', '{{\"FN\":\"f\",\"SHARED\":\"fn\",\"ÄPFEL\":\"x\"}}', now()), \
             ('{api}', 'my.func', 'javascript', NULL, now()), \
             ('', '{root_name}', 'javascript', 'null', now()); \
         INSERT INTO function_versions (collection_path, function_name, version, s3_key, created_at) VALUES \
             ('{api}', 'hello', 1, 'functions/{api}/hello/v1.mjs', now()), \
             ('{api}', 'hello', 2, 'functions/{api}/hello/v2.mjs', now()), \
             ('{api}', 'my.func', 1, 'functions/{api}/my.func/v1.mjs', now()), \
             ('', '{root_name}', 1, 'functions/{root_name}/v1.mjs', now());"
    )))
    .await
    .unwrap();
    conn.close().await.unwrap();
    let s3 = s3_client(&db.config).unwrap();
    for key in [
        format!("functions/{api}/hello/v1.mjs"),
        format!("functions/{api}/hello/v2.mjs"),
        format!("functions/{api}/my.func/v1.mjs"),
        format!("functions/{root_name}/v1.mjs"),
    ] {
        s3.put(&ObjectPath::parse(&key).unwrap(), PutPayload::from(format!("// {key}")))
            .await
            .unwrap();
    }

    let store = db.store().await;
    assert_eq!(column_type(&store, "function_versions", "version").await, "bigint");
    assert_eq!(column_type(&store, "functions", "env_json").await, "jsonb");
    assert_eq!(column_type(&store, "collection_paths", "env_json").await, "jsonb");
    // Started again: nothing left to convert, nothing changes.
    drop(store);
    let store = db.store().await;

    let (team_cp, api_cp) = (cp(&team), cp(&api));
    let listed = store.list_collections().await.unwrap();
    let paths: Vec<(String, Vec<String>)> = listed
        .into_iter()
        .map(|c| (c.path.to_string(), c.ignored_env_keys))
        .collect();
    assert_eq!(
        paths,
        [
            (team.clone(), vec!["LOWCODE_FAAS_T".to_owned()]),
            (api.clone(), Vec::new())
        ],
        "the refused Go key of a collection env is reported"
    );
    assert_eq!(
        store.collection_env(&CollectionPath::root()).await.unwrap(),
        EnvMap::new()
    );
    let team_env = store.collection_env(&team_cp).await.unwrap();
    assert_eq!(team_env.as_map(), env(&[("TEAM", "t"), ("SHARED", "team")]).as_map());
    assert_eq!(team_env.ignored_keys(), ["LOWCODE_FAAS_T"]);
    assert_eq!(
        store.collection_env(&api_cp).await.unwrap(),
        EnvMap::new(),
        "`null` is empty"
    );

    let listed = store.list_functions(&api_cp).await.unwrap();
    let rows: Vec<(String, u64)> = listed.iter().map(|f| (f.name.to_string(), f.version.get())).collect();
    assert_eq!(rows, [("hello".to_owned(), 2), ("my.func".to_owned(), 1)]);
    let root_fn = FunctionName::parse_stored(&root_name).unwrap();
    let root_list = store.list_functions(&CollectionPath::root()).await.unwrap();
    assert_eq!(names_of(&root_list), std::slice::from_ref(&root_name));

    let current = store.get_function(&api_cp, &name("hello"), None).await.unwrap();
    assert_eq!(current.source_code, format!("// functions/{api}/hello/v2.mjs"));
    assert_eq!(current.env.as_map(), env(&[("FN", "f"), ("SHARED", "fn")]).as_map());
    assert_eq!(
        current.env.ignored_keys(),
        ["ÄPFEL"],
        "the Go key today's rules refuse is reported"
    );
    let pinned = store.get_function(&api_cp, &name("hello"), Some(v(1))).await.unwrap();
    assert_eq!(
        (pinned.source_code.clone(), pinned.env.get("FN")),
        (format!("// functions/{api}/hello/v1.mjs"), Some("f")),
        "a pinned Go version loads with the function's env"
    );
    let dotted = FunctionName::parse_stored("my.func").unwrap();
    let got = store.get_function(&api_cp, &dotted, None).await.unwrap();
    assert!(got.env.is_empty(), "SQL NULL is the empty env");
    let got = store
        .get_function(&CollectionPath::root(), &root_fn, None)
        .await
        .unwrap();
    assert_eq!(got.source_code, format!("// functions/{root_name}/v1.mjs"));

    // The next version goes on from Go's numbering, at Go's key layout.
    let saved = store
        .save_function(&new_version(&api_cp, "hello", "// v3", &env(&[("FN", "g")])))
        .await
        .unwrap();
    assert_eq!(saved.version, v(3));
    let key: String = sqlx::query_scalar(
        "SELECT s3_key FROM function_versions WHERE collection_path = $1 AND function_name = 'hello' AND version = 3",
    )
    .bind(&api)
    .fetch_one(&store.inner.pool)
    .await
    .unwrap();
    assert_eq!(key, format!("functions/{api}/hello/v3.mjs"));
    let mut next = new_version(&api_cp, "hello", "// my.func v2", &EnvMap::new());
    next.name = dotted.clone();
    assert_eq!(store.save_function(&next).await.unwrap().version, v(2));

    let err = store.delete_collection(&team_cp).await.unwrap_err();
    assert_eq!(err.code(), "COLLECTION_NOT_EMPTY", "{err:?}");
    for (collection, fname) in [
        (&api_cp, name("hello")),
        (&api_cp, dotted),
        (&CollectionPath::root(), root_fn),
    ] {
        store.delete_function(collection, &fname).await.unwrap();
    }
    store.delete_collection(&api_cp).await.unwrap();
    store.delete_collection(&team_cp).await.unwrap();
    db.drop_database().await;
}

fn names_of(functions: &[FunctionSummary]) -> Vec<String> {
    functions.iter().map(|f| f.name.to_string()).collect()
}

#[tokio::test]
async fn a_go_env_that_is_not_json_stops_start_up_before_its_conversion() {
    let db = TestDb::new("gobad").await;
    let mut conn = PgConnection::connect(&db.config.postgres_dsn).await.unwrap();
    conn.execute(GO_V1_SCHEMA).await.unwrap();
    conn.execute(
        "INSERT INTO collection_paths VALUES ('broken', 'A=1', now()); \
         INSERT INTO functions VALUES ('broken', 'f', 'javascript', NULL, now()); \
         INSERT INTO function_versions (collection_path, function_name, version, s3_key, created_at) \
             VALUES ('broken', 'f', 1, 'functions/broken/f/v1.mjs', now());",
    )
    .await
    .unwrap();
    let err = DbS3SourceStore::connect(db.config.clone()).await.unwrap_err();
    let report = faas_ports::report::Report(&err).to_string();
    assert!(report.contains("migration"), "{report}");
    let version_type: String = sqlx::query_scalar(
        "SELECT data_type::text FROM information_schema.columns \
         WHERE table_name = 'function_versions' AND column_name = 'version'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(version_type, "integer", "the failed migration rolled back");
    let env_text: String = sqlx::query_scalar("SELECT env_json FROM collection_paths WHERE path = 'broken'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(env_text, "A=1");
    conn.close().await.unwrap();
    db.drop_database().await;
}

#[tokio::test]
async fn a_save_that_times_out_never_commits() {
    let db = TestDb::new("timeout").await;
    let store = db.store().await;
    let root = CollectionPath::root();
    let (port, server) = silent_server().await;
    let hanging = with_s3(
        &store,
        &DbS3Config {
            s3_endpoint: Some(format!("http://127.0.0.1:{port}")),
            storage_timeout: Duration::from_millis(800),
            ..db.config.clone()
        },
    );

    let err = tokio::time::timeout(
        OUTER_BOUND,
        hanging.save_function(&new_version(&root, "f", "// late", &EnvMap::new())),
    )
    .await
    .expect("the save is bounded by its storage timeout")
    .unwrap_err();
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");

    // The abandoned transaction rolled back and released the function row:
    // a save through the healthy store goes through and gets version 1.
    let saved = store
        .save_function(&new_version(&root, "f", "// one", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(saved.version, v(1), "the timed-out save left no version behind");
    assert_eq!(version_rows(&store).await, 1);
    server.abort();
    db.drop_database().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_storage_unavailable() {
    let mut config = services_config("unreachable");
    config.postgres_dsn = format!("postgres://faas:faas@127.0.0.1:{}/faas_test", closed_port());
    config.storage_timeout = Duration::from_secs(1);

    let err = tokio::time::timeout(OUTER_BOUND, DbS3SourceStore::connect(config.clone()))
        .await
        .expect("connect gives up after its retry window")
        .unwrap_err();
    let message = faas_ports::report::report(&err);
    assert!(message.contains("PostgreSQL"), "the error names PostgreSQL: {message}");
    assert!(
        message.to_lowercase().contains("refused"),
        "the error carries the cause for the operator: {message}"
    );

    let store = unchecked_store(&config);
    check_unavailable(&store).await;
}

#[tokio::test]
async fn a_silent_postgres_is_storage_unavailable_within_the_bound() {
    let (port, server) = silent_server().await;
    let mut config = services_config("silent");
    config.postgres_dsn = format!("postgres://faas:faas@127.0.0.1:{port}/faas_test");
    config.storage_timeout = Duration::from_millis(800);
    let store = unchecked_store(&config);
    check_unavailable(&store).await;
    server.abort();
}

/// A loopback TCP forwarder to `upstream` that can be cut (every live
/// connection dropped, new ones refused) and restored: an outage of the
/// service behind it, as the store sees one.
struct Outage {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Outage {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (Arc::clone(&up), Arc::clone(&conns));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the connection is reset
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Self {
            port,
            up,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_outage_is_storage_unavailable_then_recovers_with_nothing_half_written() {
    let db = TestDb::new("outage").await;
    let dsn = db.config.postgres_dsn.clone();
    let authority = dsn
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let outage = Outage::start(authority.clone()).await;
    let config = DbS3Config {
        postgres_dsn: dsn.replace(&authority, &format!("127.0.0.1:{}", outage.port)),
        storage_timeout: Duration::from_millis(1500),
        ..db.config.clone()
    };
    let store = DbS3SourceStore::connect(config).await.unwrap();
    let root = CollectionPath::root();
    store
        .save_function(&new_version(&root, "f", "// one", &EnvMap::new()))
        .await
        .unwrap();

    outage.cut();
    check_unavailable(&store).await;

    outage.restore();
    // The pool replaces its broken connections on the next calls; the
    // first call after the outage may still meet a dead one.
    let mut recovered = None;
    for _ in 0..5 {
        match tokio::time::timeout(OUTER_BOUND, store.get_function(&root, &name("f"), None)).await {
            Ok(Ok(d)) => {
                recovered = Some(d);
                break;
            }
            Ok(Err(e)) => assert_eq!(e.code(), "STORAGE_UNAVAILABLE", "{e:?}"),
            Err(_) => panic!("a call after the outage is still bounded"),
        }
    }
    let current = recovered.expect("the store recovers once PostgreSQL is back");
    assert_eq!(
        current.version,
        v(1),
        "the save attempted during the outage left nothing behind"
    );
    assert_eq!(current.source_code, "// one");
    store.health().await.unwrap();
    let next = store
        .save_function(&new_version(&root, "f", "// two", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(next.version, v(2));
    outage.accept.abort();
    db.drop_database().await;
}

async fn check_unavailable(store: &DbS3SourceStore) {
    let root = CollectionPath::root();
    let results = [
        tokio::time::timeout(OUTER_BOUND, store.list_collections())
            .await
            .map(|r| r.map(drop)),
        tokio::time::timeout(
            OUTER_BOUND,
            store.save_function(&new_version(&root, "f", "// x", &EnvMap::new())),
        )
        .await
        .map(|r| r.map(drop)),
        tokio::time::timeout(OUTER_BOUND, store.get_function(&root, &name("f"), None))
            .await
            .map(|r| r.map(drop)),
        tokio::time::timeout(OUTER_BOUND, store.health()).await,
    ];
    for result in results {
        let err = result
            .expect("every call is bounded by the storage timeout")
            .unwrap_err();
        assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");
    }
}

/// True when the store's own session to PostgreSQL is encrypted.
async fn session_uses_tls(store: &DbS3SourceStore) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&store.inner.pool)
        .await
        .unwrap()
}

/// The test database of `db` reached over TLS with `query` (`sslmode=…`).
fn tls_url(db: &TestDb, query: &str) -> String {
    let base = var("LOWCODE_FAAS_TEST_POSTGRES_TLS_DSN");
    let base = base.split_once('?').map_or(base.as_str(), |(b, _)| b).to_owned();
    format!("{}?{query}", with_database(&base, &db.name))
}

#[tokio::test]
async fn sslmode_require_and_verify_full_connect_over_tls() {
    let mut db = TestDb::new("tls").await;
    let ca = var("LOWCODE_FAAS_TEST_POSTGRES_TLS_CA");
    let plain = db.store().await;
    let keyword = format!(
        "host=127.0.0.1 port={} dbname={} user=faas password=faas sslmode=verify-full sslrootcert='{ca}'",
        <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&var("LOWCODE_FAAS_TEST_POSTGRES_TLS_DSN"))
            .unwrap()
            .get_port(),
        db.name
    );
    for dsn in [
        tls_url(&db, "sslmode=require"),
        tls_url(&db, &format!("sslmode=verify-full&sslrootcert={ca}")),
        tls_url(&db, &format!("sslmode=verify-ca&sslrootcert={ca}")).replace("127.0.0.1", "localhost"),
        keyword,
    ] {
        db.config.postgres_dsn = dsn.clone();
        let store = db.store().await;
        assert!(session_uses_tls(&store).await, "{dsn}");
        store
            .save_function(&new_version(&CollectionPath::root(), "tls", "// tls", &EnvMap::new()))
            .await
            .unwrap();
        store
            .delete_function(&CollectionPath::root(), &name("tls"))
            .await
            .unwrap();
    }
    drop(plain);
    db.drop_database().await;
}

#[tokio::test]
async fn verify_full_refuses_a_server_its_roots_do_not_trust() {
    let mut db = TestDb::new("tlsbad").await;
    db.config.storage_timeout = Duration::from_secs(2);
    // The webpki roots do not know the test CA: no connection, a clear cause.
    db.config.postgres_dsn = tls_url(&db, "sslmode=verify-full");
    let err = DbS3SourceStore::connect(db.config.clone()).await.unwrap_err();
    let report = faas_ports::report::Report(&err).to_string();
    assert!(matches!(err, AdapterError::Unavailable { .. }), "{report}");
    assert!(report.to_lowercase().contains("certificate"), "{report}");
    assert!(!report.contains("faas:faas"), "no password in the message: {report}");
    db.drop_database().await;
}

#[tokio::test]
async fn a_malformed_keyword_dsn_is_a_config_error_naming_the_variable() {
    for dsn in [
        "host=127.0.0.1 dbname",
        "host=127.0.0.1 password='faas",
        "host=127.0.0.1 sslmode=maybe",
    ] {
        let err = DbS3SourceStore::connect(DbS3Config::new(dsn, "bucket"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdapterError::Config(ref m) if m.contains("LOWCODE_FAAS_POSTGRES_DSN") && !m.contains("'faas")),
            "{dsn}: {err}"
        );
    }
}

#[tokio::test]
async fn connect_names_the_missing_setting() {
    let cases = [
        (DbS3Config::new("", "bucket"), "LOWCODE_FAAS_POSTGRES_DSN"),
        (DbS3Config::new("postgres://u:p@h/db", " "), "LOWCODE_FAAS_S3_BUCKET"),
        (
            DbS3Config {
                s3_credentials: Some(("key".into(), String::new())),
                ..DbS3Config::new("postgres://u:p@h/db", "bucket")
            },
            "LOWCODE_FAAS_S3_SECRET_KEY",
        ),
        (
            DbS3Config {
                storage_timeout: Duration::ZERO,
                ..DbS3Config::new("postgres://u:p@h/db", "bucket")
            },
            "LOWCODE_FAAS_STORAGE_TIMEOUT_MS",
        ),
        (
            DbS3Config::new("mysql://u:p@h/db", "bucket"),
            "LOWCODE_FAAS_POSTGRES_DSN",
        ),
    ];
    for (config, variable) in cases {
        let err = DbS3SourceStore::connect(config).await.unwrap_err();
        assert!(
            matches!(err, AdapterError::Config(ref m) if m.contains(variable)),
            "expected a config error naming {variable}, got {err}"
        );
    }
}

#[test]
fn debug_redacts_secrets() {
    let mut config = DbS3Config::new("postgres://u:hunter2@db/x", "bucket");
    config.s3_credentials = Some(("AKIDSECRET".into(), "s3cr3t".into()));
    let shown = format!("{config:?}");
    for secret in ["hunter2", "AKIDSECRET", "s3cr3t"] {
        assert!(!shown.contains(secret), "{secret} leaked into {shown}");
    }
}

#[test]
fn dsn_database_is_replaced() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/db", "t"),
        "postgres://u:p@h:5432/t"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "t"),
        "postgres://u:p@h/t?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u:p@h", "t"), "postgres://u:p@h/t");
}
