//! The one error enum of the ports crate, sorted by meaning.

use std::fmt;

/// A boxed backend error kept as the `source` of a [`PortError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which part of the system an [`PortError::Unavailable`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The metadata or source storage (files, PostgreSQL, S3).
    Storage,
    /// The container runtime (Docker daemon, `node` binary).
    Runtime,
    /// A function-log sink.
    LogSink,
    /// The worker process (proxy mode).
    Worker,
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Component::Storage => "storage",
            Component::Runtime => "runtime",
            Component::LogSink => "log_sink",
            Component::Worker => "worker",
        })
    }
}

/// Errors of validation and of the port traits.
///
/// Every variant has a stable machine code ([`PortError::code`]); the HTTP
/// edge maps codes to status numbers, this crate knows nothing about HTTP.
/// Backend errors (`std::io::Error`, SQL, S3 …) are kept boxed as `source`,
/// never as a type in a signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// A function name broke the rules of [`crate::FunctionName`].
    #[error("invalid function name: {0}")]
    InvalidName(String),
    /// A collection path broke the rules of [`crate::CollectionPath`].
    #[error("invalid collection path: {0}")]
    InvalidCollectionPath(String),
    /// An env map broke the rules of [`crate::EnvMap`].
    #[error("invalid env: {0}")]
    InvalidEnv(String),
    /// A version was not an integer >= 1.
    #[error("invalid version: {0}")]
    InvalidVersion(String),
    /// A source URL was not an absolute http(s) URL.
    #[error("invalid source_url: {0}")]
    InvalidSourceUrl(String),
    /// The named collection does not exist.
    #[error("collection '{0}' not found")]
    CollectionNotFound(String),
    /// The named function does not exist.
    #[error("function '{0}' not found")]
    FunctionNotFound(String),
    /// The function exists but not in that version.
    #[error("version {version} of function '{function}' not found")]
    VersionNotFound {
        /// Function id.
        function: String,
        /// Requested version.
        version: u64,
    },
    /// The storage keeps only the current version and another was asked for.
    #[error("version {version} of function '{function}' is not available: this storage keeps only the current version ({current})")]
    VersionNotAvailable {
        /// Function id.
        function: String,
        /// Requested version.
        version: u64,
        /// The version that is stored.
        current: u64,
    },
    /// A collection with that path exists already.
    #[error("collection '{0}' already exists")]
    CollectionExists(String),
    /// The collection still holds functions or sub-collections.
    #[error("collection '{0}' is not empty")]
    CollectionNotEmpty(String),
    /// A source was larger than the configured limit.
    #[error("source is larger than {limit} bytes")]
    SourceTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A source URL points at an address that may not be fetched.
    #[error("source_url is forbidden: {0}")]
    SourceUrlForbidden(String),
    /// Fetching a source URL failed (status, network, timeout).
    #[error("fetching source_url failed: {0}")]
    SourceFetchFailed(String),
    /// A backend could not be reached or did not answer in time.
    #[error("{component} unavailable: {message}")]
    Unavailable {
        /// What is unavailable.
        component: Component,
        /// Short description, safe to show to a caller.
        message: String,
        /// The backend error.
        #[source]
        source: Option<BoxError>,
    },
    /// Stored data could not be read back (corrupt file, bad row).
    #[error("internal error: {message}")]
    Internal {
        /// Short description.
        message: String,
        /// The backend error.
        #[source]
        source: Option<BoxError>,
    },
}

impl PortError {
    /// The stable machine code of this error (`INVALID_NAME`, `STORAGE_UNAVAILABLE` …).
    pub fn code(&self) -> &'static str {
        match self {
            PortError::InvalidName(_) => "INVALID_NAME",
            PortError::InvalidCollectionPath(_) => "INVALID_COLLECTION_PATH",
            PortError::InvalidEnv(_) => "INVALID_ENV",
            PortError::InvalidVersion(_) => "INVALID_VERSION",
            PortError::InvalidSourceUrl(_) => "INVALID_SOURCE_URL",
            PortError::CollectionNotFound(_) => "COLLECTION_NOT_FOUND",
            PortError::FunctionNotFound(_) => "FUNCTION_NOT_FOUND",
            PortError::VersionNotFound { .. } => "VERSION_NOT_FOUND",
            PortError::VersionNotAvailable { .. } => "VERSION_NOT_AVAILABLE",
            PortError::CollectionExists(_) => "COLLECTION_EXISTS",
            PortError::CollectionNotEmpty(_) => "COLLECTION_NOT_EMPTY",
            PortError::SourceTooLarge { .. } => "SOURCE_TOO_LARGE",
            PortError::SourceUrlForbidden(_) => "SOURCE_URL_FORBIDDEN",
            PortError::SourceFetchFailed(_) => "SOURCE_FETCH_FAILED",
            PortError::Unavailable { component, .. } => match component {
                Component::Storage => "STORAGE_UNAVAILABLE",
                Component::Runtime => "RUNTIME_UNAVAILABLE",
                Component::LogSink => "LOG_SINK_UNAVAILABLE",
                Component::Worker => "WORKER_UNAVAILABLE",
            },
            PortError::Internal { .. } => "INTERNAL",
        }
    }

    /// Storage could not be reached; `source` is the backend error.
    pub fn storage_unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        PortError::Unavailable {
            component: Component::Storage,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An internal failure with its backend error.
    pub fn internal(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        PortError::Internal {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(PortError::InvalidName("x".into()).code(), "INVALID_NAME");
        assert_eq!(
            PortError::storage_unavailable("down", std::io::Error::other("x")).code(),
            "STORAGE_UNAVAILABLE"
        );
        assert_eq!(
            PortError::VersionNotAvailable {
                function: "f".into(),
                version: 2,
                current: 1
            }
            .code(),
            "VERSION_NOT_AVAILABLE"
        );
    }
}
