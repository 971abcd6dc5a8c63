//! Settings: built-in defaults < optional TOML file (`LOWCODE_FAAS_CONFIG`)
//! < `LOWCODE_FAAS_*` environment variables (docs/api.md).
//!
//! Every variable is read through one table ([`KEYS`]) so that `_` inside our
//! names never splits a key, and every bad value is reported with the name of
//! its variable before any port is bound.
//!
//! The loader is split by concern: `keys` (the table of names, unknown
//! variables, the file's keys), `raw` (typed reads of one key, and the
//! settings of the servers themselves), `backends` (storage, log sinks and
//! env encryption, each checked by its adapter's own config type) and
//! `parse` (the value syntaxes: booleans, listen addresses, worker URLs).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use faas_adapters::db_s3::DbS3Config;
use faas_adapters::docker::DockerConfig;
use faas_adapters::elasticsearch::EsConfig;
use faas_adapters::encryption::EnvEncryptionConfig;
use faas_adapters::logs::push::BatchConfig;
use faas_adapters::logs::QueueLimits;
use faas_adapters::loki::LokiConfig;
use faas_adapters::outbound::OutboundProxy;
use faas_adapters::runner::ExecutionConfig;
use faas_adapters::webhook::WebhookConfig;
use faas_domain::Limits;

use crate::ServerError;

mod backends;
mod keys;
mod parse;
mod raw;

pub use keys::{env_name, unknown_variables, UnknownVariable, ENV_PREFIX, KEYS, OTHER_VARIABLES};
pub use parse::{parse_bool, parse_listen, parse_worker_urls};

use keys::check_keys;
use raw::{adapter_config, Raw};

/// The longest duration any `*_MS` setting accepts: a day.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// The largest `LOWCODE_FAAS_MAX_CONNECTIONS` accepted.
pub const MAX_CONNECTIONS_CAP: u64 = 1 << 20;

/// Which storage backend holds functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSettings {
    /// The `files` layout under a data directory.
    Files {
        /// `LOWCODE_FAAS_DATA_DIR`.
        data_dir: PathBuf,
    },
    /// PostgreSQL metadata + S3 sources (the adapter's own settings type;
    /// its `Debug` redacts the DSN and the keys).
    DbS3(DbS3Config),
}

/// Which runtime runs functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Docker containers (the default).
    Docker,
    /// Local `node` processes (development; no isolation).
    Process,
}

/// Where captured function logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSinkKind {
    /// `[function-log] <json>` lines on stdout.
    Stdout,
    /// JSON lines with `log_stream` on stdout (`docker_json` / `promtail`).
    DockerJson,
    /// Pushed to Loki.
    Loki,
    /// Bulk-pushed to Elasticsearch (`elasticsearch` / `es`).
    Elasticsearch,
    /// Posted to an HTTP endpoint (`http` / `webhook`).
    Http,
    /// Only the in-memory buffer.
    Memory,
}

/// A secret string that never shows in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Settings of the container runtimes.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSettings {
    /// `LOWCODE_FAAS_RUNTIME`.
    pub kind: RuntimeKind,
    /// `LOWCODE_FAAS_NODE_BIN` (process runtime).
    pub node_bin: PathBuf,
    /// `LOWCODE_FAAS_NODE_DOCKER_IMAGE`.
    pub node_docker_image: String,
    /// `LOWCODE_FAAS_PREWARM_NODE_IMAGE`.
    pub prewarm_node_image: bool,
    /// `LOWCODE_FAAS_CONTAINER_MEMORY_MB`.
    pub container_memory_mb: u64,
    /// `LOWCODE_FAAS_CONTAINER_CPUS`.
    pub container_cpus: f64,
    /// `LOWCODE_FAAS_CONTAINER_NETWORK`.
    pub container_network: String,
    /// `LOWCODE_FAAS_CONTAINER_USER`.
    pub container_user: String,
    /// `LOWCODE_FAAS_INSTANCE_ID`; `None` = hostname + the process's listen
    /// port (see [`Settings::instance_id`]).
    pub instance_id: Option<String>,
    /// `LOWCODE_FAAS_EXECUTION_MODE`, `_PREWARM_POOL_SIZE`, `_WARM_IDLE_TTL_MS`,
    /// `_WARM_MAX_CONTAINERS`, `_WARM_MAX_PER_KEY` (both runtimes).
    pub execution: ExecutionConfig,
}

