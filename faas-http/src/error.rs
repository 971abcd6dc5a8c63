//! The server's error enum and the one mapping from errors to HTTP replies.

use faas_adapters::AdapterError;
use faas_domain::DomainError;
use faas_ports::report::{find_cause, Report};
use faas_ports::PortError;
use warp::http::StatusCode;

/// Failures of the composition root: configuration, adapters, binding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A setting is invalid or missing; the message names the variable.
    #[error("configuration error: {0}")]
    Config(String),
    /// An adapter could not be built (print with [`Report`] for the causes).
    #[error("{context}")]
    Adapter {
        /// What was being built.
        context: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        message: String,
    },
}

impl ServerError {
    /// True for a configuration error: a setting the loader or the
    /// composition root refuses, or one an adapter's own check refuses
    /// while it is built (`LOWCODE_FAAS_DATA_DIR` naming a file,
    /// `DOCKER_HOST` with a scheme Docker does not speak).
    pub fn is_config(&self) -> bool {
        match self {
            ServerError::Config(_) => true,
            ServerError::Adapter { source, .. } => {
                matches!(
                    find_cause::<AdapterError>(source.as_ref()),
                    Some(AdapterError::Config(_))
                )
            }
            ServerError::Bind { .. } => false,
        }
    }

    /// The exit status of a binary that stops on this error: 2 for a
    /// configuration error (as for an invalid setting), 1 for any other
    /// start-up failure (docs/api.md §9).
    pub fn exit_code(&self) -> u8 {
        if self.is_config() {
            2
        } else {
            1
        }
    }
}

/// An error reply: status, stable code and a human message, sent as
/// `{"error": "...", "code": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code.
    pub code: &'static str,
    /// Human message (short for 5xx: the cause chain is logged, not sent).
    pub message: String,
    /// `Allow` header for 405.
    pub allow: Option<String>,
    /// `Retry-After` seconds for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A reply with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
            retry_after: None,
        }
    }

    /// 400 `INVALID_JSON`.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_JSON", message)
    }

    /// 414 `URI_TOO_LONG`: the request target (path and query) is longer
    /// than [`crate::http::MAX_URI_BYTES`].
    pub fn uri_too_long() -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            format!("the request URI is longer than {} bytes", crate::http::MAX_URI_BYTES),
        )
    }

    /// 404 `NOT_FOUND` for an unknown path.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        let status = status_of(&err);
        let code = err.code();
        let message = if status.is_server_error() {
            tracing::error!(error = %Report(&err), code, "request failed");
            server_error_message(&err)
        } else {
            err.to_string()
        };
        let mut api = ApiError::new(status, code, message);
        if let DomainError::TooManyRequests { .. } = err {
            api.retry_after = Some(1);
        }
        api
    }
}

impl From<PortError> for ApiError {
    fn from(err: PortError) -> Self {
        ApiError::from(DomainError::from(err))
    }
}

/// 5xx bodies say little; the cause chain is logged once.
fn server_error_message(err: &DomainError) -> String {
    match err {
        DomainError::Port(PortError::Unavailable { component, .. }) => format!("{component} is unavailable"),
        DomainError::Port(PortError::SourceFetchFailed(m)) => format!("fetching source_url failed: {m}"),
        _ => "internal error".to_owned(),
    }
}

