//! Building the engine from settings: storage (with its health check and
//! the function cache), runtime (with its clean-up), function-log sinks and
//! metrics. Both servers call [`build_engine`]; the dispatcher hands in its
//! source fetcher and, in proxy mode, a runtime that runs nothing.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;

use faas_adapters::cache::CachedSourceStore;
use faas_adapters::db_s3::DbS3SourceStore;
use faas_adapters::docker::DockerRuntime;
use faas_adapters::elasticsearch::EsSink;
use faas_adapters::encryption::EncryptedStore;
use faas_adapters::fs::FsSourceStore;
use faas_adapters::logs::push::PushQueue;
use faas_adapters::logs::{FanoutSink, LogBuffer, SinkStats, StdoutFormat, StdoutSink};
use faas_adapters::loki::LokiSink;
use faas_adapters::process::{ProcessRuntime, ProcessRuntimeConfig};
use faas_adapters::webhook::WebhookSink;
use faas_domain::Engine;
use faas_ports::{ContainerRuntime, LogSink, SourceFetcher, SourceStore};

use crate::config::{LogSinkKind, RuntimeKind, StorageSettings};
use crate::metrics::Metrics;
use crate::{ServerError, Settings};

/// Wraps an adapter's start-up error with what was being built.
pub fn adapter_error(context: &str) -> impl FnOnce(faas_adapters::AdapterError) -> ServerError + '_ {
    move |e| ServerError::Adapter {
        context: context.to_owned(),
        source: Box::new(e),
    }
}

/// Builds the storage adapter of the settings and checks it answers; env
/// values are sealed at rest by [`EncryptedStore`] (below the function
/// cache, which holds plain values in memory).
pub async fn build_store(settings: &Settings) -> Result<Arc<dyn SourceStore>, ServerError> {
    let store: Arc<dyn SourceStore> = match &settings.storage {
        StorageSettings::Files { data_dir } => {
            tracing::info!(data_dir = %data_dir.display(), "using files storage");
            Arc::new(
                FsSourceStore::new(data_dir.clone())
                    .map_err(adapter_error("LOWCODE_FAAS_DATA_DIR"))?
                    .with_timeout(settings.storage_timeout)
                    .with_max_source_bytes(settings.limits.max_source_bytes),
            )
        }
        StorageSettings::DbS3(db) => {
            tracing::info!(bucket = %db.s3_bucket, prefix = %db.s3_prefix, "using db_s3 storage (PostgreSQL + S3)");
            Arc::new(
                DbS3SourceStore::connect(db.clone())
                    .await
                    .map_err(adapter_error("LOWCODE_FAAS_STORAGE=db_s3"))?,
            )
        }
    };
    store.health().await.map_err(|e| ServerError::Adapter {
        context: "storage health check failed".into(),
        source: Box::new(e),
    })?;
    // Always in place, key or not: a value sealed earlier is then an error
    // naming the missing key instead of ciphertext handed to a run.
    let keys = settings
        .env_encryption
        .keyring()
        .map_err(adapter_error("LOWCODE_FAAS_ENV_ENCRYPTION_KEY"))?;
    if let Some(id) = keys.current_key_id() {
        tracing::info!(
            key_id = id,
            previous_keys = settings.env_encryption.previous_keys.len(),
            "env values are encrypted at rest"
        );
    }
    let store: Arc<dyn SourceStore> = Arc::new(EncryptedStore::new(store, keys));
    // The cache takes the store's own word on which versions it keeps.
    match NonZeroUsize::new(settings.function_cache_size).filter(|_| settings.function_cache) {
        Some(size) => Ok(Arc::new(CachedSourceStore::new(store, size))),
        None => Ok(store),
    }
}

/// What a process must do before it exits: send the function logs still
/// queued, remove the containers it owns.
#[derive(Debug, Clone, Default)]
pub struct Cleanup {
    docker: Option<Arc<DockerRuntime>>,
    process: Option<Arc<ProcessRuntime>>,
    /// Queues of the pushing log sinks, flushed at shutdown within `log_flush_within`.
    log_queues: Vec<PushQueue>,
    log_flush_within: std::time::Duration,
}

