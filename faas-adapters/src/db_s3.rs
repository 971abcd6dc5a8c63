//! `db_s3` storage: a [`SourceStore`] with its metadata in PostgreSQL and its
//! sources in S3 (SPEC §7).
//!
//! Schema (`faas-adapters/migrations/`, embedded and run by
//! [`DbS3SourceStore::connect`]): `collection_paths`, `functions` and
//! `function_versions` as SPEC §7 names them, created only when missing so
//! a database of the earlier implementation is adopted (missing root and
//! ancestor rows are added), plus two documented columns:
//! `collection_paths.parent_path` (a foreign key, so PostgreSQL itself
//! refuses to delete a collection that has sub-collections or functions,
//! even against concurrent writers) and `function_versions.env_json` (the
//! function env saved with each version, so a pinned old version runs with
//! the env it was saved with; `functions.env_json` is the current one).
//! Text keys are `COLLATE "C"`, so listings come out in byte order.
//!
//! Sources live at `{prefix}functions/[{collection/path}/]{name}/v{N}.mjs`.
//!
//! Invariants and decisions:
//! - **Saves** allocate the version inside one transaction that locks the
//!   function row (`INSERT … ON CONFLICT DO NOTHING`, then
//!   `SELECT … FOR UPDATE`), takes `MAX(version) + 1`, writes the object with
//!   `PutMode::Create`, inserts the version row, updates the function row and
//!   commits. Two replicas therefore never produce the same version, and a
//!   failed S3 write leaves no version row (the transaction rolls back).
//!   If the object of the allocated version already exists it is an orphan
//!   (no committed row can name it while we hold the lock and `MAX` is
//!   below it): the object of a save that failed after its S3 write, or of
//!   a delete whose object removal failed. It is overwritten, with a warning.
//!   A committed version's object is never overwritten.
//! - **Deletes** lock the function row, delete its rows, then delete its
//!   objects, then commit. Objects are removed while the lock is held so a
//!   concurrent re-creation of the function (which waits on that lock)
//!   never has its fresh `v1` object removed by us. An object that cannot
//!   be removed (an S3 error answer) is logged and left as an orphan
//!   (harmless: see saves). An S3 that does not answer at all makes the
//!   delete time out and roll back (`STORAGE_UNAVAILABLE`). If the commit
//!   fails, or the call times out, after some objects went, the rows remain
//!   and loading those versions is `Internal` (source object missing) until
//!   the delete is retried.
//! - The language is kept per function (`functions.language`), not per
//!   version: `javascript` is the only one today.
//! - **Bounds**: every call runs under a tokio timeout of `storage_timeout`
//!   (retries included); the pool's `acquire_timeout`, the server-side
//!   `statement_timeout` (which also bounds lock waits) and the S3 client's
//!   request timeout and retry budget all use the same bound. A call that
//!   times out is dropped with its transaction, which rolls back: it never
//!   commits later. `idle_in_transaction_session_timeout` makes the server
//!   end a session whose transaction was abandoned, so its lock is released
//!   even if the rollback never reaches it. (A timeout that strikes while
//!   the `COMMIT` itself is in flight is ambiguous, as with any database.)
//! - **Errors**: one `map_sqlx_error` and one `map_s3_error`; an
//!   unreachable or timed-out PostgreSQL or S3 is
//!   `Unavailable { component: Storage }` (`STORAGE_UNAVAILABLE`); rows or
//!   objects that cannot be read back are `Internal`.
//! - Env JSON written by other implementations is read tolerantly: entries
//!   that break today's env rules are dropped with a warning, as in `files`.
//! - Secrets (DSN, S3 keys) never appear in `Debug` output or logs.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use faas_ports::{
    function_id, CollectionInfo, CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, Language,
    NewVersion, PortError, Revision, SourceStore, Version, VersionItem,
};
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use crate::AdapterError;

/// The embedded migrations (`faas-adapters/migrations/`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Largest source object read back; sources are written at most 1 MiB by
/// default, this only guards against a foreign object of absurd size.
const MAX_SOURCE_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// Connections per pool (per process).
const MAX_CONNECTIONS: u32 = 16;

/// How often a save retries when a concurrent delete removed the function
/// row between its insert and its lock.
const SAVE_LOCK_ATTEMPTS: usize = 3;

/// Pause between connection attempts at start-up.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Objects deleted at once by `delete_function`.
const DELETE_CONCURRENCY: usize = 8;

