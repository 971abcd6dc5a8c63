//! The composition root: settings → adapters → engine → warp server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use faas_adapters::fetch::{FetchConfig, HttpSourceFetcher};
use faas_adapters::unavailable::UnavailableRuntime;
pub use faas_http::engine::{
    adapter_error, build_engine, build_log_sink, build_runtime, build_store, new_metrics, Built, Cleanup, LogSinks,
};
pub use faas_http::serve::{serve_filter, spawn_filter, ConnectionLimits, RunningServer};
use faas_ports::{ContainerRuntime, SourceFetcher};

use crate::api::Dispatcher;
use crate::proxy::WorkerClient;
use crate::{ServerError, Settings};

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
    let fetcher = HttpSourceFetcher::new(FetchConfig {
        allow_private: settings.source_fetch_allow_private,
        ..FetchConfig::default()
    })
    .map_err(adapter_error("source fetcher"))?;
    let fetcher: Arc<dyn SourceFetcher> = Arc::new(fetcher);
    let built = build_engine(&settings, settings.listen, runtime, Some(fetcher)).await?;
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
