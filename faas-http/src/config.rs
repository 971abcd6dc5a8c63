//! Settings: built-in defaults < optional TOML file (`LOWCODE_FAAS_CONFIG`)
//! < `LOWCODE_FAAS_*` environment variables (docs/api.md).
//!
//! Every variable is read through one table ([`KEYS`]) so that `_` inside our
//! names never splits a key, and every bad value is reported with the name of
//! its variable before any port is bound.

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
use faas_adapters::runner::{ExecutionConfig, ExecutionMode};
use faas_adapters::webhook::{WebhookConfig, WebhookHeader};
use faas_adapters::AdapterError;
use faas_domain::Limits;

use crate::ServerError;

/// The longest duration any `*_MS` setting accepts: a day.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// Prefix of every environment variable.
pub const ENV_PREFIX: &str = "LOWCODE_FAAS_";

/// Every setting key (lowercase, without the prefix). The TOML file uses
/// these names; the environment uses `LOWCODE_FAAS_` + the uppercase name.
pub const KEYS: &[&str] = &[
    "listen",
    "worker_listen",
    "worker_url",
    "worker_token",
    "worker_dns_refresh_ms",
    "worker_health_interval_ms",
    "api_token",
    "shutdown_grace_ms",
    "max_body_bytes",
    "storage",
    "data_dir",
    "postgres_dsn",
    "s3_endpoint",
    "s3_region",
    "s3_bucket",
    "s3_access_key",
    "s3_secret_key",
    "s3_use_path_style",
    "s3_prefix",
    "storage_timeout_ms",
    "function_cache",
    "function_cache_size",
    "legacy_names",
    "max_source_bytes",
    "max_output_bytes",
    "invoke_default_timeout_ms",
    "invoke_max_timeout_ms",
    "max_concurrent_runs",
    "max_queued_runs",
    "runtime",
    "node_bin",
    "node_docker_image",
    "prewarm_node_image",
    "container_memory_mb",
    "container_cpus",
    "container_network",
    "container_user",
    "instance_id",
    "execution_mode",
    "prewarm_pool_size",
    "warm_idle_ttl_ms",
    "warm_max_containers",
    "warm_max_per_key",
    "function_logs",
    "function_logs_sink",
    "function_logs_buffer",
    "function_log_max_bytes",
    "function_logs_buffer_bytes",
    "function_logs_queue",
    "function_logs_queue_bytes",
    "function_logs_batch_wait_ms",
    "log_loki_url",
    "log_loki_tenant",
    "log_loki_timeout_ms",
    "log_es_url",
    "log_es_index",
    "log_es_user",
    "log_es_password",
    "log_http_url",
    "log_http_header",
    "logs_grafana_explore_url_template",
    "source_fetch_allow_private",
    "ui",
    "cors_origins",
    "redact_env",
    "allow_unauthenticated",
    "env_encryption_key",
    "env_encryption_previous_keys",
    "header_read_timeout_ms",
    "idle_timeout_ms",
    "max_connections",
];

/// The largest `LOWCODE_FAAS_MAX_CONNECTIONS` accepted.
pub const MAX_CONNECTIONS_CAP: u64 = 1 << 20;

/// Variables of ours that are not setting keys, read elsewhere:
/// `LOWCODE_FAAS_CONFIG` names the file, `LOWCODE_FAAS_LOG_FORMAT` is read
/// by the tracing set-up.
pub const OTHER_VARIABLES: &[&str] = &["LOWCODE_FAAS_CONFIG", "LOWCODE_FAAS_LOG_FORMAT"];

/// Prefix of the test suites' own variables (`LOWCODE_FAAS_TEST_POSTGRES_DSN` …),
/// which are never settings.
const TEST_PREFIX: &str = "LOWCODE_FAAS_TEST_";

/// An environment variable with our prefix that no setting reads: most
/// likely a typo, reported at start-up with the nearest known name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    /// The variable as set.
    pub name: String,
    /// The known variable it is closest to, when one is close.
    pub did_you_mean: Option<String>,
}

