//! The settings part of `faas-server --help` and `faas-worker --help`: the
//! main variables with their defaults (the full table is README
//! "Configuration").

/// Settings both servers read, with their defaults.
pub const SETTINGS_HELP: &str = "\
Settings (environment variables, above the optional TOML file named by LOWCODE_FAAS_CONFIG):
  LOWCODE_FAAS_LISTEN                     dispatcher address                        [default: :8080]
  LOWCODE_FAAS_WORKER_LISTEN              worker address                            [default: :9090]
  LOWCODE_FAAS_WORKER_URL                 dispatcher: forward runs to this worker   [default: none]
  LOWCODE_FAAS_WORKER_TOKEN               bearer token of the worker hop            [default: none]
  LOWCODE_FAAS_API_TOKEN                  bearer token of the public API            [default: none]
  LOWCODE_FAAS_STORAGE                    files or db_s3                            [default: files]
  LOWCODE_FAAS_DATA_DIR                   root of the files storage                 [default: data]
  LOWCODE_FAAS_RUNTIME                    docker or process                         [default: docker]
  LOWCODE_FAAS_EXECUTION_MODE             cold, prewarm or warm                     [default: prewarm]
  LOWCODE_FAAS_NODE_DOCKER_IMAGE          image of the Docker runtime               [default: node:22-alpine]
  LOWCODE_FAAS_MAX_CONCURRENT_RUNS        runs at once                              [default: 32]
  LOWCODE_FAAS_INVOKE_DEFAULT_TIMEOUT_MS  timeout of an invoke, ms                  [default: 120000]
  LOWCODE_FAAS_FUNCTION_LOGS              capture console.* of every run            [default: false]
  LOWCODE_FAAS_FUNCTION_LOGS_SINK         stdout, docker_json, loki, elasticsearch,
                                          http (webhook) or memory                  [default: stdout]
  LOWCODE_FAAS_FUNCTION_LOGS_QUEUE_BYTES  bytes waiting in a sink's queue           [default: 33554432]
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
  LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS     time to send a request head, ms           [default: 10000]
  LOWCODE_FAAS_IDLE_TIMEOUT_MS            idle keep-alive connection closed after   [default: 30000]
  LOWCODE_FAAS_MAX_CONNECTIONS            open connections at once (more wait)      [default: 512]
  LOWCODE_FAAS_CONFIG                     optional TOML file                        [default: none]
  RUST_LOG                                service log filter (stderr)               [default: info]
Every variable: README.md, section Configuration.";