/// The one mapping from a domain error to its HTTP status. Every variant
/// known today has its row; the error enums are `#[non_exhaustive]` (so
/// adding a variant is not a breaking change for embedders), and a variant
/// added later answers 500 until it gets a row here.
pub fn status_of(err: &DomainError) -> StatusCode {
    match err {
        DomainError::Port(port) => match port {
            PortError::InvalidName(_)
            | PortError::InvalidCollectionPath(_)
            | PortError::InvalidEnv(_)
            | PortError::InvalidVersion(_)
            | PortError::InvalidSourceUrl(_)
            | PortError::VersionNotAvailable { .. }
            | PortError::SourceUrlForbidden(_) => StatusCode::BAD_REQUEST,
            PortError::CollectionNotFound(_) | PortError::FunctionNotFound(_) | PortError::VersionNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            PortError::CollectionExists(_) | PortError::CollectionNotEmpty(_) => StatusCode::CONFLICT,
            PortError::SourceTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            PortError::SourceFetchFailed(_) => StatusCode::BAD_GATEWAY,
            PortError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PortError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        DomainError::UnsupportedLanguage(_)
        | DomainError::SourceRequired
        | DomainError::EmptySource
        | DomainError::SourceConflict
        | DomainError::InvalidInput
        | DomainError::InvalidTimeout { .. }
        | DomainError::InvalidLogQuery => StatusCode::BAD_REQUEST,
        DomainError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: DomainError, status: u16, code: &str) {
        let api = ApiError::from(err);
        assert_eq!((api.status.as_u16(), api.code), (status, code));
    }

    #[test]
    fn mapping_table() {
        check(PortError::InvalidName("x".into()).into(), 400, "INVALID_NAME");
        check(
            PortError::CollectionNotFound("a".into()).into(),
            404,
            "COLLECTION_NOT_FOUND",
        );
        check(
            PortError::FunctionNotFound("f".into()).into(),
            404,
            "FUNCTION_NOT_FOUND",
        );
        check(
            PortError::VersionNotAvailable {
                function: "f".into(),
                version: 1,
                current: 2,
            }
            .into(),
            400,
            "VERSION_NOT_AVAILABLE",
        );
        check(PortError::CollectionExists("a".into()).into(), 409, "COLLECTION_EXISTS");
        check(PortError::SourceTooLarge { limit: 1 }.into(), 413, "SOURCE_TOO_LARGE");
        check(
            PortError::SourceUrlForbidden("x".into()).into(),
            400,
            "SOURCE_URL_FORBIDDEN",
        );
        check(
            PortError::SourceFetchFailed("x".into()).into(),
            502,
            "SOURCE_FETCH_FAILED",
        );
        check(
            PortError::storage_unavailable("x", std::io::Error::other("secret detail")).into(),
            503,
            "STORAGE_UNAVAILABLE",
        );
        check(DomainError::SourceRequired, 400, "SOURCE_REQUIRED");
        check(DomainError::EmptySource, 400, "EMPTY_SOURCE");
        check(DomainError::InvalidLogQuery, 400, "INVALID_QUERY");
        check(
            DomainError::UnsupportedLanguage("py".into()),
            400,
            "UNSUPPORTED_LANGUAGE",
        );
        check(
            DomainError::TooManyRequests {
                in_flight: 1,
                queued: 1,
            },
            429,
            "TOO_MANY_REQUESTS",
        );
    }

    #[test]
    fn server_errors_say_little() {
        let api = ApiError::from(DomainError::from(PortError::internal(
            "read",
            std::io::Error::other("/secret/path"),
        )));
        assert_eq!(api.message, "internal error");
    }

    #[test]
    fn configuration_errors_exit_2_and_other_start_up_failures_1() {
        let adapter = |source: AdapterError| ServerError::Adapter {
            context: "LOWCODE_FAAS_DATA_DIR".into(),
            source: Box::new(source),
        };
        let io = || std::io::Error::other("disk on fire");
        for (error, code) in [
            (ServerError::Config("LOWCODE_FAAS_X is bad".into()), 2),
            (adapter(AdapterError::Config("a file, not a directory".into())), 2),
            (
                adapter(AdapterError::Io {
                    context: "creating data directory".into(),
                    source: io(),
                }),
                1,
            ),
            (
                ServerError::Bind {
                    addr: ([127, 0, 0, 1], 8080).into(),
                    message: "address in use".into(),
                },
                1,
            ),
        ] {
            assert_eq!(error.exit_code(), code, "{error:?}");
        }
    }
}