/// Every `LOWCODE_FAAS_*` variable among `names` that nothing reads, sorted,
/// each with the nearest known name when it is within a few edits.
pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<UnknownVariable> {
    let known: Vec<String> = KEYS
        .iter()
        .map(|k| env_name(k))
        .chain(OTHER_VARIABLES.iter().map(|v| (*v).to_owned()))
        .collect();
    let mut out: Vec<UnknownVariable> = names
        .into_iter()
        .filter(|n| n.starts_with(ENV_PREFIX) && !n.starts_with(TEST_PREFIX))
        .filter(|n| !known.iter().any(|k| k == n))
        .map(|name| {
            let suffix = &name[ENV_PREFIX.len()..];
            let did_you_mean = known
                .iter()
                .map(|k| (strsim::damerau_levenshtein(suffix, &k[ENV_PREFIX.len()..]), k))
                .filter(|(distance, _)| *distance <= (suffix.len() / 3).max(2))
                .min_by_key(|(distance, _)| *distance)
                .map(|(_, k)| k.clone());
            UnknownVariable {
                name: name.to_owned(),
                did_you_mean,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

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

/// Refuses unknown keys (a misspelt setting in the file is an error, not a
/// silent default) and values that are not scalars.
fn check_keys(cfg: &config::Config) -> Result<(), ServerError> {
    let table = cfg
        .clone()
        .try_deserialize::<HashMap<String, config::Value>>()
        .map_err(|e| ServerError::Config(format!("LOWCODE_FAAS_CONFIG: {e}")))?;
    let mut unknown: Vec<&String> = table.keys().filter(|k| !KEYS.contains(&k.as_str())).collect();
    unknown.sort();
    if let Some(key) = unknown.first() {
        return Err(ServerError::Config(format!(
            "LOWCODE_FAAS_CONFIG: unknown setting '{key}' (settings are the LOWCODE_FAAS_* names without the prefix, lowercased)"
        )));
    }
    for key in KEYS {
        match cfg.get_string(key) {
            Ok(_) | Err(config::ConfigError::NotFound(_)) => {}
            Err(e) => return Err(ServerError::Config(format!("{}: {e}", env_name(key)))),
        }
    }
    Ok(())
}

/// `listen` → `LOWCODE_FAAS_LISTEN`.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_uppercase())
}

struct Raw {
    cfg: config::Config,
    proxy: OutboundProxy,
}

impl Raw {
    fn string(&self, key: &str) -> Option<String> {
        self.cfg
            .get_string(key)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    fn string_or(&self, key: &str, default: &str) -> String {
        self.string(key).unwrap_or_else(|| default.to_owned())
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ServerError> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => parse_bool(&v).ok_or_else(|| invalid(key, &v, "expected 1/true/yes/on or 0/false/no/off")),
        }
    }

    fn u64_or(&self, key: &str, default: u64) -> Result<u64, ServerError> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| invalid(key, &v, "expected a non-negative integer")),
        }
    }

    fn positive_u64_or(&self, key: &str, default: u64) -> Result<u64, ServerError> {
        let n = self.u64_or(key, default)?;
        if n == 0 {
            return Err(invalid(key, "0", "must be greater than 0"));
        }
        Ok(n)
    }

    fn positive_usize_or(&self, key: &str, default: usize) -> Result<usize, ServerError> {
        let n = self.positive_u64_or(key, default as u64)?;
        usize::try_from(n).map_err(|_| invalid(key, &n.to_string(), "too large"))
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize, ServerError> {
        let n = self.u64_or(key, default as u64)?;
        usize::try_from(n).map_err(|_| invalid(key, &n.to_string(), "too large"))
    }

    /// The execution-mode settings, checked by the adapters' own rules.
    fn execution(&self) -> Result<ExecutionConfig, ServerError> {
        let defaults = ExecutionConfig::default();
        let mode = match self.string("execution_mode") {
            None => defaults.mode,
            Some(raw) => ExecutionMode::parse(&raw)
                .ok_or_else(|| invalid("execution_mode", &raw, "expected cold, prewarm or warm"))?,
        };
        let config = ExecutionConfig {
            mode,
            prewarm_pool_size: self.usize_or("prewarm_pool_size", defaults.prewarm_pool_size)?,
            // In ms at this edge; the adapter judges the range.
            warm_idle_ttl: Duration::from_millis(self.positive_u64_or("warm_idle_ttl_ms", ms(defaults.warm_idle_ttl))?),
            warm_max_containers: self.usize_or("warm_max_containers", defaults.warm_max_containers)?,
            warm_max_per_key: self.usize_or("warm_max_per_key", defaults.warm_max_per_key)?,
        };
        config.validate().map_err(adapter_config)?;
        Ok(config)
    }

    /// A duration in ms, from 1 ms to [`MAX_DURATION_MS`] (a day): absurd
    /// values would overflow deadlines and timers further down.
    fn ms_or(&self, key: &str, default: u64) -> Result<Duration, ServerError> {
        let ms = self.positive_u64_or(key, default)?;
        if ms > MAX_DURATION_MS {
            return Err(invalid(
                key,
                &ms.to_string(),
                &format!("must be at most {MAX_DURATION_MS} (a day)"),
            ));
        }
        Ok(Duration::from_millis(ms))
    }

    fn addr_or(&self, key: &str, default: &str) -> Result<SocketAddr, ServerError> {
        let raw = self.string_or(key, default);
        parse_listen(&raw).ok_or_else(|| invalid(key, &raw, "expected host:port, :port or [v6]:port"))
    }

    fn settings(&self) -> Result<Settings, ServerError> {
        let listen = self.addr_or("listen", ":8080")?;
        let worker_listen = self.addr_or("worker_listen", ":9090")?;
        let worker_urls = match self.string("worker_url") {
            None => Vec::new(),
            Some(raw) => parse_worker_urls(&raw).map_err(|why| invalid("worker_url", &raw, &why))?,
        };
        let storage = match self.string_or("storage", "files").to_lowercase().as_str() {
            "files" => StorageSettings::Files {
                data_dir: PathBuf::from(self.string_or("data_dir", "data")),
            },
            "db_s3" => StorageSettings::DbS3(self.db_s3()?),
            other => return Err(invalid("storage", other, "expected files or db_s3")),
        };
        // Defaults live in one place: the domain's `Limits::default()`.
        let defaults = Limits::default();
        let default_timeout = self.ms_or("invoke_default_timeout_ms", ms(defaults.default_timeout))?;
        let max_timeout = self.ms_or("invoke_max_timeout_ms", ms(defaults.max_timeout))?;
        if default_timeout > max_timeout {
            return Err(invalid(
                "invoke_default_timeout_ms",
                &default_timeout.as_millis().to_string(),
                "must not exceed LOWCODE_FAAS_INVOKE_MAX_TIMEOUT_MS",
            ));
        }
        let limits = Limits {
            max_source_bytes: self.positive_u64_or("max_source_bytes", defaults.max_source_bytes)?,
            max_output_bytes: self.positive_u64_or("max_output_bytes", defaults.max_output_bytes)?,
            max_log_bytes: self.positive_u64_or("function_log_max_bytes", defaults.max_log_bytes)?,
            default_timeout,
            max_timeout,
            max_concurrent_runs: usize::try_from(
                self.positive_u64_or("max_concurrent_runs", defaults.max_concurrent_runs as u64)?,
            )
            .map_err(|_| invalid("max_concurrent_runs", "", "too large"))?,
            max_queued_runs: self.usize_or("max_queued_runs", defaults.max_queued_runs)?,
        };
        // The container defaults live in one place: the Docker runtime's `DockerConfig::default()`.
        let docker = DockerConfig::default();
        let runtime = RuntimeSettings {
            kind: match self.string_or("runtime", "docker").to_lowercase().as_str() {
                "docker" => RuntimeKind::Docker,
                "process" => RuntimeKind::Process,
                other => return Err(invalid("runtime", other, "expected docker or process")),
            },
            node_bin: PathBuf::from(self.string_or("node_bin", "node")),
            node_docker_image: self.string_or("node_docker_image", &docker.image),
            prewarm_node_image: self.bool_or("prewarm_node_image", docker.prewarm_image)?,
            container_memory_mb: self.positive_u64_or("container_memory_mb", docker.memory_mb)?,
            container_cpus: match self.string("container_cpus") {
                None => docker.cpus,
                Some(raw) => raw
                    .parse::<f64>()
                    .map_err(|_| invalid("container_cpus", &raw, "expected a number from 0.01 to 1024"))?,
            },
            container_network: self.string_or("container_network", &docker.network),
            container_user: self.string_or("container_user", &docker.user),
            instance_id: self.string("instance_id"),
            execution: self.execution()?,
        };
        // The container settings are the Docker runtime's to judge (the
        // instance id is only known once the address is, so a stand-in here).
        runtime
            .docker_config("settings-check".into())
            .validate()
            .map_err(adapter_config)?;
        let logs = self.logs()?;
        Ok(Settings {
            listen,
            worker_listen,
            worker_urls,
            worker_dns_refresh: self.ms_or("worker_dns_refresh_ms", 10_000)?,
            worker_health_interval: self.ms_or("worker_health_interval_ms", 2_000)?,
            worker_token: self.string("worker_token").map(Secret::new),
            api_token: self.string("api_token").map(Secret::new),
            shutdown_grace: self.ms_or("shutdown_grace_ms", 30_000)?,
            max_body_bytes: self.positive_u64_or("max_body_bytes", 6 * 1024 * 1024)?,
            storage,
            storage_timeout: self.ms_or("storage_timeout_ms", ms(faas_adapters::fs::DEFAULT_TIMEOUT))?,
            function_cache: self.bool_or("function_cache", true)?,
            function_cache_size: self.usize_or("function_cache_size", 1024)?,
            legacy_names: self.bool_or("legacy_names", false)?,
            limits,
            runtime,
            logs,
            source_fetch_allow_private: self.bool_or("source_fetch_allow_private", false)?,
            ui: self.bool_or("ui", true)?,
            cors_origins: match self.string("cors_origins") {
                None => Vec::new(),
                Some(raw) => {
                    crate::browser::parse_cors_origins(&raw).map_err(|why| invalid("cors_origins", &raw, &why))?
                }
            },
            connection_limits: self.connection_limits()?,
            proxy: self.proxy.clone(),
            redact_env: self.bool_or("redact_env", false)?,
            allow_unauthenticated: self.bool_or("allow_unauthenticated", false)?,
            env_encryption: self.env_encryption()?,
        })
    }

    /// `LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS`, `_IDLE_TIMEOUT_MS`, `_MAX_CONNECTIONS`.
    fn connection_limits(&self) -> Result<crate::serve::ConnectionLimits, ServerError> {
        let defaults = crate::serve::ConnectionLimits::default();
        let max_connections = self.positive_u64_or("max_connections", defaults.max_connections as u64)?;
        if max_connections > MAX_CONNECTIONS_CAP {
            return Err(invalid(
                "max_connections",
                &max_connections.to_string(),
                &format!("must be at most {MAX_CONNECTIONS_CAP}"),
            ));
        }
        Ok(crate::serve::ConnectionLimits {
            header_read_timeout: self.ms_or("header_read_timeout_ms", ms(defaults.header_read_timeout))?,
            idle_timeout: self.ms_or("idle_timeout_ms", ms(defaults.idle_timeout))?,
            max_connections: usize::try_from(max_connections)
                .map_err(|_| invalid("max_connections", &max_connections.to_string(), "too large"))?,
            ..defaults
        })
    }

    /// The function-log settings, each sink's checked by its adapter's own
    /// config type (messages name the variables, never a password or header value).
    fn logs(&self) -> Result<LogSettings, ServerError> {
        let queue = QueueLimits {
            max_entries: self.positive_usize_or("function_logs_queue", QueueLimits::default().max_entries)?,
            max_bytes: self.positive_usize_or("function_logs_queue_bytes", QueueLimits::default().max_bytes)?,
        };
        let batch = BatchConfig {
            wait: self.ms_or("function_logs_batch_wait_ms", ms(BatchConfig::default().wait))?,
            ..BatchConfig::default()
        };
        let logs = LogSettings {
            enabled: self.bool_or("function_logs", false)?,
            sink: match self.string_or("function_logs_sink", "stdout").to_lowercase().as_str() {
                "stdout" => LogSinkKind::Stdout,
                "docker_json" | "promtail" => LogSinkKind::DockerJson,
                "loki" => LogSinkKind::Loki,
                "elasticsearch" | "es" => LogSinkKind::Elasticsearch,
                "http" | "webhook" => LogSinkKind::Http,
                "memory" => LogSinkKind::Memory,
                other => {
                    return Err(invalid(
                        "function_logs_sink",
                        other,
                        "expected stdout, docker_json, promtail, loki, elasticsearch, es, http, webhook or memory",
                    ))
                }
            },
            buffer: self.usize_or("function_logs_buffer", 10_000)?,
            buffer_bytes: self.positive_usize_or("function_logs_buffer_bytes", 64 * 1024 * 1024)?,
            queue,
            batch,
            loki: match self.string("log_loki_url") {
                None => None,
                Some(url) => {
                    let defaults = LokiConfig::new(url);
                    let config = LokiConfig {
                        tenant: self.string("log_loki_tenant"),
                        timeout: self.ms_or("log_loki_timeout_ms", ms(defaults.timeout))?,
                        queue,
                        batch,
                        proxy: self.proxy.clone(),
                        ..defaults
                    };
                    config.validate().map_err(adapter_config)?;
                    Some(config)
                }
            },
            es: match self.string("log_es_url") {
                None => None,
                Some(url) => {
                    let defaults = EsConfig::new(url);
                    let config = EsConfig {
                        index: self.string("log_es_index").unwrap_or(defaults.index.clone()),
                        user: self.string("log_es_user"),
                        // A password is taken as set, spaces included.
                        password: self.cfg.get_string("log_es_password").ok().filter(|p| !p.is_empty()),
                        queue,
                        batch,
                        proxy: self.proxy.clone(),
                        ..defaults
                    };
                    config.validate().map_err(adapter_config)?;
                    Some(config)
                }
            },
            http: match self.string("log_http_url") {
                None => None,
                Some(url) => {
                    let header = match self.string("log_http_header") {
                        None => None,
                        Some(raw) => Some(WebhookHeader::parse(&raw).map_err(adapter_config)?),
                    };
                    let config = WebhookConfig {
                        header,
                        queue,
                        batch,
                        proxy: self.proxy.clone(),
                        ..WebhookConfig::new(url)
                    };
                    config.validate().map_err(adapter_config)?;
                    Some(config)
                }
            },
            grafana_explore_url_template: self.string("logs_grafana_explore_url_template"),
        };
        if logs.enabled {
            let missing = match logs.sink {
                LogSinkKind::Loki if logs.loki.is_none() => Some(("LOWCODE_FAAS_LOG_LOKI_URL", "loki")),
                LogSinkKind::Elasticsearch if logs.es.is_none() => Some(("LOWCODE_FAAS_LOG_ES_URL", "elasticsearch")),
                LogSinkKind::Http if logs.http.is_none() => Some(("LOWCODE_FAAS_LOG_HTTP_URL", "http")),
                _ => None,
            };
            if let Some((variable, sink)) = missing {
                return Err(ServerError::Config(format!(
                    "{variable} is required when LOWCODE_FAAS_FUNCTION_LOGS_SINK={sink}"
                )));
            }
        }
        Ok(logs)
    }

    /// The env encryption keys, checked by the adapter's own
    /// [`EnvEncryptionConfig::validate`] (its messages name the variable,
    /// never the key).
    fn env_encryption(&self) -> Result<EnvEncryptionConfig, ServerError> {
        let config = EnvEncryptionConfig {
            key: self.string("env_encryption_key"),
            previous_keys: self
                .string("env_encryption_previous_keys")
                .map(|raw| EnvEncryptionConfig::parse_previous_keys(&raw))
                .unwrap_or_default(),
        };
        config.validate().map_err(adapter_config)?;
        Ok(config)
    }

    /// The `db_s3` settings, checked by the adapter's own
    /// [`DbS3Config::validate`] (its messages name the variables).
    fn db_s3(&self) -> Result<DbS3Config, ServerError> {
        let defaults = DbS3Config::new(
            self.string("postgres_dsn").unwrap_or_default(),
            self.string("s3_bucket").unwrap_or_default(),
        );
        let credentials = match (self.string("s3_access_key"), self.string("s3_secret_key")) {
            (None, None) => None,
            (key, secret) => Some((key.unwrap_or_default(), secret.unwrap_or_default())),
        };
        let config = DbS3Config {
            s3_endpoint: self.string("s3_endpoint"),
            s3_region: self.string_or("s3_region", &defaults.s3_region),
            s3_credentials: credentials,
            s3_use_path_style: self.bool_or("s3_use_path_style", defaults.s3_use_path_style)?,
            s3_prefix: self.string_or("s3_prefix", &defaults.s3_prefix),
            storage_timeout: self.ms_or("storage_timeout_ms", ms(defaults.storage_timeout))?,
            ..defaults
        };
        config.validate().map_err(adapter_config)?;
        Ok(config)
    }
}

/// Milliseconds of a duration (for defaults given as durations).
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An adapter config type's verdict, as a configuration error (its message
/// already names the variable).
fn adapter_config(err: AdapterError) -> ServerError {
    match err {
        AdapterError::Config(message) => ServerError::Config(message),
        other => ServerError::Config(faas_ports::report::report(&other)),
    }
}

fn invalid(key: &str, value: &str, why: &str) -> ServerError {
    ServerError::Config(format!("{}={value:?}: {why}", env_name(key)))
}

/// `LOWCODE_FAAS_WORKER_URL`: a comma-separated list of base URLs
/// (`http://10.0.0.7:9090,http://worker.ns.svc.cluster.local:9090`), each
/// `http://` or `https://`, a host and an optional port, no user info, path,
/// query or fragment (a trailing `/` is dropped). At least one; duplicates
/// are removed. The reason is the `Err`.
pub fn parse_worker_urls(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let base = item.strip_suffix('/').unwrap_or(item);
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(|| format!("{item:?} is not an http:// or https:// URL"))?;
        if rest.is_empty() {
            return Err(format!("{item:?} has no host"));
        }
        if let Some(bad) = rest
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace())
        {
            return Err(format!(
                "{item:?}: expected a base URL (scheme, host, optional port) without {bad:?}"
            ));
        }
        let port = if let Some(v6) = rest.strip_prefix('[') {
            let (_, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{item:?}: unclosed IPv6 address"))?;
            after.strip_prefix(':')
        } else {
            rest.split_once(':').map(|(_, port)| port)
        };
        if rest.starts_with(':') {
            return Err(format!("{item:?} has no host"));
        }
        if let Some(port) = port {
            port.parse::<u16>()
                .map_err(|_| format!("{item:?}: the port must be a number up to 65535"))?;
        }
        if !out.iter().any(|b| b == base) {
            out.push(base.to_owned());
        }
    }
    if out.is_empty() {
        return Err("expected at least one worker base URL".into());
    }
    Ok(out)
}

/// `1/true/yes/on` and `0/false/no/off`, any case.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `:8080` (all interfaces), `127.0.0.1:0`, `[::1]:8080`, `localhost:8080`.
pub fn parse_listen(raw: &str) -> Option<SocketAddr> {
    let raw = raw.trim();
    if let Some(port) = raw.strip_prefix(':') {
        return port.parse::<u16>().ok().map(|p| SocketAddr::from(([0, 0, 0, 0], p)));
    }
    if let Some(port) = raw.strip_prefix("localhost:") {
        return port.parse::<u16>().ok().map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    }
    raw.parse().ok()
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
