//! The error enum of the adapters crate: failures while building an adapter.
//!
//! Messages never repeat their source: print an `AdapterError` with
//! [`faas_ports::report::Report`] to see the whole cause chain.

/// Building an adapter failed (bad setting, unusable directory, missing binary).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// A setting is invalid; the message names it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An I/O error while preparing the adapter.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A backend the adapter needs did not answer, or refused, at start-up.
    #[error("{context}")]
    Unavailable {
        /// What was being done.
        context: String,
        /// Why (its cause chain names the actual failure).
        #[source]
        source: faas_ports::BoxError,
    },
}
