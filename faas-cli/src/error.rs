//! What can go wrong in a command, and the exit status each outcome maps to.

use std::fmt;

/// Exit status of a command that did what it was asked (a run that
/// succeeded included).
pub const EXIT_OK: u8 = 0;
/// Exit status when a function run (remote or local) failed.
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit status of a usage error (clap uses it for its own errors too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the server answered an error or could not be reached.
pub const EXIT_SERVER: u8 = 3;

/// A failed command, sorted by meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliError {
    /// Bad arguments or unreadable local files: nothing was sent.
    Usage(String),
    /// The API answered 4xx/5xx with `{"error","code"}` (or something else).
    Api {
        /// HTTP status.
        status: u16,
        /// The body's `error` (or a description of the body).
        error: String,
        /// The body's `code` (empty when the body had none).
        code: String,
    },
    /// The request did not get an answer (connection refused, timeout, a
    /// body that is not JSON).
    Network(String),
    /// The function ran and failed (`status: "failed"`).
    RunFailed {
        /// The run's `error_code`.
        code: String,
        /// The run's `error_message`.
        message: String,
    },
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Api { .. } | CliError::Network(_) => EXIT_SERVER,
            CliError::RunFailed { .. } => EXIT_RUN_FAILED,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Api { status, error, code } if code.is_empty() => write!(f, "server answered {status}: {error}"),
            CliError::Api { status, error, code } => write!(f, "server answered {status} {code}: {error}"),
            CliError::Network(m) => write!(f, "cannot reach the server: {m}"),
            CliError::RunFailed { code, message } => write!(f, "run failed: {code}: {message}"),
        }
    }
}

impl std::error::Error for CliError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_meaning() {
        let cases = [
            (CliError::Usage("x".into()), 2),
            (
                CliError::Api {
                    status: 404,
                    error: "no such function".into(),
                    code: "FUNCTION_NOT_FOUND".into(),
                },
                3,
            ),
            (CliError::Network("refused".into()), 3),
            (
                CliError::RunFailed {
                    code: "HANDLER_THROW".into(),
                    message: "boom".into(),
                },
                1,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.exit_code(), code, "{err}");
        }
    }

    #[test]
    fn api_errors_name_status_code_and_message() {
        let e = CliError::Api {
            status: 404,
            error: "no such function".into(),
            code: "FUNCTION_NOT_FOUND".into(),
        };
        assert_eq!(
            e.to_string(),
            "server answered 404 FUNCTION_NOT_FOUND: no such function"
        );
    }
}