impl RuntimeSettings {
    /// The Docker runtime's settings, owned by `instance_id`.
    pub fn docker_config(&self, instance_id: String) -> DockerConfig {
        DockerConfig {
            image: self.node_docker_image.clone(),
            memory_mb: self.container_memory_mb,
            cpus: self.container_cpus,
            network: self.container_network.clone(),
            user: self.container_user.clone(),
            instance_id,
            prewarm_image: self.prewarm_node_image,
            execution: self.execution.clone(),
            // The Docker CLI's config file, as `docker pull` (DOCKER_CONFIG).
            registry_auth: faas_adapters::docker::RegistryAuth::default(),
        }
    }
}

/// Settings of function-log capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `LOWCODE_FAAS_FUNCTION_LOGS`.
    pub enabled: bool,
    /// `LOWCODE_FAAS_FUNCTION_LOGS_SINK`.
    pub sink: LogSinkKind,
    /// `LOWCODE_FAAS_FUNCTION_LOGS_BUFFER`.
    pub buffer: usize,
    /// `LOWCODE_FAAS_FUNCTION_LOGS_BUFFER_BYTES`: the memory buffer's byte cap.
    pub buffer_bytes: usize,
    /// `LOWCODE_FAAS_FUNCTION_LOGS_QUEUE` and `_QUEUE_BYTES`: the bounds of
    /// every sink's queue (stdout, docker_json and the pushing sinks).
    pub queue: QueueLimits,
    /// `LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS` and the batch bounds of
    /// the pushing sinks.
    pub batch: BatchConfig,
    /// The `loki` sink's settings (`LOWCODE_FAAS_LOG_LOKI_URL`, `_TENANT`,
    /// `_TIMEOUT_MS`), validated by the adapter's own config type; `None`
    /// when no URL is set.
    pub loki: Option<LokiConfig>,
    /// The `elasticsearch` sink's settings (`LOWCODE_FAAS_LOG_ES_URL`,
    /// `_INDEX`, `_USER`, `_PASSWORD`); `None` when no URL is set.
    pub es: Option<EsConfig>,
    /// The `http` / `webhook` sink's settings (`LOWCODE_FAAS_LOG_HTTP_URL`,
    /// `_HEADER`); `None` when no URL is set.
    pub http: Option<WebhookConfig>,
    /// `LOWCODE_FAAS_LOGS_GRAFANA_EXPLORE_URL_TEMPLATE`.
    pub grafana_explore_url_template: Option<String>,
}

/// Every setting of the dispatcher and the worker, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `LOWCODE_FAAS_LISTEN` (dispatcher).
    pub listen: SocketAddr,
    /// `LOWCODE_FAAS_WORKER_LISTEN` (worker).
    pub worker_listen: SocketAddr,
    /// `LOWCODE_FAAS_WORKER_URL`: proxy invokes to these workers (a
    /// comma-separated list of base URLs, each `http(s)://host[:port]`
    /// without path, query or fragment, trailing `/` removed); empty = run
    /// invokes in this process.
    pub worker_urls: Vec<String>,
    /// `LOWCODE_FAAS_WORKER_DNS_REFRESH_MS`: how often names in
    /// `LOWCODE_FAAS_WORKER_URL` are resolved again (default 10 s).
    pub worker_dns_refresh: Duration,
    /// `LOWCODE_FAAS_WORKER_HEALTH_INTERVAL_MS`: how often the dispatcher
    /// polls each worker's `/readyz` (default 2 s).
    pub worker_health_interval: Duration,
    /// `LOWCODE_FAAS_WORKER_TOKEN`.
    pub worker_token: Option<Secret>,
    /// `LOWCODE_FAAS_API_TOKEN`.
    pub api_token: Option<Secret>,
    /// `LOWCODE_FAAS_SHUTDOWN_GRACE_MS`.
    pub shutdown_grace: Duration,
    /// `LOWCODE_FAAS_MAX_BODY_BYTES`.
    pub max_body_bytes: u64,
    /// `LOWCODE_FAAS_STORAGE` and its settings.
    pub storage: StorageSettings,
    /// `LOWCODE_FAAS_STORAGE_TIMEOUT_MS`.
    pub storage_timeout: Duration,
    /// `LOWCODE_FAAS_FUNCTION_CACHE`.
    pub function_cache: bool,
    /// `LOWCODE_FAAS_FUNCTION_CACHE_SIZE`.
    pub function_cache_size: usize,
    /// `LOWCODE_FAAS_LEGACY_NAMES` (false): new functions may take any name
    /// the Go version accepted ([`faas_ports::FunctionName::parse_stored`]),
    /// not only today's grammar. Stored names are usable either way.
    pub legacy_names: bool,
    /// Limits handed to the engine.
    pub limits: Limits,
    /// Runtime settings.
    pub runtime: RuntimeSettings,
    /// Function-log settings.
    pub logs: LogSettings,
    /// `LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE`.
    pub source_fetch_allow_private: bool,
    /// `LOWCODE_FAAS_UI`: the dispatcher serves the playground at `/ui/`.
    pub ui: bool,
    /// `LOWCODE_FAAS_CORS_ORIGINS`: exact origins allowed cross-origin
    /// (CORS), empty by default (see [`crate::browser`]).
    pub cors_origins: Vec<String>,
    /// Bounds of every HTTP connection: `LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS`,
    /// `LOWCODE_FAAS_IDLE_TIMEOUT_MS`, `LOWCODE_FAAS_MAX_CONNECTIONS`; the
    /// head caps are code defaults (tests and embedders set them here).
    pub connection_limits: crate::serve::ConnectionLimits,
    /// `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` (or lowercase): the proxy of
    /// the worker hop and the log sinks' clients, never of the source fetcher.
    pub proxy: OutboundProxy,
    /// `LOWCODE_FAAS_REDACT_ENV`: responses show env keys with every value
    /// as `***` (writes still take values, runs still get them).
    pub redact_env: bool,
    /// `LOWCODE_FAAS_ALLOW_UNAUTHENTICATED`: a worker may listen on a
    /// non-loopback address without `LOWCODE_FAAS_WORKER_TOKEN` (with a
    /// warning; see [`crate::exposure`]).
    pub allow_unauthenticated: bool,
    /// `LOWCODE_FAAS_ENV_ENCRYPTION_KEY` and `_PREVIOUS_KEYS`: env values
    /// encrypted at rest (checked by the adapter's own config type; its
    /// `Debug` shows key ids only).
    pub env_encryption: EnvEncryptionConfig,
}