/// How long a stopped container of another instance stays before a start-up
/// removes it (its own server may still be reading how it ended).
const STALE_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// Bound on removing this process's containers at start-up and shutdown.
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Cleanup {
    /// At `start-up` (once the listen address is bound, so a second process
    /// started by mistake with the same id fails to bind before it touches
    /// anything): removes every container labelled with this process's
    /// instance id, then starts filling the runtime's pool. At `shutdown`:
    /// sends the function logs still queued (the runs have ended by then),
    /// for at most the shutdown grace period, then removes the pool's
    /// runners and every owned container.
    pub async fn run(&self, when: &'static str) {
        let starting = when == "start-up";
        if !starting {
            let within = self.log_flush_within;
            futures_util::future::join_all(self.log_queues.iter().map(|q| q.flush(within))).await;
        }
        if let Some(docker) = &self.docker {
            if !starting {
                docker.shutdown().await;
            }
            remove_owned(docker, when).await;
            if starting {
                match docker.remove_stale_containers(STALE_AGE).await {
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %faas_ports::report::Report(&e), "could not look for stale containers")
                    }
                }
                docker.start_pool();
            }
        }
        if let Some(process) = &self.process {
            if starting {
                process.start_pool();
            } else {
                process.shutdown().await;
            }
        }
    }
}

async fn remove_owned(docker: &DockerRuntime, when: &'static str) {
    match tokio::time::timeout(CLEANUP_TIMEOUT, docker.remove_owned_containers()).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(removed = n, when, "removed this instance's containers"),
        Ok(Err(e)) => {
            tracing::warn!(error = %faas_ports::report::Report(&e), when, "could not remove this instance's containers")
        }
        Err(_) => tracing::warn!(when, "removing this instance's containers timed out"),
    }
}

/// The runtime of the settings and the clean-up it needs. An unusable
/// runtime is not fatal: runs answer `RUNTIME_UNAVAILABLE` and `/readyz`
/// reports it. For Docker: the image is pulled in the background when
/// `LOWCODE_FAAS_PREWARM_NODE_IMAGE` is true, and [`Cleanup`] removes the
/// leftovers of an earlier life of this instance (even after `kill -9`) once
/// the process has bound its address, and its own containers at shutdown.
pub async fn build_runtime(
    settings: &Settings,
    listen: SocketAddr,
) -> Result<(Arc<dyn ContainerRuntime>, Cleanup), ServerError> {
    let (runtime, cleanup): (Arc<dyn ContainerRuntime>, Cleanup) = match settings.runtime.kind {
        RuntimeKind::Process => {
            let process = Arc::new(
                ProcessRuntime::new(ProcessRuntimeConfig {
                    node_bin: settings.runtime.node_bin.clone(),
                    memory_mb: settings.runtime.container_memory_mb,
                    execution: settings.runtime.execution.clone(),
                })
                .map_err(adapter_error("LOWCODE_FAAS_RUNTIME=process"))?,
            );
            (
                process.clone(),
                Cleanup {
                    process: Some(process),
                    ..Cleanup::default()
                },
            )
        }
        RuntimeKind::Docker => {
            let rt = &settings.runtime;
            let docker = Arc::new(
                DockerRuntime::new(rt.docker_config(settings.instance_id(listen)))
                    .map_err(adapter_error("LOWCODE_FAAS_RUNTIME=docker"))?,
            );
            if rt.prewarm_node_image {
                let prewarm = Arc::clone(&docker);
                tokio::spawn(async move { prewarm.prewarm().await });
            }
            (
                docker.clone(),
                Cleanup {
                    docker: Some(docker),
                    ..Cleanup::default()
                },
            )
        }
    };
    if let Err(e) = runtime.health().await {
        tracing::warn!(error = %faas_ports::report::Report(&e), "container runtime is not ready");
    }
    Ok((runtime, cleanup))
}

/// Builds the engine with every adapter of the settings. `runtime` replaces
/// the configured runtime (proxy mode runs nothing in the dispatcher);
/// `fetcher` is how `source_url` is fetched (`None`: the engine refuses
/// sources by URL, as the worker never creates functions).
pub async fn build_engine(
    settings: &Settings,
    listen: SocketAddr,
    runtime: Option<Arc<dyn ContainerRuntime>>,
    fetcher: Option<Arc<dyn SourceFetcher>>,
) -> Result<Built, ServerError> {
    let store = build_store(settings).await?;
    let (runtime, cleanup) = match runtime {
        Some(r) => (r, Cleanup::default()),
        None => build_runtime(settings, listen).await?,
    };
    let mut builder = Engine::builder(store, runtime).limits(settings.limits.clone());
    if let Some(fetcher) = fetcher {
        builder = builder.fetcher(fetcher);
    }
    let mut metrics = new_metrics()?;
    let mut cleanup = cleanup;
    let log_buffer = match build_log_sink(settings)? {
        Some(logs) => {
            builder = builder.log_sink(logs.sink);
            for (sink, stats) in logs.stats {
                metrics = metrics.with_log_sink(sink, stats);
            }
            cleanup.log_queues = logs.queues;
            cleanup.log_flush_within = settings.shutdown_grace;
            Some(logs.buffer)
        }
        None => None,
    };
    Ok(Built {
        engine: Arc::new(builder.build()),
        log_buffer,
        cleanup,
        metrics,
    })
}