/// Settings of the `db_s3` storage (SPEC §7 and §11 name the variables).
///
/// `Debug` redacts the DSN and the S3 keys.
#[derive(Clone, PartialEq, Eq)]
pub struct DbS3Config {
    /// `LOWCODE_FAAS_POSTGRES_DSN`, e.g. `postgres://user:pass@host:5432/db`.
    pub postgres_dsn: String,
    /// `LOWCODE_FAAS_S3_ENDPOINT`; `None` = AWS's endpoint for the region.
    pub s3_endpoint: Option<String>,
    /// `LOWCODE_FAAS_S3_REGION` (`us-east-1`).
    pub s3_region: String,
    /// `LOWCODE_FAAS_S3_BUCKET`.
    pub s3_bucket: String,
    /// `LOWCODE_FAAS_S3_ACCESS_KEY` and `_SECRET_KEY`; `None` = the AWS
    /// credential chain of the environment (`AWS_*` variables, web
    /// identity, instance metadata).
    pub s3_credentials: Option<(String, String)>,
    /// `LOWCODE_FAAS_S3_USE_PATH_STYLE` (true): `endpoint/bucket/key`
    /// rather than `bucket.endpoint/key`.
    pub s3_use_path_style: bool,
    /// `LOWCODE_FAAS_S3_PREFIX` (empty), put literally before `functions/`
    /// (so it normally ends with `/`).
    pub s3_prefix: String,
    /// `LOWCODE_FAAS_STORAGE_TIMEOUT_MS` (10 s): the bound of every call,
    /// retries included, and of each connection phase at start-up.
    pub storage_timeout: Duration,
}

impl DbS3Config {
    /// The SPEC defaults around the two required settings.
    pub fn new(postgres_dsn: impl Into<String>, s3_bucket: impl Into<String>) -> Self {
        Self {
            postgres_dsn: postgres_dsn.into(),
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_bucket: s3_bucket.into(),
            s3_credentials: None,
            s3_use_path_style: true,
            s3_prefix: String::new(),
            storage_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for DbS3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbS3Config")
            .field("postgres_dsn", &"<redacted>")
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_credentials", &self.s3_credentials.as_ref().map(|_| "<redacted>"))
            .field("s3_use_path_style", &self.s3_use_path_style)
            .field("s3_prefix", &self.s3_prefix)
            .field("storage_timeout", &self.storage_timeout)
            .finish()
    }
}

/// A [`SourceStore`] over PostgreSQL and S3 (see the module docs).
#[derive(Clone)]
pub struct DbS3SourceStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    s3: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for DbS3SourceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's options hold the password: never print them.
        f.debug_struct("DbS3SourceStore")
            .field("bucket", &self.inner.bucket)
            .field("prefix", &self.inner.prefix)
            .field("storage_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl DbS3SourceStore {
    /// Connects to PostgreSQL (retrying for up to `storage_timeout`), runs
    /// the embedded migrations, and checks that the bucket answers.
    ///
    /// Fails with a message naming the failing part: an invalid setting is
    /// [`AdapterError::Config`], an unreachable PostgreSQL or S3 or a failed
    /// migration is [`AdapterError::Io`].
    pub async fn connect(config: DbS3Config) -> Result<Self, AdapterError> {
        let timeout = config.storage_timeout;
        check_config(&config)?;
        let pg = pg_options(&config)?;
        let s3 = s3_client(&config)?;
        let store = Self::from_parts(pg_pool(&config, pg.clone()), s3, &config)?;

        // One plain connection first: unlike the pool's timeout, its error
        // says why (refused, authentication, unknown database).
        let window_s = timeout.as_secs_f64();
        retry_until(timeout, || async {
            let conn = PgConnection::connect_with(&pg)
                .await
                .map_err(|e| map_sqlx_error("connecting to PostgreSQL", e))?;
            conn.close()
                .await
                .map_err(|e| map_sqlx_error("connecting to PostgreSQL", e))
        })
        .await
        .map_err(|e| unavailable(format!("connecting to PostgreSQL (retried for {window_s:.1} s)"), e))?;
        match tokio::time::timeout(timeout, MIGRATOR.run(&store.inner.pool)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(unavailable("running the db_s3 migrations", e)),
            Err(e) => return Err(unavailable("running the db_s3 migrations", e)),
        }
        retry_until(timeout, || store.inner.ping_s3()).await.map_err(|e| {
            unavailable(
                format!(
                    "checking S3 bucket '{}' (retried for {window_s:.1} s)",
                    config.s3_bucket
                ),
                e,
            )
        })?;
        tracing::info!(bucket = %config.s3_bucket, prefix = %config.s3_prefix, "db_s3 storage is ready.");
        Ok(store)
    }

    /// A store over an existing pool and S3 client; nothing is checked.
    fn from_parts(pool: PgPool, s3: Arc<dyn ObjectStore>, config: &DbS3Config) -> Result<Self, AdapterError> {
        // Every key is `{prefix}functions/...`: the prefix must make a valid path.
        ObjectPath::parse(format!("{}functions", config.s3_prefix)).map_err(|e| {
            AdapterError::Config(format!(
                "LOWCODE_FAAS_S3_PREFIX '{}' does not make valid object keys: {e}",
                config.s3_prefix
            ))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                s3,
                bucket: config.s3_bucket.clone(),
                prefix: config.s3_prefix.clone(),
                timeout: config.storage_timeout,
            }),
        })
    }

    /// Runs one call under the storage timeout.
    async fn bounded<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, PortError>> + Send,
    ) -> Result<T, PortError> {
        match tokio::time::timeout(self.inner.timeout, call).await {
            Ok(result) => result,
            Err(elapsed) => Err(PortError::storage_unavailable(
                format!("{op} did not finish within {} ms", self.inner.timeout.as_millis()),
                elapsed,
            )),
        }
    }
}

