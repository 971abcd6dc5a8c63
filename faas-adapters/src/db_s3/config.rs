//! The settings of the `db_s3` storage and the checks that need no I/O;
//! every message names the variable.

use std::fmt;
use std::time::Duration;

use crate::AdapterError;

/// Settings of the `db_s3` storage (docs/api.md names the variables).
///
/// `Debug` redacts the DSN and the S3 keys.
#[derive(Clone, PartialEq, Eq)]
pub struct DbS3Config {
    /// `LOWCODE_FAAS_POSTGRES_DSN`: a URL (`postgres://user:pass@host:5432/db?sslmode=require`)
    /// or libpq keyword/value pairs (`host=… dbname=… sslmode=verify-full sslrootcert=…`).
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
    /// The documented defaults around the two required settings.
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

impl DbS3Config {
    /// Checks every setting that can be judged without I/O (the one place
    /// they are checked: [`super::DbS3SourceStore::connect`] calls it, and so
    /// does the configuration loader at start-up). Each message names its
    /// `LOWCODE_FAAS_*` variable.
    pub fn validate(&self) -> Result<(), AdapterError> {
        check_config(self)?;
        super::postgres::pg_options(self)?;
        object_store::path::Path::parse(format!("{}functions", self.s3_prefix)).map_err(|e| {
            AdapterError::Config(format!(
                "LOWCODE_FAAS_S3_PREFIX '{}' does not make valid object keys: {e}",
                self.s3_prefix
            ))
        })?;
        Ok(())
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
