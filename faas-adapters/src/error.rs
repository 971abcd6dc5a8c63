//! The error enum of the adapters crate: failures while building an adapter.

/// Building an adapter failed (bad setting, unusable directory, missing binary).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// A setting is invalid; the message names it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An I/O error while preparing the adapter.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