/// The settings that can be judged without any I/O; messages name the variable.
fn check_config(config: &DbS3Config) -> Result<(), AdapterError> {
    let required = [
        ("LOWCODE_FAAS_POSTGRES_DSN", config.postgres_dsn.as_str()),
        ("LOWCODE_FAAS_S3_BUCKET", config.s3_bucket.as_str()),
        ("LOWCODE_FAAS_S3_REGION", config.s3_region.as_str()),
    ];
    if let Some((variable, _)) = required.iter().find(|(_, value)| value.trim().is_empty()) {
        return Err(AdapterError::Config(format!(
            "{variable} is required for db_s3 storage"
        )));
    }
    if !["postgres://", "postgresql://"]
        .iter()
        .any(|scheme| config.postgres_dsn.starts_with(scheme))
    {
        return Err(AdapterError::Config(
            "LOWCODE_FAAS_POSTGRES_DSN must be a postgres:// or postgresql:// URL".into(),
        ));
    }
    if let Some((key, secret)) = &config.s3_credentials {
        if key.is_empty() || secret.is_empty() {
            return Err(AdapterError::Config(
                "LOWCODE_FAAS_S3_ACCESS_KEY and LOWCODE_FAAS_S3_SECRET_KEY must both be set, or neither".into(),
            ));
        }
    }
    if config.storage_timeout.is_zero() {
        return Err(AdapterError::Config(
            "LOWCODE_FAAS_STORAGE_TIMEOUT_MS must be above 0".into(),
        ));
    }
    Ok(())
}

/// A start-up failure whose message carries the whole cause chain (the
/// operator needs "connection refused", not only "unavailable").
fn unavailable(context: impl Into<String>, source: impl std::error::Error) -> AdapterError {
    let mut message = source.to_string();
    let mut cause = source.source();
    while let Some(err) = cause {
        let text = err.to_string();
        // Some errors repeat their source in their own message.
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = err.source();
    }
    AdapterError::Io {
        context: context.into(),
        source: std::io::Error::other(message),
    }
}

/// Calls `attempt` until it succeeds or `window` has passed; the last error wins.
async fn retry_until<F, Fut>(window: Duration, mut attempt: F) -> Result<(), PortError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), PortError>>,
{
    let deadline = tokio::time::Instant::now() + window;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let error = match tokio::time::timeout(left, attempt()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(elapsed) => PortError::storage_unavailable("no answer in time", elapsed),
        };
        if tokio::time::Instant::now() + CONNECT_RETRY_PAUSE >= deadline {
            return Err(error);
        }
        tracing::warn!(error = %error, "Storage not ready yet; retrying.");
        tokio::time::sleep(CONNECT_RETRY_PAUSE).await;
    }
}

/// The DSN with the server-side bounds of every session.
fn pg_options(config: &DbS3Config) -> Result<PgConnectOptions, AdapterError> {
    let options = PgConnectOptions::from_str(&config.postgres_dsn).map_err(|e| {
        // sqlx's message names the problem, never the password.
        AdapterError::Config(format!("LOWCODE_FAAS_POSTGRES_DSN is not a valid PostgreSQL URL: {e}"))
    })?;
    let timeout_ms = config.storage_timeout.as_millis();
    // An abandoned transaction (its caller timed out) ends a little after the call's own bound.
    let idle_ms = timeout_ms.saturating_add(1000);
    Ok(options.options([
        ("statement_timeout", timeout_ms.to_string()),
        ("idle_in_transaction_session_timeout", idle_ms.to_string()),
    ]))
}

/// A lazy pool: connections are opened (and bounded) on first use.
fn pg_pool(config: &DbS3Config, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(config.storage_timeout)
        .connect_lazy_with(options)
}

