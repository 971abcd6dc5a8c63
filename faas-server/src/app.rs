//! The composition root: settings → adapters → engine → warp server.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;

use faas_adapters::cache::CachedSourceStore;
use faas_adapters::db_s3::DbS3SourceStore;
use faas_adapters::docker::{DockerConfig, DockerRuntime};
use faas_adapters::fetch::{FetchConfig, HttpSourceFetcher};
use faas_adapters::fs::FsSourceStore;
use faas_adapters::logs::{FanoutSink, LogBuffer, StdoutFormat, StdoutSink};
use faas_adapters::loki::{LokiConfig, LokiSink, LokiStats};
use faas_adapters::process::{ProcessRuntime, ProcessRuntimeConfig};
use faas_adapters::unavailable::UnavailableRuntime;
use faas_domain::Engine;
use faas_ports::{ContainerRuntime, LogSink, SourceStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::Dispatcher;
use crate::config::{LogSinkKind, RuntimeKind, StorageSettings};
use crate::metrics::Metrics;
use crate::proxy::WorkerClient;
use crate::{ServerError, Settings};

fn adapter_error(context: &str) -> impl FnOnce(faas_adapters::AdapterError) -> ServerError + '_ {
    move |e| ServerError::Adapter {
        context: context.to_owned(),
        source: Box::new(e),
    }
}

