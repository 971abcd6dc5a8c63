//! Against the real services of `scripts/start-test-services.sh`: each test
//! gets its own database (created from the test role) and its own S3 prefix,
//! so tests run in parallel without seeing each other.
//!
//! By concern: the contract suites, versions and atomicity, databases of
//! the earlier implementations, outages, and connection settings; the
//! harness they share is here.

use std::sync::atomic::{AtomicUsize, Ordering};

use faas_ports::Language;
use sqlx::{Connection, Executor, PgConnection};

use super::objects::s3_client;
use super::*;

mod connect;
mod contract;
mod earlier_schemas;
mod outages;
mod versions;

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
