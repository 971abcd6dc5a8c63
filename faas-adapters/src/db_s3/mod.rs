//! `db_s3` storage: a [`SourceStore`] with its metadata in PostgreSQL and its
//! sources in S3 (docs/api.md).
//!
//! Schema (`faas-adapters/migrations/`, embedded and run by
//! [`DbS3SourceStore::connect`]): `collection_paths`, `functions` and
//! `function_versions` as docs/api.md names them, created only when missing so
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
//!   that break today's env rules are left out with a warning and reported
//!   (`EnvMap::ignored_keys`), as in `files`. Function names the Go version
//!   could store are listed and usable (`FunctionName::parse_stored`).
//! - A database created by the Go version (INTEGER versions, TEXT env
//!   columns, no root row) is converted in place by the migrations 0001 and
//!   0002, idempotently and one-way (README "Switching from the Go version").
//! - Secrets (DSN, S3 keys) never appear in `Debug` output or logs.

mod config;
mod dsn;
mod objects;
mod postgres;
mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{
    CollectionInfo, CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, NewVersion, PortError, Revision,
    SourceStore, Version, VersionItem,
};
use object_store::ObjectStore;
use sqlx::postgres::PgPool;
use sqlx::{Connection, PgConnection};

pub use self::config::DbS3Config;
use self::objects::s3_client;
use self::postgres::{map_sqlx_error, pg_options, pg_pool, MIGRATOR};
use crate::AdapterError;

/// Pause between connection attempts at start-up.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(250);

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
    /// migration is [`AdapterError::Unavailable`].
    pub async fn connect(config: DbS3Config) -> Result<Self, AdapterError> {
        let timeout = config.storage_timeout;
        config.validate()?;
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

/// A start-up failure; its cause chain names the actual failure (the
/// operator needs "connection refused", not only "unavailable").
fn unavailable(context: impl Into<String>, source: impl Into<faas_ports::BoxError>) -> AdapterError {
    AdapterError::Unavailable {
        context: context.into(),
        source: source.into(),
    }
}

/// Calls `attempt` until it succeeds or `window` has passed; the last error
/// wins (an attempt cut short by the window does not hide the error of the
/// one before: "certificate not trusted" says more than "no answer in time").
async fn retry_until<F, Fut>(window: Duration, mut attempt: F) -> Result<(), PortError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), PortError>>,
{
    let deadline = tokio::time::Instant::now() + window;
    let mut last: Option<PortError> = None;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let error = match tokio::time::timeout(left, attempt()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(elapsed) => match last.take() {
                Some(previous) => return Err(previous),
                None => PortError::storage_unavailable("no answer in time", elapsed),
            },
        };
        if tokio::time::Instant::now() + CONNECT_RETRY_PAUSE >= deadline {
            return Err(error);
        }
        tracing::warn!(error = %faas_ports::report::Report(&error), "Storage not ready yet; retrying.");
        last = Some(error);
        tokio::time::sleep(CONNECT_RETRY_PAUSE).await;
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

    fn history(&self) -> faas_ports::VersionHistory {
        faas_ports::VersionHistory::Full
    }
}