/// Builds the storage adapter of the settings and checks it answers.
pub async fn build_store(settings: &Settings) -> Result<Arc<dyn SourceStore>, ServerError> {
    let store: Arc<dyn SourceStore> = match &settings.storage {
        StorageSettings::Files { data_dir } => {
            tracing::info!(data_dir = %data_dir.display(), "using files storage");
            Arc::new(
                FsSourceStore::new(data_dir.clone())
                    .map_err(adapter_error("LOWCODE_FAAS_DATA_DIR"))?
                    .with_timeout(settings.storage_timeout),
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
    let keeps_history = matches!(settings.storage, StorageSettings::DbS3(_));
    match NonZeroUsize::new(settings.function_cache_size).filter(|_| settings.function_cache) {
        Some(size) if keeps_history => Ok(Arc::new(CachedSourceStore::new(store, size).with_history())),
        Some(size) => Ok(Arc::new(CachedSourceStore::new(store, size))),
        None => Ok(store),
    }
}

/// What a process must do before it exits: remove the containers it owns.
#[derive(Debug, Clone, Default)]
pub struct Cleanup {
    docker: Option<Arc<DockerRuntime>>,
}

/// Bound on removing this process's containers at start-up and shutdown.
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Cleanup {
    /// Removes every container labelled with this process's instance id.
    /// Runs once the listen address is bound (so a second process started by
    /// mistake with the same id fails to bind before it touches anything) and
    /// again at shutdown.
    pub async fn run(&self, when: &'static str) {
        if let Some(docker) = &self.docker {
            remove_owned(docker, when).await;
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
        RuntimeKind::Process => (
            Arc::new(
                ProcessRuntime::new(ProcessRuntimeConfig {
                    node_bin: settings.runtime.node_bin.clone(),
                    memory_mb: settings.runtime.container_memory_mb,
                })
                .map_err(adapter_error("LOWCODE_FAAS_RUNTIME=process"))?,
            ),
            Cleanup::default(),
        ),
        RuntimeKind::Docker => {
            let rt = &settings.runtime;
            let docker = Arc::new(
                DockerRuntime::new(DockerConfig {
                    image: rt.node_docker_image.clone(),
                    memory_mb: rt.container_memory_mb,
                    cpus: rt.container_cpus,
                    network: rt.container_network.clone(),
                    user: rt.container_user.clone(),
                    instance_id: settings.instance_id(listen),
                    prewarm_image: rt.prewarm_node_image,
                })
                .map_err(adapter_error("LOWCODE_FAAS_RUNTIME=docker"))?,
            );
            if rt.prewarm_node_image {
                let prewarm = Arc::clone(&docker);
                tokio::spawn(async move { prewarm.prewarm().await });
            }
            (docker.clone(), Cleanup { docker: Some(docker) })
        }
    };
    if let Err(e) = runtime.health().await {
        tracing::warn!(error = %faas_ports::report::Report(&e), "container runtime is not ready");
    }
    Ok((runtime, cleanup))
}

/// Builds the engine with every adapter of the settings. `runtime` replaces
/// the configured runtime (proxy mode runs nothing in the dispatcher).
pub async fn build_engine(
    settings: &Settings,
    listen: SocketAddr,
    runtime: Option<Arc<dyn ContainerRuntime>>,
) -> Result<Built, ServerError> {
    let store = build_store(settings).await?;
    let (runtime, cleanup) = match runtime {
        Some(r) => (r, Cleanup::default()),
        None => build_runtime(settings, listen).await?,
    };
    let fetcher = HttpSourceFetcher::new(FetchConfig {
        allow_private: settings.source_fetch_allow_private,
        ..FetchConfig::default()
    })
    .map_err(adapter_error("source fetcher"))?;
    let mut builder = Engine::builder(store, runtime)
        .fetcher(Arc::new(fetcher))
        .limits(settings.limits.clone());
    let mut metrics = new_metrics()?;
    let log_buffer = match build_log_sink(settings)? {
        Some(logs) => {
            builder = builder.log_sink(logs.sink);
            if let Some(stats) = logs.loki {
                metrics = metrics.with_loki(stats);
            }
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
    /// The process's metrics (with the Loki sink's counters when it is used).
    pub metrics: Metrics,
}

/// The function-log sink of a process and what the rest of it needs to see.
#[derive(Debug)]
pub struct LogSinks {
    /// The sink the engine writes to (buffer + the configured sink).
    pub sink: Arc<dyn LogSink>,
    /// The buffer behind `GET /function-logs`.
    pub buffer: Arc<LogBuffer>,
    /// Counters of the Loki sink, when it is the configured one.
    pub loki: Option<Arc<LokiStats>>,
}

/// The function-log sink of the settings (every entry also goes to the
/// in-memory buffer), or `None` when capture is off.
pub fn build_log_sink(settings: &Settings) -> Result<Option<LogSinks>, ServerError> {
    let logs = &settings.logs;
    if !logs.enabled {
        return Ok(None);
    }
    let buffer = Arc::new(LogBuffer::new(logs.buffer));
    let mut sinks: Vec<Arc<dyn LogSink>> = vec![buffer.clone()];
    let mut loki = None;
    match logs.sink {
        LogSinkKind::Stdout => sinks.push(Arc::new(StdoutSink::new(StdoutFormat::Prefixed))),
        LogSinkKind::DockerJson => sinks.push(Arc::new(StdoutSink::new(StdoutFormat::DockerJson))),
        LogSinkKind::Memory => {}
        LogSinkKind::Loki => {
            let url = logs
                .loki_url
                .clone()
                .ok_or_else(|| ServerError::Config("LOWCODE_FAAS_LOG_LOKI_URL is required for the loki sink".into()))?;
            let config = LokiConfig {
                tenant: logs.loki_tenant.clone(),
                timeout: logs.loki_timeout,
                ..LokiConfig::new(url)
            };
            let sink = LokiSink::new(config).map_err(adapter_error("LOWCODE_FAAS_LOG_LOKI_URL"))?;
            loki = Some(sink.stats());
            sinks.push(Arc::new(sink));
        }
    }
    tracing::info!(sink = ?logs.sink, buffer = logs.buffer, "function-log capture on");
    Ok(Some(LogSinks {
        sink: Arc::new(FanoutSink::new(sinks)),
        buffer,
        loki,
    }))
}

/// Builds the dispatcher service (engine, settings, metrics).
pub async fn build_dispatcher(settings: Settings) -> Result<Arc<Dispatcher>, ServerError> {
    let proxy = match &settings.worker_url {
        Some(url) => {
            tracing::info!(worker = %url, "proxy mode: invokes are forwarded to the worker");
            let max_reply = settings
                .limits
                .max_output_bytes
                .saturating_mul(2)
                .saturating_add(1024 * 1024);
            Some(WorkerClient::new(url, settings.worker_token.clone(), max_reply)?)
        }
        None => None,
    };
    let runtime: Option<Arc<dyn ContainerRuntime>> = proxy.as_ref().map(|_| {
        Arc::new(UnavailableRuntime::new(
            "this dispatcher forwards runs to its worker (LOWCODE_FAAS_WORKER_URL)",
        )) as Arc<dyn ContainerRuntime>
    });
    let built = build_engine(&settings, settings.listen, runtime).await?;
    Ok(Arc::new(Dispatcher {
        engine: built.engine,
        log_buffer: built.log_buffer,
        cleanup: built.cleanup,
        settings: Arc::new(settings),
        metrics: built.metrics,
        proxy,
    }))
}

/// A fresh metrics registry.
pub fn new_metrics() -> Result<Metrics, ServerError> {
    Metrics::new().map_err(|e| ServerError::Adapter {
        context: "metrics registry".into(),
        source: Box::new(e),
    })
}

/// The dispatcher's warp filter: mount it in your own warp app (last, it
/// matches every path) or serve it with [`serve`].
pub fn routes(dispatcher: Arc<Dispatcher>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    crate::http::filter(dispatcher)
}

/// A dispatcher serving in the background (tests, embedding).
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Binds `settings.listen` and serves the dispatcher until `shutdown`
/// resolves, then waits for in-flight requests up to the grace period.
pub async fn serve(
    dispatcher: Arc<Dispatcher>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()>), ServerError> {
    let addr = dispatcher.settings.listen;
    let grace = dispatcher.settings.shutdown_grace;
    let limits = dispatcher.settings.connection_limits;
    let cleanup = dispatcher.cleanup.clone();
    serve_filter(routes(dispatcher), addr, grace, limits, cleanup, shutdown).await
}

/// Bounds of every HTTP/1.1 connection a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest a client may take to send a request's headers; also how long
    /// a keep-alive connection may stay idle between two requests (hyper
    /// starts the header timer as soon as it waits for the next request). A
    /// client that sends its headers one byte at a time is cut off after
    /// this. Default 10 s.
    pub header_read_timeout: std::time::Duration,
    /// Largest request head (request line and headers) in bytes; beyond it
    /// the request is answered `431` and the connection closed. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most headers in one request (beyond: `431`). Default 100.
    pub max_headers: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: std::time::Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// Binds `addr`, runs the start-up clean-up, and returns the bound address
/// and the future that serves `filter` until `shutdown` resolves, lets
/// in-flight requests finish for at most `grace` (then aborts them), and runs
/// the shutdown clean-up.
///
/// Connections are HTTP/1.1 with keep-alive, bounded by `limits`.
pub async fn serve_filter(
    filter: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    addr: SocketAddr,
    grace: std::time::Duration,
    limits: ConnectionLimits,
    cleanup: Cleanup,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()>), ServerError> {
    let bind_error = |e: std::io::Error| ServerError::Bind {
        addr,
        message: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    cleanup.run("start-up").await;
    let run = async move {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(limits.max_header_bytes)
            .max_headers(limits.max_headers)
            .keep_alive(true);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut connections = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((io, _peer)) => {
                        let service = hyper_util::service::TowerToHyperService::new(warp::service(filter.clone()));
                        let connection = graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(io), service));
                        connections.spawn(async move {
                            if let Err(e) = connection.await {
                                tracing::debug!(error = %faas_ports::report::Report(&e), "connection ended with an error");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(grace) => {
                tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; aborting in-flight requests");
                connections.abort_all();
            }
        }
        while connections.join_next().await.is_some() {}
        cleanup.run("shutdown").await;
    };
    Ok((bound, run))
}

/// Starts the dispatcher in the background; stop it with [`RunningServer::shutdown`].
pub async fn spawn(settings: Settings) -> Result<RunningServer, ServerError> {
    let dispatcher = build_dispatcher(settings).await?;
    let addr = dispatcher.settings.listen;
    let grace = dispatcher.settings.shutdown_grace;
    let limits = dispatcher.settings.connection_limits;
    let cleanup = dispatcher.cleanup.clone();
    spawn_filter(routes(dispatcher), addr, grace, limits, cleanup).await
}

/// Serves a filter in the background; stop it with [`RunningServer::shutdown`].
pub async fn spawn_filter(
    filter: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    addr: SocketAddr,
    grace: std::time::Duration,
    limits: ConnectionLimits,
    cleanup: Cleanup,
) -> Result<RunningServer, ServerError> {
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, run) = serve_filter(filter, addr, grace, limits, cleanup, async move {
        let _ = rx.await;
    })
    .await?;
    let task = tokio::spawn(run);
    Ok(RunningServer {
        addr,
        shutdown: Some(tx),
        task,
    })
}
