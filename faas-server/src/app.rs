//! The composition root: settings → adapters → engine → warp server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use faas_adapters::fetch::{FetchConfig, HttpSourceFetcher};
use faas_adapters::logs::LogBuffer;
use faas_adapters::unavailable::UnavailableRuntime;
use faas_domain::Engine;
use faas_http::browser::BrowserPolicy;
use faas_http::config::Secret;
pub use faas_http::engine::{
    adapter_error, build_engine, build_log_sink, build_runtime, build_store, new_metrics, Built, Cleanup, LogSinks,
};
pub use faas_http::serve::{serve_filter, spawn_filter, ConnectionLimits, RunningServer};
use faas_ports::{ContainerRuntime, SourceFetcher};

pub use crate::api::Dispatcher;
use crate::proxy::{PoolConfig, Resolve, SystemResolver, WorkerPool};
use crate::{ServerError, Settings};

/// Builds the dispatcher service (engine, settings, metrics).
pub async fn build_dispatcher(settings: Settings) -> Result<Arc<Dispatcher>, ServerError> {
    build_dispatcher_with(settings, Arc::new(SystemResolver)).await
}

/// [`build_dispatcher`] with the resolver of the worker names in
/// `LOWCODE_FAAS_WORKER_URL`.
async fn build_dispatcher_with(settings: Settings, resolver: Arc<dyn Resolve>) -> Result<Arc<Dispatcher>, ServerError> {
    faas_http::exposure::warn_dispatcher(&settings);
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
            proxy: settings.proxy.clone(),
        };
        let pool = WorkerPool::new(config, resolver, built.metrics.clone())?;
        pool.start().await;
        Some(pool)
    } else {
        None
    };
    Ok(Arc::new(Dispatcher {
        browser: BrowserPolicy::SameOrigin {
            cors_origins: settings.cors_origins.clone(),
        },
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
    cors_origins: Vec<String>,
    playground: bool,
    redact_env: bool,
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
            cors_origins: Vec::new(),
            playground: true,
            redact_env: false,
        }
    }

    /// Exact origins (`https://app.example`) allowed to call the API
    /// cross-origin with CORS; without any, only the server's own origin
    /// may send state-changing browser requests.
    #[must_use]
    pub fn cors_origins(mut self, origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.cors_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Do not serve the playground at `ui/` below the mount point (it is
    /// served by default).
    #[must_use]
    pub fn without_playground(mut self) -> Self {
        self.playground = false;
        self
    }

    /// Responses show env keys with masked values (`LOWCODE_FAAS_REDACT_ENV`).
    #[must_use]
    pub fn redact_env(mut self) -> Self {
        self.redact_env = true;
        self
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
        settings.cors_origins = self.cors_origins;
        settings.ui = self.playground;
        settings.redact_env = self.redact_env;
        Ok(Arc::new(Dispatcher {
            browser: BrowserPolicy::SameOrigin {
                cors_origins: settings.cors_origins.clone(),
            },
            engine: self.engine,
            settings: Arc::new(settings),
            metrics: new_metrics()?,
            proxy: None,
            log_buffer: self.log_buffer,
            cleanup: Cleanup::default(),
        }))
    }
}

/// The playground's URL on a dispatcher bound to `addr` (an unspecified
/// address is shown as loopback, which reaches it from the same machine).
pub fn playground_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/ui/", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faas_adapters::memory::MemorySourceStore;
    use faas_adapters::unavailable::UnavailableRuntime;

    fn engine() -> Arc<faas_domain::Engine> {
        Arc::new(
            faas_domain::Engine::builder(
                Arc::new(MemorySourceStore::new()),
                Arc::new(UnavailableRuntime::new("test")),
            )
            .build(),
        )
    }

    #[tokio::test]
    async fn the_builder_sets_the_playground_and_cors_origins() {
        let on = super::routes(super::DispatcherBuilder::new(engine()).build().unwrap());
        let res = warp::test::request().path("/ui/").reply(&on).await;
        assert_eq!(res.status(), 200);
        let res = warp::test::request()
            .method("POST")
            .path("/functions")
            .header("origin", "https://app.example")
            .header("host", "localhost")
            .body("{}")
            .reply(&on)
            .await;
        assert_eq!(res.status(), 403);

        let off = super::routes(
            super::DispatcherBuilder::new(engine())
                .without_playground()
                .cors_origins(["https://app.example"])
                .build()
                .unwrap(),
        );
        let res = warp::test::request().path("/ui/").reply(&off).await;
        assert_eq!(res.status(), 404);
        let res = warp::test::request()
            .method("POST")
            .path("/functions")
            .header("origin", "https://app.example")
            .header("content-type", "application/json")
            .body(r#"{"name":"f","source_code":"export async function handler(){return {ok:true}}"}"#)
            .reply(&off)
            .await;
        assert_eq!(res.status(), 201, "{:?}", res.body());
        assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example");
    }

    #[tokio::test]
    async fn the_builder_can_redact_env() {
        let api = super::routes(super::DispatcherBuilder::new(engine()).redact_env().build().unwrap());
        let res = warp::test::request()
            .method("POST")
            .path("/functions")
            .body(r#"{"name":"f","source_code":"export async function handler(){return {ok:true}}","env":{"K":"s3cr3t"}}"#)
            .reply(&api)
            .await;
        assert_eq!(res.status(), 201, "{:?}", res.body());
        let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(body["env"], serde_json::json!({"K": "***"}));
    }

    #[test]
    fn playground_urls() {
        let url = |a: &str| super::playground_url(a.parse().unwrap());
        assert_eq!(url("127.0.0.1:8080"), "http://127.0.0.1:8080/ui/");
        assert_eq!(url("0.0.0.0:80"), "http://127.0.0.1:80/ui/");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080/ui/");
    }
}
