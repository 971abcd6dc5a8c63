//! The PostgreSQL side: connection options and pool, the embedded
//! migrations, the one mapping of sqlx errors, and the typed rows.

use chrono::{DateTime, Utc};
use faas_ports::{EnvMap, Language, PortError, Version};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::config::DbS3Config;
use super::Inner;
use crate::AdapterError;

/// The embedded migrations (`faas-adapters/migrations/`).
pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connections per pool (per process).
pub(super) const MAX_CONNECTIONS: u32 = 16;

/// The DSN with the server-side bounds of every session.
/// The DSN is a URL or libpq keyword/value pairs ([`super::dsn`]); its
/// `sslmode` (URL query or pair) decides TLS.
pub(super) fn pg_options(config: &DbS3Config) -> Result<PgConnectOptions, AdapterError> {
    let options = super::dsn::parse_dsn(&config.postgres_dsn)?;
    let timeout_ms = config.storage_timeout.as_millis();
    // An abandoned transaction (its caller timed out) ends a little after the call's own bound.
    let idle_ms = timeout_ms.saturating_add(1000);
    Ok(options.options([
        ("statement_timeout", timeout_ms.to_string()),
        ("idle_in_transaction_session_timeout", idle_ms.to_string()),
    ]))
}

/// A lazy pool: connections are opened (and bounded) on first use.
pub(super) fn pg_pool(config: &DbS3Config, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(config.storage_timeout)
        .connect_lazy_with(options)
}

/// The one mapping of PostgreSQL errors. Callers handle the errors that have
/// a meaning (foreign-key violations) before they get here.
pub(super) fn map_sqlx_error(op: &str, err: sqlx::Error) -> PortError {
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

pub(super) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}

pub(super) fn version_from_db(raw: i64) -> Result<Version, PortError> {
    u64::try_from(raw)
        .ok()
        .and_then(|v| Version::new(v).ok())
        .ok_or_else(|| PortError::Internal {
            message: format!("function_versions holds version {raw}, below 1"),
            source: None,
        })
}

pub(super) fn version_to_db(version: Version) -> Result<i64, PortError> {
    i64::try_from(version.get()).map_err(|e| PortError::internal("version out of range", e))
}

pub(super) fn language_from_db(raw: &str) -> Result<Language, PortError> {
    Language::parse(Some(raw)).map_err(|message| PortError::Internal {
        message: format!("functions holds an unsupported language: {message}"),
        source: None,
    })
}

pub(super) fn env_to_json(env: &EnvMap) -> Result<String, PortError> {
    serde_json::to_string(env.as_map()).map_err(|e| PortError::internal("serialising env", e))
}

/// Reads an `env_json` column; entries that break today's rules are
/// dropped with a warning (other implementations checked less).
pub(super) fn env_from_json(raw: &str, owner: &str) -> Result<EnvMap, PortError> {
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

/// A collection row as listed.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CollectionRow {
    pub(super) path: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) env_json: String,
}

/// A version row joined with its function's language.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct VersionRow {
    pub(super) version: i64,
    pub(super) s3_key: String,
    pub(super) env_json: String,
    pub(super) language: String,
    pub(super) created_at: DateTime<Utc>,
}

/// The newest version row's number and id (the revision token).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct RevisionRow {
    pub(super) version: i64,
    pub(super) id: i64,
}

/// A function with its newest version, as listed.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct SummaryRow {
    pub(super) name: String,
    pub(super) language: String,
    pub(super) version: i64,
    pub(super) created_at: DateTime<Utc>,
}

/// One version of a function, as listed.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct VersionItemRow {
    pub(super) version: i64,
    pub(super) created_at: DateTime<Utc>,
}

impl Inner {
    pub(super) async fn ping_postgres(&self) -> Result<(), PortError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| map_sqlx_error("checking PostgreSQL", e))
    }
}
