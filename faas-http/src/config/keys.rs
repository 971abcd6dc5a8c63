//! The names: every setting key, the variables that are none of them
//! (reported with the nearest known name), and the file's keys.

use std::collections::HashMap;

use crate::ServerError;

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

/// Refuses unknown keys (a misspelt setting in the file is an error, not a
/// silent default) and values that are not scalars.
pub(super) fn check_keys(cfg: &config::Config) -> Result<(), ServerError> {
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
