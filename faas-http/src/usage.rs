//! The settings part of `faas-server --help` and `faas-worker --help`: the
//! main variables with their defaults (the full table is README
//! "Configuration").

use faas_adapters::docker::DockerConfig;
use faas_adapters::logs::QueueLimits;
use faas_adapters::runner::ExecutionConfig;
use faas_domain::Limits;

use crate::serve::ConnectionLimits;

/// Settings both servers read, with their defaults (taken from the types
/// that own them: `DockerConfig`, `ExecutionConfig`, `Limits`, `QueueLimits`,
/// `ConnectionLimits`).
pub fn settings_help() -> String {
    let limits = Limits::default();
    let connections = ConnectionLimits::default();
    format!(
        "\
Settings (environment variables, above the optional TOML file named by LOWCODE_FAAS_CONFIG):
  LOWCODE_FAAS_LISTEN                     dispatcher address                        [default: :8080]
  LOWCODE_FAAS_WORKER_LISTEN              worker address                            [default: :9090]
  LOWCODE_FAAS_WORKER_URL                 dispatcher: forward runs to this worker   [default: none]
  LOWCODE_FAAS_WORKER_TOKEN               bearer token of the worker hop            [default: none]
  LOWCODE_FAAS_API_TOKEN                  bearer token of the public API            [default: none]
  LOWCODE_FAAS_STORAGE                    files or db_s3                            [default: files]
  LOWCODE_FAAS_DATA_DIR                   root of the files storage                 [default: data]
  LOWCODE_FAAS_RUNTIME                    docker or process                         [default: docker]
  LOWCODE_FAAS_EXECUTION_MODE             cold, prewarm or warm                     [default: {mode}]
  LOWCODE_FAAS_NODE_DOCKER_IMAGE          image of the Docker runtime               [default: {image}]
  LOWCODE_FAAS_MAX_CONCURRENT_RUNS        runs at once                              [default: {max_concurrent_runs}]
  LOWCODE_FAAS_INVOKE_DEFAULT_TIMEOUT_MS  timeout of an invoke, ms                  [default: {default_timeout_ms}]
  LOWCODE_FAAS_FUNCTION_LOGS              capture console.* of every run            [default: false]
  LOWCODE_FAAS_FUNCTION_LOGS_SINK         stdout, docker_json, loki, elasticsearch,
                                          http (webhook) or memory                  [default: stdout]
  LOWCODE_FAAS_FUNCTION_LOGS_QUEUE_BYTES  bytes waiting in a sink's queue           [default: {queue_bytes}]
  LOWCODE_FAAS_LOG_ES_URL                 elasticsearch sink: base URL (_INDEX, _USER, _PASSWORD)
  LOWCODE_FAAS_LOG_HTTP_URL               http sink: URL (_HEADER \"Name: value\")
  HTTP_PROXY, HTTPS_PROXY, NO_PROXY       proxy of log sinks and the worker hop     [default: none]
  LOWCODE_FAAS_UI                         dispatcher: the playground at /ui/        [default: true]
  LOWCODE_FAAS_LEGACY_NAMES               new names may use the Go version's rules  [default: false]
  LOWCODE_FAAS_CORS_ORIGINS               dispatcher: origins allowed cross-origin  [default: none]
  LOWCODE_FAAS_ALLOW_UNAUTHENTICATED      worker: listen beyond loopback, no token  [default: false]
  LOWCODE_FAAS_REDACT_ENV                 responses show env values as ***          [default: false]
  LOWCODE_FAAS_ENV_ENCRYPTION_KEY         base64 32-byte key: env encrypted at rest [default: none]
  LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS  earlier keys, read only (rotation)     [default: none]
  LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS     time to send a request head, ms           [default: {header_read_timeout_ms}]
  LOWCODE_FAAS_IDLE_TIMEOUT_MS            idle keep-alive connection closed after   [default: {idle_timeout_ms}]
  LOWCODE_FAAS_MAX_CONNECTIONS            open connections at once (more wait)      [default: {max_connections}]
  LOWCODE_FAAS_CONFIG                     optional TOML file                        [default: none]
  RUST_LOG                                service log filter (stderr)               [default: info]
Every variable: README.md, section Configuration.",
        mode = ExecutionConfig::default().mode.as_str(),
        image = DockerConfig::default().image,
        max_concurrent_runs = limits.max_concurrent_runs,
        default_timeout_ms = limits.default_timeout.as_millis(),
        queue_bytes = QueueLimits::default().max_bytes,
        header_read_timeout_ms = connections.header_read_timeout.as_millis(),
        idle_timeout_ms = connections.idle_timeout.as_millis(),
        max_connections = connections.max_connections,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of(help: &str, variable: &str) -> String {
        help.lines()
            .find(|l| l.trim_start().starts_with(variable))
            .unwrap_or_else(|| panic!("{variable} is in the help"))
            .to_owned()
    }

    #[test]
    fn the_defaults_are_those_of_the_owning_types() {
        let help = settings_help();
        let image = DockerConfig::default().image;
        assert!(line_of(&help, "LOWCODE_FAAS_NODE_DOCKER_IMAGE").ends_with(&format!("[default: {image}]")));
        let runs = Limits::default().max_concurrent_runs;
        assert!(line_of(&help, "LOWCODE_FAAS_MAX_CONCURRENT_RUNS").ends_with(&format!("[default: {runs}]")));
        assert!(line_of(&help, "LOWCODE_FAAS_EXECUTION_MODE").ends_with("[default: prewarm]"));
    }

    #[test]
    fn the_defaults_stay_in_their_column() {
        let help = settings_help();
        let column = line_of(&help, "LOWCODE_FAAS_LISTEN").find("[default:");
        for line in help.lines().filter(|l| l.contains("[default:")) {
            assert_eq!(line.find("[default:"), column, "{line}");
        }
    }
}
