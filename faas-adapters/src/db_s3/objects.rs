//! The S3 side: the client, object keys, the one mapping of object_store
//! errors, and reading and writing source objects.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_ports::{CollectionPath, FunctionName, PortError, Version};
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};

use super::config::DbS3Config;
use super::Inner;
use crate::AdapterError;

/// Largest source object read back; sources are written at most 1 MiB by
/// default, this only guards against a foreign object of absurd size.
pub(super) const MAX_SOURCE_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

pub(super) fn s3_client(config: &DbS3Config) -> Result<Arc<dyn ObjectStore>, AdapterError> {
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

/// The one mapping of S3 errors. Callers handle the errors that have a
/// meaning (an existing object on create, a missing source object) first.
pub(super) fn map_s3_error(op: &str, err: object_store::Error) -> PortError {
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

/// Reading a source object: missing (a meaning for the caller) or another failure.
pub(super) enum SourceError {
    Missing(object_store::Error),
    Other(PortError),
}

impl From<PortError> for SourceError {
    fn from(e: PortError) -> Self {
        SourceError::Other(e)
    }
}

impl Inner {
    // ---- keys ----

    /// `{prefix}functions/[{collection/path}/]{name}/v{N}.mjs`
    pub(super) fn s3_key(&self, collection: &CollectionPath, name: &FunctionName, version: Version) -> String {
        if collection.is_root() {
            format!("{}functions/{name}/v{version}.mjs", self.prefix)
        } else {
            format!("{}functions/{}/{name}/v{version}.mjs", self.prefix, collection.as_str())
        }
    }

    pub(super) fn object_path(key: &str) -> Result<ObjectPath, PortError> {
        ObjectPath::parse(key).map_err(|e| PortError::internal(format!("invalid object key '{key}'"), e))
    }

    /// One listing request below a prefix that holds nothing: a missing
    /// bucket, bad credentials or an unreachable server fail it.
    pub(super) async fn ping_s3(&self) -> Result<(), PortError> {
        let probe = Self::object_path(&format!("{}.health-probe", self.prefix))?;
        match self.s3.list(Some(&probe)).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(map_s3_error("checking the S3 bucket", e)),
        }
    }

    /// Writes a source object that must not exist yet; an orphan left by a
    /// failed save or delete is overwritten (see the module docs).
    pub(super) async fn put_source(&self, key: &str, source: &str) -> Result<(), PortError> {
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

    pub(super) async fn get_source(&self, key: &str) -> Result<String, SourceError> {
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
}
