//! The backends' settings: storage (`db_s3`), function-log sinks and env
//! encryption, each checked by its adapter's own config type.

use faas_adapters::db_s3::DbS3Config;
use faas_adapters::elasticsearch::EsConfig;
use faas_adapters::encryption::EnvEncryptionConfig;
use faas_adapters::logs::push::BatchConfig;
use faas_adapters::logs::QueueLimits;
use faas_adapters::loki::LokiConfig;
use faas_adapters::webhook::{WebhookConfig, WebhookHeader};

use super::raw::{adapter_config, invalid, ms, Raw};
use super::{LogSettings, LogSinkKind};
use crate::ServerError;

impl Raw {
    /// The function-log settings, each sink's checked by its adapter's own
    /// config type (messages name the variables, never a password or header value).
    pub(super) fn logs(&self) -> Result<LogSettings, ServerError> {
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
    pub(super) fn env_encryption(&self) -> Result<EnvEncryptionConfig, ServerError> {
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
    pub(super) fn db_s3(&self) -> Result<DbS3Config, ServerError> {
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