impl Settings {
    /// Loads settings from the process: `LOWCODE_FAAS_CONFIG` file and `LOWCODE_FAAS_*` variables.
    pub fn from_env() -> Result<Self, ServerError> {
        Self::from_vars(std::env::vars())
    }

    /// Loads settings from explicit variables (tests use this instead of
    /// mutating the process env). `LOWCODE_FAAS_CONFIG` among them names
    /// the optional TOML file.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ServerError> {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        for unknown in unknown_variables(vars.keys().map(String::as_str)) {
            match &unknown.did_you_mean {
                Some(known) => tracing::warn!(
                    variable = %unknown.name,
                    did_you_mean = %known,
                    "Unknown LOWCODE_FAAS_ variable; it is ignored."
                ),
                None => tracing::warn!(variable = %unknown.name, "Unknown LOWCODE_FAAS_ variable; it is ignored."),
            }
        }
        let mut builder = config::Config::builder();
        if let Some(path) = vars.get("LOWCODE_FAAS_CONFIG").filter(|p| !p.trim().is_empty()) {
            builder = builder.add_source(config::File::new(path, config::FileFormat::Toml).required(true));
        }
        Self::load(builder, &vars)
    }

    /// Settings from the text of a TOML file alone (no variables): what
    /// `LOWCODE_FAAS_CONFIG` naming a file with this text gives.
    pub fn from_toml_str(text: &str) -> Result<Self, ServerError> {
        let builder = config::Config::builder().add_source(config::File::from_str(text, config::FileFormat::Toml));
        Self::load(builder, &HashMap::new())
    }

    /// The variables over the sources of `builder`, checked into settings.
    fn load(
        mut builder: config::ConfigBuilder<config::builder::DefaultState>,
        vars: &HashMap<String, String>,
    ) -> Result<Self, ServerError> {
        for key in KEYS {
            if let Some(value) = vars.get(&env_name(key)) {
                builder = builder
                    .set_override(*key, value.clone())
                    .map_err(|e| ServerError::Config(format!("{}: {e}", env_name(key))))?;
            }
        }
        let cfg = builder
            .build()
            .map_err(|e| ServerError::Config(format!("LOWCODE_FAAS_CONFIG: {e}")))?;
        check_keys(&cfg)?;
        let proxy = OutboundProxy::from_vars(|name| vars.get(name).cloned());
        proxy.validate().map_err(adapter_config)?;
        let raw = Raw { cfg, proxy };
        raw.settings()
    }

    /// The owner label of this process's containers: `LOWCODE_FAAS_INSTANCE_ID`,
    /// else hostname + the port the process listens on (stable across restarts).
    pub fn instance_id(&self, listen: SocketAddr) -> String {
        self.runtime.instance_id.clone().unwrap_or_else(|| {
            let host = hostname().unwrap_or_else(|| "localhost".to_owned());
            match listen.port() {
                // An ephemeral port is not stable anyway: never share an owner
                // label with another process that also asked for port 0.
                0 => format!("{host}-0-{}", std::process::id()),
                port => format!("{host}-{port}"),
            }
        })
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
