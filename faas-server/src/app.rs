//! The composition root: settings → adapters → engine → warp server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use faas_adapters::fetch::{FetchConfig, HttpSourceFetcher};
use faas_adapters::logs::LogBuffer;
use faas_adapters::unavailable::UnavailableRuntime;
use faas_domain::Engine;
use faas_http::config::Secret;
pub use faas_http::engine::{
    adapter_error, build_engine, build_log_sink, build_runtime, build_store, new_metrics, Built, Cleanup, LogSinks,
};
pub use faas_http::serve::{serve_filter, spawn_filter, ConnectionLimits, RunningServer};
use faas_ports::{ContainerRuntime, SourceFetcher};

use crate::api::Dispatcher;
use crate::proxy::{PoolConfig, Resolve, SystemResolver, WorkerPool};
use crate::{ServerError, Settings};

/// Builds the dispatcher service (engine, settings, metrics).
pub async fn build_dispatcher(settings: Settings) -> Result<Arc<Dispatcher>, ServerError> {
    build_dispatcher_with(settings, Arc::new(SystemResolver)).await
}

/// [`build_dispatcher`] with the resolver of the worker names in
/// `LOWCODE_FAAS_WORKER_URL` (tests pass a fake).
pub async fn build_dispatcher_with(
    settings: Settings,
    resolver: Arc<dyn Resolve>,
) -> Result<Arc<Dispatcher>, ServerError> {
    let proxy_mode = !settings.worker_urls.is_empty();
    let runtime: Option<Arc<dyn ContainerRuntime>> = proxy_mode.then(|| {
        Arc::new(UnavailableRuntime::new(
            "this dispatcher forwards runs to its workers (LOWCODE_FAAS_WORKER_URL)",
        )) as Arc<dyn ContainerRuntime>
    });
    let fetcher = HttpSourceFetcher::new(FetchConfig {
        allow_private: settings.source_fetch_allow_private,
        ..FetchConfig::default()
    })
    .map_err(adapter_error("source fetcher"))?;
    let fetcher: Arc<dyn SourceFetcher> = Arc::new(fetcher);
    let built = build_engine(&settings, settings.listen, runtime, Some(fetcher)).await?;
    let proxy = if proxy_mode {
        tracing::info!(workers = %settings.worker_urls.join(","), "proxy mode: invokes are forwarded to the workers");
        let config = PoolConfig {
            urls: settings.worker_urls.clone(),
            token: settings.worker_token.clone(),
            max_reply_bytes: settings
                .limits
                .max_output_bytes
                .saturating_mul(2)
                .saturating_add(1024 * 1024),
            dns_refresh: settings.worker_dns_refresh,
            health_interval: settings.worker_health_interval,
        };
        let pool = WorkerPool::new(config, resolver, built.metrics.clone())?;
        pool.start().await;
        Some(pool)
    } else {
        None
    };
    Ok(Arc::new(Dispatcher {
        engine: built.engine,
        log_buffer: built.log_buffer,
        cleanup: built.cleanup,
        settings: Arc::new(settings),
        metrics: built.metrics,
        proxy,
    }))
}

/// The dispatcher's warp filter: mount it in your own warp app (last, it
/// matches every path) or serve it with [`serve`].
pub fn routes(dispatcher: Arc<Dispatcher>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    faas_http::http::filter(dispatcher)
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

/// Starts the dispatcher in the background; stop it with [`RunningServer::shutdown`].
pub async fn spawn(settings: Settings) -> Result<RunningServer, ServerError> {
    let dispatcher = build_dispatcher(settings).await?;
    let addr = dispatcher.settings.listen;
    let grace = dispatcher.settings.shutdown_grace;
    let limits = dispatcher.settings.connection_limits;
    let cleanup = dispatcher.cleanup.clone();
    spawn_filter(routes(dispatcher), addr, grace, limits, cleanup).await
}

/// A dispatcher for mounting the API in your own warp app, from typed values
/// (no `LOWCODE_FAAS_*` strings): your engine, plus the few settings the HTTP
/// edge itself needs; everything else keeps its default.
///
/// ```no_run
/// # async fn demo(engine: std::sync::Arc<faas_domain::Engine>) -> Result<(), faas_server::ServerError> {
/// use warp::Filter;
/// let dispatcher = faas_server::app::DispatcherBuilder::new(engine)
///     .api_token("change-me")
///     .max_body_bytes(1024 * 1024)
///     .build()?;
/// let api = warp::path("faas").and(faas_server::app::routes(dispatcher));
/// # let _ = api; Ok(()) }
/// ```
#[derive(Debug)]
pub struct DispatcherBuilder {
    engine: Arc<Engine>,
    api_token: Option<Secret>,
    max_body_bytes: Option<u64>,
    log_buffer: Option<Arc<LogBuffer>>,
    grafana_explore_url_template: Option<String>,
}

impl DispatcherBuilder {
    /// A dispatcher over `engine` (no API token, default body limit, no
    /// function-log search).
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            api_token: None,
            max_body_bytes: None,
            log_buffer: None,
            grafana_explore_url_template: None,
        }
    }

    /// Every route but `/healthz` and `/readyz` requires `Authorization: Bearer <token>`.
    #[must_use]
    pub fn api_token(mut self, token: impl Into<String>) -> Self {
        self.api_token = Some(Secret::new(token.into()));
        self
    }

    /// The largest request body (413 beyond).
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// `GET /function-logs` searches this buffer (give the engine a sink that fills it).
    #[must_use]
    pub fn log_buffer(mut self, buffer: Arc<LogBuffer>) -> Self {
        self.log_buffer = Some(buffer);
        self
    }

    /// Adds `grafana_explore_url` to the log query hints.
    #[must_use]
    pub fn grafana_explore_url_template(mut self, template: impl Into<String>) -> Self {
        self.grafana_explore_url_template = Some(template.into());
        self
    }

    /// The dispatcher, ready for [`routes`].
    pub fn build(self) -> Result<Arc<Dispatcher>, ServerError> {
        // The defaults of every other setting, from code (no environment is read).
        let mut settings = Settings::from_vars(std::iter::empty())?;
        settings.api_token = self.api_token;
        if let Some(bytes) = self.max_body_bytes {
            settings.max_body_bytes = bytes;
        }
        settings.logs.enabled = self.log_buffer.is_some();
        settings.logs.grafana_explore_url_template = self.grafana_explore_url_template;
        Ok(Arc::new(Dispatcher {
            engine: self.engine,
            settings: Arc::new(settings),
            metrics: new_metrics()?,
            proxy: None,
            log_buffer: self.log_buffer,
            cleanup: Cleanup::default(),
        }))
    }
}
