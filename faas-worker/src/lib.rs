//! # faas-worker
//!
//! The lowcode-faas worker (docs/api.md): `POST /v1/run` runs a function
//! through exactly the same [`faas_domain::Engine`] and adapters as the
//! dispatcher's in-process path, so a run behaves identically either way.
//! Also serves `/healthz`, `/readyz`, `/metrics`, its OpenAPI document at
//! `/openapi.json` ([`OPENAPI`]) and the function-log routes under `/v1/`. A composition root only: validation is
//! [`faas_http::replies::validate_run`], errors map through
//! [`faas_http::ApiError`]. It depends on `faas-http`, never on the
//! dispatcher crate, and builds no source fetcher.
//!
//! Invariants: the worker reads the same storage as the dispatcher and never
//! writes it; with `LOWCODE_FAAS_WORKER_TOKEN` set, every route but the health
//! checks needs that bearer token, and without it the worker only listens on
//! a loopback address (unless `LOWCODE_FAAS_ALLOW_UNAUTHENTICATED=true`).
#![warn(missing_docs)]

use std::sync::Arc;

use faas_adapters::logs::LogBuffer;
use faas_domain::Engine;
use faas_http::browser::BrowserPolicy;
use faas_http::engine::{build_engine, Cleanup};
use faas_http::http::{self, Incoming, RouteInfo, Service};
use faas_http::logs_api;
use faas_http::metrics::Metrics;
use faas_http::replies::{engine_readiness, healthz, include_logs_query, metrics_reply, run_in_process, validate_run};
use faas_http::router::{check_method, RouteSpec};
use faas_http::serve::{spawn_filter, RunningServer};
use faas_http::{ApiError, ServerError, Settings};
use faas_ports::RunRequest;
use warp::http::Method;
use warp::reply::Response;

/// The worker's OpenAPI 3.1 document (`docs/openapi-worker.json`, byte for
/// byte), served at `GET /openapi.json` (public, like `/healthz`).
pub const OPENAPI: &str = include_str!("../../docs/openapi-worker.json");

/// Every endpoint of the worker (docs/api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
    /// `GET /openapi.json`: the worker's OpenAPI document ([`OPENAPI`]).
    OpenApi,
    /// `POST /v1/run`
    Run,
    /// `GET /v1/function-logs`
    Logs,
    /// `GET /v1/function-logs/query`
    LogsQuery,
}

impl RouteSpec for Route {
    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Run => &[Method::POST],
            _ => &[Method::GET],
        }
    }
}

impl Route {
    /// Matches a worker path to a route.
    pub fn match_path(path: &str) -> Option<Route> {
        match path.strip_suffix('/').unwrap_or(path) {
            "/healthz" => Some(Route::Healthz),
            "/readyz" => Some(Route::Readyz),
            "/metrics" => Some(Route::Metrics),
            "/openapi.json" => Some(Route::OpenApi),
            "/v1/run" => Some(Route::Run),
            "/v1/function-logs" => Some(Route::Logs),
            "/v1/function-logs/query" => Some(Route::LogsQuery),
            _ => None,
        }
    }

    /// A low-cardinality label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.json",
            Route::Run => "/v1/run",
            Route::Logs => "/v1/function-logs",
            Route::LogsQuery => "/v1/function-logs/query",
        }
    }
}

/// The worker service: the engine plus the settings its HTTP edge needs.
#[derive(Debug)]
pub struct Worker {
    /// The engine that runs functions.
    pub engine: Arc<Engine>,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Process metrics.
    pub metrics: Metrics,
    /// The function-log buffer (`None` when capture is off).
    pub log_buffer: Option<Arc<LogBuffer>>,
    /// Removes this process's containers before it exits.
    pub cleanup: Cleanup,
}

#[async_trait::async_trait]
impl Service for Worker {
    type Route = Route;

    fn route(&self, method: &Method, path: &str) -> Result<RouteInfo<Route>, ApiError> {
        let route = check_method(method, Route::match_path(path))?;
        Ok(RouteInfo {
            public: matches!(route, Route::Healthz | Route::Readyz | Route::OpenApi),
            label: route.label(),
            route,
        })
    }

    fn token(&self) -> Option<&str> {
        self.settings.worker_token.as_ref().map(|t| t.expose())
    }