fn s3_client(config: &DbS3Config) -> Result<Arc<dyn ObjectStore>, AdapterError> {
    let timeout = config.storage_timeout;
    let mut builder = match &config.s3_credentials {
        Some((key, secret)) => AmazonS3Builder::new()
            .with_access_key_id(key)
            .with_secret_access_key(secret),
        None => AmazonS3Builder::from_env(),
    };
    let mut client = ClientOptions::new()
        .with_timeout(timeout)
        .with_connect_timeout(timeout.min(Duration::from_secs(5)));
    if let Some(endpoint) = &config.s3_endpoint {
        client = client.with_allow_http(endpoint.starts_with("http://"));
        builder = builder.with_endpoint(endpoint);
    }
    builder = builder
        .with_bucket_name(&config.s3_bucket)
        .with_region(&config.s3_region)
        .with_virtual_hosted_style_request(!config.s3_use_path_style)
        .with_client_options(client)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: timeout,
        });
    let s3 = builder
        .build()
        .map_err(|e| AdapterError::Config(format!("invalid S3 settings (LOWCODE_FAAS_S3_*): {e}")))?;
    Ok(Arc::new(s3))
}

// ---- errors ----

/// The one mapping of PostgreSQL errors. Callers handle the errors that have
/// a meaning (foreign-key violations) before they get here.
fn map_sqlx_error(op: &str, err: sqlx::Error) -> PortError {
    let unavailable = match &err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08 connection exception, 53 insufficient resources, 57 operator
            // intervention (57014 = statement timeout), 55P03 lock timeout,
            // 40001/40P01 serialization failure and deadlock (retryable).
            ["08", "53", "57"].iter().any(|class| code.starts_with(class))
                || matches!(code.as_ref(), "55P03" | "40001" | "40P01")
        }),
        _ => false,
    };
    if unavailable {
        PortError::storage_unavailable(format!("{op}: PostgreSQL is unavailable"), err)
    } else {
        PortError::internal(format!("{op}: PostgreSQL failed"), err)
    }
}

/// The one mapping of S3 errors. Callers handle the errors that have a
/// meaning (an existing object on create, a missing source object) first.
fn map_s3_error(op: &str, err: object_store::Error) -> PortError {
    match err {
        // A 404 where no object is expected (a write, a listing): the bucket is missing.
        object_store::Error::NotFound { .. }
        | object_store::Error::Generic { .. }
        | object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            PortError::storage_unavailable(format!("{op}: S3 is unavailable"), err)
        }
        other => PortError::internal(format!("{op}: S3 failed"), other),
    }
}

fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}

fn collection_not_found(path: &CollectionPath) -> PortError {
    PortError::CollectionNotFound(path.to_string())
}

// ---- row conversions ----

fn version_from_db(raw: i64) -> Result<Version, PortError> {
    u64::try_from(raw)
        .ok()
        .and_then(|v| Version::new(v).ok())
        .ok_or_else(|| PortError::Internal {
            message: format!("function_versions holds version {raw}, below 1"),
            source: None,
        })
}

fn version_to_db(version: Version) -> Result<i64, PortError> {
    i64::try_from(version.get()).map_err(|e| PortError::internal("version out of range", e))
}

fn language_from_db(raw: &str) -> Result<Language, PortError> {
    Language::parse(Some(raw)).map_err(|message| PortError::Internal {
        message: format!("functions holds an unsupported language: {message}"),
        source: None,
    })
}

fn env_to_json(env: &EnvMap) -> Result<String, PortError> {
    serde_json::to_string(env.as_map()).map_err(|e| PortError::internal("serialising env", e))
}

/// Reads an `env_json` column; entries that break today's rules are
/// dropped with a warning (other implementations checked less).
fn env_from_json(raw: &str, owner: &str) -> Result<EnvMap, PortError> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| PortError::internal(format!("env of {owner} is not JSON"), e))?;
    let (env, dropped) = EnvMap::from_stored_json(value).map_err(|other| PortError::Internal {
        message: format!("env of {owner} holds {other} instead of an object of strings"),
        source: None,
    })?;
    if !dropped.is_empty() {
        tracing::warn!(owner = %owner, dropped_keys = ?dropped, "Ignoring env entries that break the env rules.");
    }
    Ok(env)
}

/// A version row joined with its function's language.
type VersionRow = (i64, String, String, String, DateTime<Utc>);

impl Inner {
    // ---- keys ----

    /// `{prefix}functions/[{collection/path}/]{name}/v{N}.mjs`
    fn s3_key(&self, collection: &CollectionPath, name: &FunctionName, version: Version) -> String {
        if collection.is_root() {
            format!("{}functions/{name}/v{version}.mjs", self.prefix)
        } else {
            format!("{}functions/{}/{name}/v{version}.mjs", self.prefix, collection.as_str())
        }
    }

    fn object_path(key: &str) -> Result<ObjectPath, PortError> {
        ObjectPath::parse(key).map_err(|e| PortError::internal(format!("invalid object key '{key}'"), e))
    }

    // ---- health ----

