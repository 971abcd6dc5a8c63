//! The one error enum of the domain crate.

use faas_ports::PortError;

/// Why a use case refused or failed. Every variant has a stable machine
/// [`code`](DomainError::code); the HTTP edge maps codes to status numbers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A validation or port error (invalid name, not found, storage unavailable …).
    #[error(transparent)]
    Port(#[from] PortError),
    /// `language` was something other than `javascript`.
    #[error("unsupported language '{0}': only 'javascript' is supported")]
    UnsupportedLanguage(String),
    /// Neither `source_code` nor `source_url` was given.
    #[error("one of source_code or source_url is required")]
    SourceRequired,
    /// The source (inline, or as fetched from `source_url`) is empty or
    /// only whitespace: nothing a run could import.
    #[error("the function source is empty or only whitespace")]
    EmptySource,
    /// Both `source_code` and `source_url` were given.
    #[error("source_code and source_url are mutually exclusive")]
    SourceConflict,
    /// The invoke `input` was not a JSON object.
    #[error("input must be a JSON object")]
    InvalidInput,
    /// The requested timeout is above the configured maximum.
    #[error("timeout_ms {requested} is above the maximum of {max} ms")]
    InvalidTimeout {
        /// Requested milliseconds.
        requested: u64,
        /// Maximum milliseconds.
        max: u64,
    },
    /// A log query names none of run id, function and deployment id.
    #[error("give at least one of run_id, function, deployment_id")]
    InvalidLogQuery,
    /// Every run slot is busy and the wait queue is full.
    #[error("too many runs: {in_flight} running and {queued} queued")]
    TooManyRequests {
        /// Runs in flight when refused.
        in_flight: usize,
        /// Runs queued when refused.
        queued: usize,
    },
}

impl DomainError {
    /// The stable machine code (`SOURCE_REQUIRED`, `TOO_MANY_REQUESTS`, or the port error's code).
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Port(e) => e.code(),
            DomainError::UnsupportedLanguage(_) => "UNSUPPORTED_LANGUAGE",
            DomainError::SourceRequired => "SOURCE_REQUIRED",
            DomainError::EmptySource => "EMPTY_SOURCE",
            DomainError::SourceConflict => "SOURCE_CONFLICT",
            DomainError::InvalidInput => "INVALID_INPUT",
            DomainError::InvalidTimeout { .. } => "INVALID_TIMEOUT",
            DomainError::InvalidLogQuery => "INVALID_QUERY",
            DomainError::TooManyRequests { .. } => "TOO_MANY_REQUESTS",
        }
    }
}
