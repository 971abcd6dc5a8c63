//! Typed reads of one key (each error names its variable), and the
//! settings of the servers themselves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use faas_adapters::docker::DockerConfig;
use faas_adapters::outbound::OutboundProxy;
use faas_adapters::runner::{ExecutionConfig, ExecutionMode};
use faas_adapters::AdapterError;
use faas_domain::Limits;

use super::{
    env_name, parse_bool, parse_listen, parse_worker_urls, RuntimeKind, RuntimeSettings, Secret, Settings,
    StorageSettings, MAX_CONNECTIONS_CAP, MAX_DURATION_MS,
};
use crate::ServerError;

/// The merged sources (file and variables) and the outbound proxy read from the variables.
pub(super) struct Raw {
    pub(super) cfg: config::Config,
    pub(super) proxy: OutboundProxy,
}

impl Raw {
    pub(super) fn string(&self, key: &str) -> Option<String> {
        self.cfg
            .get_string(key)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    pub(super) fn string_or(&self, key: &str, default: &str) -> String {
        self.string(key).unwrap_or_else(|| default.to_owned())
    }

    pub(super) fn bool_or(&self, key: &str, default: bool) -> Result<bool, ServerError> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => parse_bool(&v).ok_or_else(|| invalid(key, &v, "expected 1/true/yes/on or 0/false/no/off")),
        }
    }

    pub(super) fn u64_or(&self, key: &str, default: u64) -> Result<u64, ServerError> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| invalid(key, &v, "expected a non-negative integer")),
        }
    }

    pub(super) fn positive_u64_or(&self, key: &str, default: u64) -> Result<u64, ServerError> {
        let n = self.u64_or(key, default)?;
        if n == 0 {
            return Err(invalid(key, "0", "must be greater than 0"));
        }
        Ok(n)
    }

    pub(super) fn positive_usize_or(&self, key: &str, default: usize) -> Result<usize, ServerError> {
        let n = self.positive_u64_or(key, default as u64)?;
        usize::try_from(n).map_err(|_| invalid(key, &n.to_string(), "too large"))
    }

    pub(super) fn usize_or(&self, key: &str, default: usize) -> Result<usize, ServerError> {
        let n = self.u64_or(key, default as u64)?;
        usize::try_from(n).map_err(|_| invalid(key, &n.to_string(), "too large"))
    }

    /// The execution-mode settings, checked by the adapters' own rules.
    pub(super) fn execution(&self) -> Result<ExecutionConfig, ServerError> {
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
    pub(super) fn ms_or(&self, key: &str, default: u64) -> Result<Duration, ServerError> {
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

    pub(super) fn addr_or(&self, key: &str, default: &str) -> Result<SocketAddr, ServerError> {
        let raw = self.string_or(key, default);
        parse_listen(&raw).ok_or_else(|| invalid(key, &raw, "expected host:port, :port or [v6]:port"))
    }

    pub(super) fn settings(&self) -> Result<Settings, ServerError> {
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
    pub(super) fn connection_limits(&self) -> Result<crate::serve::ConnectionLimits, ServerError> {
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
}

/// Milliseconds of a duration (for defaults given as durations).
pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An adapter config type's verdict, as a configuration error (its message
/// already names the variable).
pub(super) fn adapter_config(err: AdapterError) -> ServerError {
    match err {
        AdapterError::Config(message) => ServerError::Config(message),
        other => ServerError::Config(faas_ports::report::report(&other)),
    }
}

/// A value refused: `LOWCODE_FAAS_KEY="value": why`.
pub(super) fn invalid(key: &str, value: &str, why: &str) -> ServerError {
    ServerError::Config(format!("{}={value:?}: {why}", env_name(key)))
}