    async fn ping_postgres(&self) -> Result<(), PortError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| map_sqlx_error("checking PostgreSQL", e))
    }

    /// One listing request below a prefix that holds nothing: a missing
    /// bucket, bad credentials or an unreachable server fail it.
    async fn ping_s3(&self) -> Result<(), PortError> {
        let probe = Self::object_path(&format!("{}.health-probe", self.prefix))?;
        match self.s3.list(Some(&probe)).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(map_s3_error("checking the S3 bucket", e)),
        }
    }

    // ---- collections ----

    async fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        if path.is_root() {
            return Ok(true);
        }
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM collection_paths WHERE path = $1)")
            .bind(path.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("reading a collection", e))
    }

    async fn create_collection(&self, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, PortError> {
        const OP: &str = "creating a collection";
        let Some(parent) = path.parent() else {
            return Err(PortError::CollectionExists(path.to_string()));
        };
        let env_json = env_to_json(env)?;
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx_error(OP, e))?;
        // Missing ancestors (not the root, not the leaf), parents first.
        for ancestor in path.lineage().iter().skip(1).filter(|a| *a != path) {
            let ancestor_parent = ancestor.parent().unwrap_or_default();
            sqlx::query(
                "INSERT INTO collection_paths (path, parent_path, env_json, created_at) \
                 VALUES ($1, $2, '{}', clock_timestamp()) ON CONFLICT (path) DO NOTHING",
            )
            .bind(ancestor.as_str())
            .bind(ancestor_parent.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.map_collection_write_error(OP, &ancestor_parent, e))?;
        }
        let created: Option<DateTime<Utc>> = sqlx::query_scalar(
            "INSERT INTO collection_paths (path, parent_path, env_json, created_at) \
             VALUES ($1, $2, $3::jsonb, clock_timestamp()) \
             ON CONFLICT (path) DO NOTHING RETURNING created_at",
        )
        .bind(path.as_str())
        .bind(parent.as_str())
        .bind(&env_json)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.map_collection_write_error(OP, &parent, e))?;
        let Some(created_at) = created else {
            return Err(PortError::CollectionExists(path.to_string()));
        };
        tx.commit().await.map_err(|e| map_sqlx_error(OP, e))?;
        Ok(CollectionInfo {
            path: path.clone(),
            created_at,
        })
    }

    /// An ancestor deleted by a concurrent writer between our insert and
    /// the child's: the parent is gone.
    fn map_collection_write_error(&self, op: &str, parent: &CollectionPath, err: sqlx::Error) -> PortError {
        if is_foreign_key_violation(&err) {
            collection_not_found(parent)
        } else {
            map_sqlx_error(op, err)
        }
    }

    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        let rows: Vec<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT path, created_at FROM collection_paths WHERE path <> '' ORDER BY path")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("listing collections", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (raw, created_at) in rows {
            match CollectionPath::parse(&raw) {
                Ok(path) if path.as_str() == raw => out.push(CollectionInfo { path, created_at }),
                _ => tracing::warn!(path = %raw, "Skipping a collection row that is not a valid collection path."),
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        let raw: Option<String> = sqlx::query_scalar("SELECT env_json::text FROM collection_paths WHERE path = $1")
            .bind(path.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("reading a collection env", e))?;
        match raw {
            Some(raw) => env_from_json(&raw, &format!("collection '{path}'")),
            // The migration inserts the root; an empty env if someone removed it.
            None if path.is_root() => Ok(EnvMap::new()),
            None => Err(collection_not_found(path)),
        }
    }

    async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
        const OP: &str = "writing a collection env";
        let env_json = env_to_json(env)?;
        let query = if path.is_root() {
            sqlx::query(
                "INSERT INTO collection_paths (path, parent_path, env_json, created_at) \
                 VALUES ($1, NULL, $2::jsonb, clock_timestamp()) \
                 ON CONFLICT (path) DO UPDATE SET env_json = EXCLUDED.env_json",
            )
        } else {
            sqlx::query("UPDATE collection_paths SET env_json = $2::jsonb WHERE path = $1")
        };
        let done = query
            .bind(path.as_str())
            .bind(&env_json)
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx_error(OP, e))?;
        if done.rows_affected() == 0 {
            return Err(collection_not_found(path));
        }
        Ok(())
    }

    async fn delete_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        if path.is_root() {
            return Err(PortError::InvalidCollectionPath(
                "the root collection cannot be deleted".into(),
            ));
        }
        // The foreign keys of sub-collections and functions refuse the delete
        // of a non-empty collection, concurrent writers included.
        let done = sqlx::query("DELETE FROM collection_paths WHERE path = $1")
            .bind(path.as_str())
            .execute(&self.pool)
            .await;
        match done {
            Ok(done) if done.rows_affected() == 0 => Err(collection_not_found(path)),
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(PortError::CollectionNotEmpty(path.to_string())),
            Err(e) => Err(map_sqlx_error("deleting a collection", e)),
        }
    }

    // ---- functions ----

    /// The error for a function that was not found: the collection first.
    async fn not_found(&self, collection: &CollectionPath, name: &FunctionName) -> PortError {
        match self.collection_exists(collection).await {
            Ok(true) => PortError::FunctionNotFound(function_id(collection, name)),
            Ok(false) => collection_not_found(collection),
            Err(e) => e,
        }
    }

    async fn has_versions(&self, collection: &CollectionPath, name: &FunctionName) -> Result<bool, PortError> {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM function_versions WHERE collection_path = $1 AND function_name = $2)",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("reading a function", e))
    }

    async fn save_function(&self, new: &NewVersion) -> Result<Deployment, PortError> {
        const OP: &str = "saving a function";
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx_error(OP, e))?;
        match self.save_in(&mut tx, new).await {
            Ok(deployment) => {
                tx.commit().await.map_err(|e| map_sqlx_error(OP, e))?;
                Ok(deployment)
            }
            Err(e) => {
                // Explicit, so the function row's lock goes now (dropping
                // the transaction would also roll back, on its next use).
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "Could not roll back a failed save.");
                }
                Err(e)
            }
        }
    }

    async fn save_in(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        new: &NewVersion,
    ) -> Result<Deployment, PortError> {
        const OP: &str = "saving a function";
        let collection = &new.collection_path;
        let name = &new.name;
        self.lock_function_for_save(tx, new).await?;

        let current: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM function_versions WHERE collection_path = $1 AND function_name = $2",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;
        let version = match current {
            Some(raw) => version_from_db(raw)?.next(),
            None => Version::FIRST,
        };
        let key = self.s3_key(collection, name, version);
        self.put_source(&key, &new.source_code).await?;

        let env_json = env_to_json(&new.env)?;
        let created_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO function_versions (collection_path, function_name, version, s3_key, env_json, created_at) \
             VALUES ($1, $2, $3, $4, $5::jsonb, clock_timestamp()) RETURNING created_at",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .bind(version_to_db(version)?)
        .bind(&key)
        .bind(&env_json)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;
        sqlx::query(
            "UPDATE functions SET language = $3, env_json = $4::jsonb, updated_at = $5 \
             WHERE collection_path = $1 AND name = $2",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .bind(new.language.as_str())
        .bind(&env_json)
        .bind(created_at)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;

        Ok(Deployment {
            collection_path: collection.clone(),
            name: name.clone(),
            language: new.language,
            source_code: new.source_code.clone(),
            env: new.env.clone(),
            version,
            created_at,
        })
    }

    /// Creates the function row if needed and locks it for this transaction.
    async fn lock_function_for_save(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        new: &NewVersion,
    ) -> Result<(), PortError> {
        const OP: &str = "saving a function";
        let collection = &new.collection_path;
        for _ in 0..SAVE_LOCK_ATTEMPTS {
            let inserted = sqlx::query(
                "INSERT INTO functions (collection_path, name, language, env_json, updated_at) \
                 VALUES ($1, $2, $3, '{}', clock_timestamp()) \
                 ON CONFLICT (collection_path, name) DO NOTHING",
            )
            .bind(collection.as_str())
            .bind(new.name.as_str())
            .bind(new.language.as_str())
            .execute(&mut **tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_foreign_key_violation(&e) => return Err(collection_not_found(collection)),
                Err(e) => return Err(map_sqlx_error(OP, e)),
            }
            let locked: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM functions WHERE collection_path = $1 AND name = $2 FOR UPDATE")
                    .bind(collection.as_str())
                    .bind(new.name.as_str())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(|e| map_sqlx_error(OP, e))?;
            if locked.is_some() {
                return Ok(());
            }
            // A concurrent delete removed the row between our insert and our lock.
        }
        Err(PortError::Unavailable {
            component: faas_ports::Component::Storage,
            message: format!(
                "{OP}: the function '{}' kept being deleted concurrently",
                function_id(collection, &new.name)
            ),
            source: None,
        })
    }

    /// Writes a source object that must not exist yet; an orphan left by a
    /// failed save or delete is overwritten (see the module docs).
    async fn put_source(&self, key: &str, source: &str) -> Result<(), PortError> {
        const OP: &str = "writing a function source";
        let path = Self::object_path(key)?;
        let payload = PutPayload::from(Bytes::from(source.to_owned()));
        match self
            .s3
            .put_opts(&path, payload.clone(), PutOptions::from(PutMode::Create))
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                tracing::warn!(key = %key, "Overwriting an orphaned source object left by a failed save or delete.");
                self.s3
                    .put_opts(&path, payload, PutOptions::from(PutMode::Overwrite))
                    .await
                    .map(drop)
                    .map_err(|e| map_s3_error(OP, e))
            }
            Err(e) => Err(map_s3_error(OP, e)),
        }
    }

    async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        pinned: Option<Version>,
    ) -> Result<Deployment, PortError> {
        const OP: &str = "loading a function";
        let pinned_db = pinned.map(version_to_db).transpose()?;
        let row: Option<VersionRow> = sqlx::query_as(
            "SELECT v.version, v.s3_key, v.env_json::text, f.language, v.created_at \
             FROM function_versions v \
             JOIN functions f ON f.collection_path = v.collection_path AND f.name = v.function_name \
             WHERE v.collection_path = $1 AND v.function_name = $2 AND ($3::bigint IS NULL OR v.version = $3) \
             ORDER BY v.version DESC LIMIT 1",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .bind(pinned_db)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;
        let Some((version, key, env_json, language, created_at)) = row else {
            return Err(match pinned {
                Some(version) if self.has_versions(collection, name).await? => PortError::VersionNotFound {
                    function: function_id(collection, name),
                    version: version.get(),
                },
                _ => self.not_found(collection, name).await,
            });
        };
        let version = version_from_db(version)?;
        let id = faas_ports::deployment_id(collection, name, version);
        let source_code = match self.get_source(&key).await {
            Ok(source) => source,
            Err(SourceError::Missing(e)) => {
                // Deleted between our read of the row and of the object?
                return Err(if self.has_versions(collection, name).await? {
                    PortError::internal(format!("the source object of {id} is missing"), e)
                } else {
                    self.not_found(collection, name).await
                });
            }
            Err(SourceError::Other(e)) => return Err(e),
        };
        Ok(Deployment {
            collection_path: collection.clone(),
            name: name.clone(),
            language: language_from_db(&language)?,
            source_code,
            env: env_from_json(&env_json, &id)?,
            version,
            created_at,
        })
    }

    async fn get_source(&self, key: &str) -> Result<String, SourceError> {
        const OP: &str = "reading a function source";
        let path = Self::object_path(key)?;
        let object = match self.s3.get(&path).await {
            Ok(object) => object,
            Err(e @ object_store::Error::NotFound { .. }) => return Err(SourceError::Missing(e)),
            Err(e) => return Err(map_s3_error(OP, e).into()),
        };
        if object.meta.size > MAX_SOURCE_OBJECT_BYTES {
            return Err(PortError::Internal {
                message: format!(
                    "source object '{key}' has {} bytes, more than {MAX_SOURCE_OBJECT_BYTES}",
                    object.meta.size
                ),
                source: None,
            }
            .into());
        }
        let bytes = object.bytes().await.map_err(|e| map_s3_error(OP, e))?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| PortError::internal(format!("source object '{key}' is not UTF-8"), e).into())
    }

    /// One indexed query: the newest version row. Its `id` is the token: ids
    /// are never reused, so a delete and re-create changes it even when the
    /// version number comes back.
    async fn current_revision(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Revision, PortError> {
        let current: Option<(i64, i64)> = sqlx::query_as(
            "SELECT version, id FROM function_versions WHERE collection_path = $1 AND function_name = $2 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("reading a function's version", e))?;
        match current {
            Some((version, id)) => Ok(Revision {
                version: version_from_db(version)?,
                token: id.to_string(),
            }),
            None => Err(self.not_found(collection, name).await),
        }
    }

    async fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError> {
        if !self.collection_exists(collection).await? {
            return Err(collection_not_found(collection));
        }
        let rows: Vec<(String, String, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT f.name, f.language, v.version, v.created_at FROM functions f \
             JOIN LATERAL ( \
                 SELECT version, created_at FROM function_versions \
                 WHERE collection_path = f.collection_path AND function_name = f.name \
                 ORDER BY version DESC LIMIT 1 \
             ) v ON true \
             WHERE f.collection_path = $1 ORDER BY f.name",
        )
        .bind(collection.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("listing functions", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (raw_name, language, version, created_at) in rows {
            let Ok(name) = FunctionName::parse(&raw_name) else {
                tracing::warn!(name = %raw_name, collection = %collection, "Skipping a function row whose name is not valid.");
                continue;
            };
            out.push(FunctionSummary {
                collection_path: collection.clone(),
                name,
                language: language_from_db(&language)?,
                version: version_from_db(version)?,
                created_at,
            });
        }
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    async fn list_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Vec<VersionItem>, PortError> {
        let rows: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT version, created_at FROM function_versions \
             WHERE collection_path = $1 AND function_name = $2 ORDER BY version DESC",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("listing versions", e))?;
        if rows.is_empty() {
            return Err(self.not_found(collection, name).await);
        }
        rows.into_iter()
            .map(|(version, created_at)| {
                Ok(VersionItem {
                    version: version_from_db(version)?,
                    created_at,
                })
            })
            .collect()
    }

    async fn delete_function(&self, collection: &CollectionPath, name: &FunctionName) -> Result<(), PortError> {
        const OP: &str = "deleting a function";
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx_error(OP, e))?;
        let locked: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM functions WHERE collection_path = $1 AND name = $2 FOR UPDATE")
                .bind(collection.as_str())
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| map_sqlx_error(OP, e))?;
        if locked.is_none() {
            drop(tx);
            return Err(self.not_found(collection, name).await);
        }
        let keys: Vec<String> = sqlx::query_scalar(
            "DELETE FROM function_versions WHERE collection_path = $1 AND function_name = $2 RETURNING s3_key",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;
        sqlx::query("DELETE FROM functions WHERE collection_path = $1 AND name = $2")
            .bind(collection.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| map_sqlx_error(OP, e))?;
        // Under the row lock: a concurrent re-creation waits for our commit.
        let id = function_id(collection, name);
        futures_util::stream::iter(keys)
            .for_each_concurrent(DELETE_CONCURRENCY, |key| {
                let id = &id;
                async move {
                    let result = match Self::object_path(&key) {
                        Ok(path) => self.s3.delete(&path).await.map_err(|e| map_s3_error(OP, e)),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        tracing::warn!(function = %id, key = %key, error = %e, "Could not delete a source object; it stays as an orphan.");
                    }
                }
            })
            .await;
        tx.commit().await.map_err(|e| map_sqlx_error(OP, e))
    }

    async fn health(&self) -> Result<(), PortError> {
        self.ping_postgres().await?;
        self.ping_s3().await
    }
}

/// Reading a source object: missing (a meaning for the caller) or another failure.
enum SourceError {
    Missing(object_store::Error),
    Other(PortError),
}

impl From<PortError> for SourceError {
    fn from(e: PortError) -> Self {
        SourceError::Other(e)
    }
}

#[async_trait]
impl SourceStore for DbS3SourceStore {
    async fn create_collection(&self, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, PortError> {
        self.bounded("creating a collection", self.inner.create_collection(path, env))
            .await
    }

    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        self.bounded("listing collections", self.inner.list_collections()).await
    }

    async fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        self.bounded("reading a collection", self.inner.collection_exists(path))
            .await
    }

    async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        self.bounded("reading a collection env", self.inner.collection_env(path))
            .await
    }

    async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
        self.bounded("writing a collection env", self.inner.set_collection_env(path, env))
            .await
    }

    async fn delete_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        self.bounded("deleting a collection", self.inner.delete_collection(path))
            .await
    }

    async fn save_function(&self, new: &NewVersion) -> Result<Deployment, PortError> {
        self.bounded("saving a function", self.inner.save_function(new)).await
    }

    async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        version: Option<Version>,
    ) -> Result<Deployment, PortError> {
        self.bounded("loading a function", self.inner.get_function(collection, name, version))
            .await
    }

    async fn current_revision(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Revision, PortError> {
        self.bounded(
            "reading a function's version",
            self.inner.current_revision(collection, name),
        )
        .await
    }

    async fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError> {
        self.bounded("listing functions", self.inner.list_functions(collection))
            .await
    }

    async fn list_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Vec<VersionItem>, PortError> {
        self.bounded("listing versions", self.inner.list_versions(collection, name))
            .await
    }

    async fn delete_function(&self, collection: &CollectionPath, name: &FunctionName) -> Result<(), PortError> {
        self.bounded("deleting a function", self.inner.delete_function(collection, name))
            .await
    }

    async fn health(&self) -> Result<(), PortError> {
        self.bounded("checking storage health", self.inner.health()).await
    }
}