/// An engine and the function-log buffer it fills (when capture is on).
#[derive(Debug)]
pub struct Built {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The buffer behind `GET /function-logs`; `None` when capture is off.
    pub log_buffer: Option<Arc<LogBuffer>>,
    /// What to do before the process exits.
    pub cleanup: Cleanup,
    /// The process's metrics (with the log sinks' counters).
    pub metrics: Metrics,
}

/// The function-log sink of a process and what the rest of it needs to see.
#[derive(Debug)]
pub struct LogSinks {
    /// The sink the engine writes to (buffer + the configured sink).
    pub sink: Arc<dyn LogSink>,
    /// The buffer behind `GET /function-logs`.
    pub buffer: Arc<LogBuffer>,
    /// Counters of each sink, by metrics label (`memory`, `stdout`, `loki` …).
    pub stats: Vec<(&'static str, Arc<SinkStats>)>,
    /// Queues of the pushing sinks, to flush at shutdown.
    pub queues: Vec<PushQueue>,
}

/// The function-log sink of the settings (every entry also goes to the
/// in-memory buffer), or `None` when capture is off.
pub fn build_log_sink(settings: &Settings) -> Result<Option<LogSinks>, ServerError> {
    let logs = &settings.logs;
    if !logs.enabled {
        return Ok(None);
    }
    let buffer = Arc::new(LogBuffer::new(logs.buffer, logs.buffer_bytes));
    let mut sinks: Vec<Arc<dyn LogSink>> = vec![buffer.clone()];
    let mut stats = vec![("memory", buffer.stats())];
    let mut queues = Vec::new();
    match logs.sink {
        LogSinkKind::Stdout | LogSinkKind::DockerJson => {
            let (format, label) = match logs.sink {
                LogSinkKind::DockerJson => (StdoutFormat::DockerJson, "docker_json"),
                _ => (StdoutFormat::Prefixed, "stdout"),
            };
            let sink = StdoutSink::new(format, logs.queue);
            stats.push((label, sink.stats()));
            sinks.push(Arc::new(sink));
        }
        LogSinkKind::Memory => {}
        LogSinkKind::Loki => {
            let config = logs.loki.clone().ok_or_else(|| required("LOWCODE_FAAS_LOG_LOKI_URL"))?;
            let sink = LokiSink::new(config).map_err(adapter_error("LOWCODE_FAAS_LOG_LOKI_URL"))?;
            queues.push(sink.queue().clone());
            sinks.push(Arc::new(sink));
        }
        LogSinkKind::Elasticsearch => {
            let config = logs.es.clone().ok_or_else(|| required("LOWCODE_FAAS_LOG_ES_URL"))?;
            let sink = EsSink::new(config).map_err(adapter_error("LOWCODE_FAAS_LOG_ES_URL"))?;
            queues.push(sink.queue().clone());
            sinks.push(Arc::new(sink));
        }
        LogSinkKind::Http => {
            let config = logs.http.clone().ok_or_else(|| required("LOWCODE_FAAS_LOG_HTTP_URL"))?;
            let sink = WebhookSink::new(config).map_err(adapter_error("LOWCODE_FAAS_LOG_HTTP_URL"))?;
            queues.push(sink.queue().clone());
            sinks.push(Arc::new(sink));
        }
    }
    for queue in &queues {
        stats.push((queue.sink(), queue.stats()));
    }
    tracing::info!(sink = ?logs.sink, buffer = logs.buffer, buffer_bytes = logs.buffer_bytes, "function-log capture on");
    Ok(Some(LogSinks {
        sink: Arc::new(FanoutSink::new(sinks)),
        buffer,
        stats,
        queues,
    }))
}

/// The configured sink has no URL (the settings loader refuses this first).
fn required(variable: &str) -> ServerError {
    ServerError::Config(format!(
        "{variable} is required for this LOWCODE_FAAS_FUNCTION_LOGS_SINK"
    ))
}

/// A fresh metrics registry.
pub fn new_metrics() -> Result<Metrics, ServerError> {
    Metrics::new().map_err(|e| ServerError::Adapter {
        context: "metrics registry".into(),
        source: Box::new(e),
    })
}