    fn max_body_bytes(&self) -> u64 {
        self.settings.max_body_bytes
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn browser_policy(&self) -> &BrowserPolicy {
        // The worker never serves browsers: any Origin is refused.
        static NO_BROWSERS: BrowserPolicy = BrowserPolicy::NoBrowsers;
        &NO_BROWSERS
    }

    async fn handle(&self, routed: RouteInfo<Route>, mut req: Incoming) -> Result<Response, ApiError> {
        match routed.route {
            Route::Healthz => Ok(healthz()),
            Route::Readyz => Ok(engine_readiness(&self.engine).await),
            Route::OpenApi => Ok(faas_http::replies::openapi(OPENAPI)),
            Route::Metrics => Ok(metrics_reply(
                self.metrics
                    .render(Some(self.engine.stats()), Some(self.engine.runtime_status())),
            )),
            Route::Run => {
                let mut run: RunRequest = req.json(true).await?;
                if run.include_logs.is_none() {
                    run.include_logs = include_logs_query(&req)?;
                }
                let request = validate_run(run)?;
                run_in_process(&self.engine, &self.metrics, request).await
            }
            Route::Logs => logs_api::search(self.log_buffer.as_deref(), &req),
            Route::LogsQuery => logs_api::query(&req, self.settings.logs.grafana_explore_url_template.as_deref()),
        }
    }
}

/// Builds the worker: engine with the configured storage and runtime.
/// Refuses (a configuration error) a non-loopback listen address without
/// `LOWCODE_FAAS_WORKER_TOKEN` unless `LOWCODE_FAAS_ALLOW_UNAUTHENTICATED`
/// is true ([`faas_http::exposure::check_worker`]).
pub async fn build_worker(settings: Settings) -> Result<Arc<Worker>, ServerError> {
    faas_http::exposure::check_worker(&settings)?;
    let built = build_engine(&settings, settings.worker_listen, None, None).await?;
    Ok(Arc::new(Worker {
        engine: built.engine,
        log_buffer: built.log_buffer,
        cleanup: built.cleanup,
        settings: Arc::new(settings),
        metrics: built.metrics,
    }))
}

/// The worker's warp filter (matches every path: mount it last).
pub fn routes(worker: Arc<Worker>) -> warp::filters::BoxedFilter<(Response,)> {
    http::filter(worker)
}

/// Starts a worker on `settings.worker_listen` in the background.
pub async fn spawn(settings: Settings) -> Result<RunningServer, ServerError> {
    let worker = build_worker(settings).await?;
    let addr = worker.settings.worker_listen;
    let grace = worker.settings.shutdown_grace;
    let limits = worker.settings.connection_limits;
    let cleanup = worker.cleanup.clone();
    spawn_filter(routes(worker), addr, grace, limits, cleanup).await
}

#[cfg(test)]
mod openapi_tests {
    use serde_json::Value;
    use warp::http::Method;

    use super::*;

    fn document() -> Value {
        serde_json::from_str(OPENAPI).unwrap()
    }

    fn operations(doc: &Value) -> Vec<(Method, String)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                out.push((
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    path.clone(),
                ));
            }
        }
        out
    }

    /// Every route; the `match` has no wildcard, so a new route does not
    /// compile until it is listed, and then it must be in the document.
    fn every_route() -> Vec<Route> {
        let all = vec![
            Route::Healthz,
            Route::Readyz,
            Route::Metrics,
            Route::OpenApi,
            Route::Run,
            Route::Logs,
            Route::LogsQuery,
        ];
        for route in &all {
            match route {
                Route::Healthz
                | Route::Readyz
                | Route::Metrics
                | Route::OpenApi
                | Route::Run
                | Route::Logs
                | Route::LogsQuery => {}
            }
        }
        all
    }

    #[test]
    fn the_document_and_the_router_agree() {
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        let documented: Vec<(Method, Route)> = operations(&doc)
            .into_iter()
            .map(|(method, path)| {
                let route = check_method(&method, Route::match_path(&path))
                    .unwrap_or_else(|e| panic!("{method} {path} is not a route: {e:?}"));
                let open = doc["paths"][&path][method.as_str().to_lowercase()]["security"]
                    .as_array()
                    .is_some_and(Vec::is_empty);
                assert_eq!(
                    open,
                    matches!(route, Route::Healthz | Route::Readyz | Route::OpenApi),
                    "{path}"
                );
                (method, route)
            })
            .collect();
        for route in every_route() {
            for method in route.allowed() {
                assert!(
                    documented.contains(&(method.clone(), route)),
                    "{method} {} is missing from docs/openapi-worker.json",
                    route.label()
                );
            }
        }
    }

    #[test]
    fn errors_and_run_results_are_those_of_the_dispatcher_document() {
        // The dispatcher's document is checked against docs/api.md and the
        // source (faas-server `openapi` tests); the worker answers the same shapes.
        let dispatcher: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
        let worker = document();
        for schema in ["Error", "RunResult", "RunLog", "EnvMap", "LogEntry", "LogQueryHints"] {
            assert_eq!(
                worker["components"]["schemas"][schema], dispatcher["components"]["schemas"][schema],
                "{schema}"
            );
        }
    }
}