/// Against the real services of `scripts/start-test-services.sh`: each test
/// gets its own database (created from the test role) and its own S3 prefix,
/// so tests run in parallel without seeing each other.
#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sqlx::{Connection, Executor, PgConnection};

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
                .execute(format!("CREATE DATABASE \"{name}\"").as_str())
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
                if let Err(e) = admin.execute(drop.as_str()).await {
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

    #[cfg(feature = "testkit")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_source_store_contract() {
        let db = TestDb::new("contract").await;
        let store = db.store().await;
        crate::testkit::source_store_contract(&store, crate::testkit::ContractOptions::FULL_HISTORY).await;
        db.drop_database().await;
    }

    #[cfg(feature = "testkit")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_contract_behind_the_function_cache() {
        let db = TestDb::new("cached").await;
        let store: Arc<dyn SourceStore> = Arc::new(db.store().await);
        let cached = crate::cache::CachedSourceStore::new(store, std::num::NonZeroUsize::new(4).unwrap());
        crate::testkit::source_store_contract(&cached, crate::testkit::ContractOptions::FULL_HISTORY).await;
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
        // The three tables exactly as SPEC section 7 lists them, holding a
        // function in `team/api` without rows for the root or `team`.
        let mut conn = PgConnection::connect(&db.config.postgres_dsn).await.unwrap();
        let prefix = &db.config.s3_prefix;
        conn.execute(
            format!(
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
            )
            .as_str(),
        )
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
        let message = err.to_string();
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
}
