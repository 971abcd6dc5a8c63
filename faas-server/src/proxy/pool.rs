//! The workers of a proxy-mode dispatcher: which one runs an invoke
//! (rendezvous hashing on what the dispatcher knows without storage), when
//! to try the next one (only when the request never left, or a `429`), and
//! their health (passive: failures seen on runs; active: `/readyz` polled in
//! the background).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use faas_domain::InvokeRequest;
use faas_http::metrics::{Metrics, WorkerGauge};
use faas_ports::{RunRequest, RunResult};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use warp::http::header::HeaderValue;
use warp::http::StatusCode;
use warp::reply::Response;

use super::client::{http_client, SendError, WorkerClient};
use super::resolve::{Resolve, Resolved, Target};
use crate::config::Secret;
use crate::{ApiError, ServerError};

/// The reply header naming the worker that answered an invoke (its base URL).
pub const WORKER_HEADER: &str = "x-lowcode-faas-worker";

/// Most workers one invoke is offered to (its home and two more in its order).
pub const MAX_TRIES: usize = 3;

/// How a pool is set up (from `LOWCODE_FAAS_WORKER_*`).
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The validated base URLs of `LOWCODE_FAAS_WORKER_URL`.
    pub urls: Vec<String>,
    /// `LOWCODE_FAAS_WORKER_TOKEN`.
    pub token: Option<Secret>,
    /// Largest reply accepted from a worker.
    pub max_reply_bytes: u64,
    /// `LOWCODE_FAAS_WORKER_DNS_REFRESH_MS`.
    pub dns_refresh: Duration,
    /// `LOWCODE_FAAS_WORKER_HEALTH_INTERVAL_MS`.
    pub health_interval: Duration,
    /// `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` of the worker hop.
    pub proxy: faas_adapters::outbound::OutboundProxy,
}

/// One worker and whether it gets its share.
#[derive(Debug)]
struct Worker {
    client: WorkerClient,
    healthy: AtomicBool,
}

/// The workers, their health, and the routing of invokes to them.
#[derive(Debug)]
pub struct WorkerPool {
    config: PoolConfig,
    targets: Vec<Target>,
    resolver: Arc<dyn Resolve>,
    client: reqwest::Client,
    metrics: Metrics,
    /// Sorted by base URL; replaced whole on a DNS change (never held across `.await`).
    workers: RwLock<Vec<Arc<Worker>>>,
    resolved: Mutex<Resolved>,
}

/// What a proxy-mode `/readyz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolHealth {
    /// Workers that get their share.
    pub healthy: usize,
    /// Workers known now.
    pub total: usize,
    /// Each worker's base URL and whether it is healthy.
    pub each: Vec<(String, bool)>,
}

impl PoolHealth {
    /// `{healthy, total, each: {base: "healthy" | "unhealthy"}}`.
    pub fn to_json(&self) -> Value {
        let each: serde_json::Map<String, Value> = self
            .each
            .iter()
            .map(|(base, up)| (base.clone(), json!(if *up { "healthy" } else { "unhealthy" })))
            .collect();
        json!({"healthy": self.healthy, "total": self.total, "each": each})
    }
}

/// The routing key of an invoke: what the dispatcher knows without reading
/// storage. `collection/name` (`name` at the root), then `@vN` for a pinned
/// version, then `#` and the request env as sorted JSON when it has any
/// (two invokes with different env get different runners on the worker).
pub fn route_key(request: &InvokeRequest) -> String {
    let mut key = match request.collection_path.as_option() {
        Some(cp) => format!("{cp}/{}", request.name),
        None => request.name.to_string(),
    };
    if let Some(v) = request.version {
        key.push_str(&format!("@v{}", v.get()));
    }
    if !request.env.is_empty() {
        key.push('#');
        key.push_str(&serde_json::to_string(request.env.as_map()).unwrap_or_default());
    }
    key
}

impl WorkerPool {
    /// A pool over `config.urls`, names looked up with `resolver`. Empty
    /// until [`WorkerPool::start`] (or [`WorkerPool::refresh`]).
    pub fn new(config: PoolConfig, resolver: Arc<dyn Resolve>, metrics: Metrics) -> Result<Arc<Self>, ServerError> {
        let targets = config.urls.iter().map(|u| Target::of(u)).collect();
        let client = http_client(&config.proxy)?;
        Ok(Arc::new(Self {
            config,
            targets,
            resolver,
            client,
            metrics,
            workers: RwLock::new(Vec::new()),
            resolved: Mutex::new(Resolved::default()),
        }))
    }

    /// Resolves the list, probes every worker once, and starts the
    /// background tasks (health every `health_interval`; DNS every
    /// `dns_refresh` when the list has names). They end when the pool is dropped.
    pub async fn start(self: &Arc<Self>) {
        self.refresh().await;
        self.probe_all().await;
        let weak = Arc::downgrade(self);
        tokio::spawn(every(weak, self.config.health_interval, |pool| async move {
            pool.probe_all().await;
        }));
        if self.targets.iter().any(|t| matches!(t, Target::Name { .. })) {
            let weak = Arc::downgrade(self);
            tokio::spawn(every(weak, self.config.dns_refresh, |pool| async move {
                pool.refresh().await;
            }));
        }
    }

    /// Resolves the names again and replaces the worker list; a worker that
    /// stays keeps its health, a new one starts healthy (DNS lists ready
    /// workers), a gone one loses its metrics.
    pub async fn refresh(&self) {
        let bases = {
            let mut resolved = self.resolved.lock().await;
            resolved.bases(&self.targets, self.resolver.as_ref()).await
        };
        let mut workers = self.workers.write().unwrap_or_else(PoisonError::into_inner);
        let next: Vec<Arc<Worker>> = bases
            .iter()
            .map(|base| match workers.iter().find(|w| w.client.base() == base) {
                Some(w) => Arc::clone(w),
                None => {
                    self.metrics.worker_health(base, WorkerGauge::Healthy);
                    Arc::new(Worker {
                        client: WorkerClient::with_client(
                            base,
                            self.config.token.clone(),
                            self.config.max_reply_bytes,
                            self.client.clone(),
                        ),
                        healthy: AtomicBool::new(true),
                    })
                }
            })
            .collect();
        for gone in workers.iter().filter(|w| !bases.iter().any(|b| b == w.client.base())) {
            tracing::info!(worker = %gone.client.base(), "worker left the list");
            self.metrics.forget_worker(gone.client.base());
        }
        *workers = next;
    }

    /// Polls `/readyz` of every worker at once and records the verdicts.
    pub async fn probe_all(&self) {
        let workers = self.snapshot();
        let probes = workers.iter().map(|w| async move {
            let verdict = w.client.health().await;
            if let Err(e) = &verdict {
                tracing::debug!(worker = %w.client.base(), error = %e, "worker probe failed");
            }
            let state = if verdict.is_ok() {
                WorkerGauge::Healthy
            } else {
                WorkerGauge::Unhealthy
            };
            self.mark(w, state);
        });
        futures_util::future::join_all(probes).await;
    }

    fn snapshot(&self) -> Vec<Arc<Worker>> {
        self.workers.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn mark(&self, worker: &Worker, state: WorkerGauge) {
        let healthy = state == WorkerGauge::Healthy;
        let was = worker.healthy.swap(healthy, Ordering::SeqCst);
        let base = worker.client.base();
        if was != healthy {
            if healthy {
                tracing::info!(worker = %base, "worker is healthy again; it gets its share back");
            } else {
                tracing::warn!(worker = %base, "worker marked unhealthy; its keys go to the next workers");
            }
        }
        self.metrics.worker_health(base, state);
    }

    /// The workers to offer `key` to, best first: its rendezvous order with
    /// the healthy workers ahead of the unhealthy ones (tried only when no
    /// healthy one is left), at most [`MAX_TRIES`].
    fn order(&self, key: &str) -> Vec<Arc<Worker>> {
        let workers = self.snapshot();
        let bases: Vec<&str> = workers.iter().map(|w| w.client.base()).collect();
        let ranked: Vec<Arc<Worker>> = faas_sim::rendezvous::rank(key, &bases)
            .into_iter()
            .filter_map(|i| workers.get(i).cloned())
            .collect();
        let (mut order, unhealthy): (Vec<_>, Vec<_>) =
            ranked.into_iter().partition(|w| w.healthy.load(Ordering::SeqCst));
        order.extend(unhealthy);
        order.truncate(MAX_TRIES);
        order
    }

    /// The base URLs `key` would be offered to now, best first.
    #[cfg(test)]
    pub fn order_of(&self, key: &str) -> Vec<String> {
        self.order(key).iter().map(|w| w.client.base().to_owned()).collect()
    }

    /// Health of every worker now (no probe).
    pub fn health(&self) -> PoolHealth {
        let each: Vec<(String, bool)> = self
            .snapshot()
            .iter()
            .map(|w| (w.client.base().to_owned(), w.healthy.load(Ordering::SeqCst)))
            .collect();
        PoolHealth {
            healthy: each.iter().filter(|(_, up)| *up).count(),
            total: each.len(),
            each,
        }
    }

    /// Runs `run` on the worker chosen for `key`, waiting at most `wait` in
    /// all. The next worker in order is tried only when the request never
    /// left (no connection) or the worker answered `429` (it refused before
    /// running): a run that may have happened is never sent twice. The
    /// reply carries [`WORKER_HEADER`].
    pub async fn run(
        &self,
        key: &str,
        run: &RunRequest,
        wait: Duration,
    ) -> Result<(Response, Option<RunResult>), ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut last: Option<Result<(Response, Option<RunResult>), ApiError>> = None;
        for worker in self.order(key) {
            let base = worker.client.base();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            self.metrics.worker_request(base);
            match worker.client.run(run, left).await {
                Ok((response, _)) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    tracing::debug!(worker = %base, key, "worker is full; trying the next one");
                    last = Some(Ok((with_worker(response, base), None)));
                }
                Ok((response, result)) => {
                    if response.status().is_server_error() {
                        self.metrics.worker_failure(base);
                        self.mark(&worker, WorkerGauge::Unhealthy);
                    } else {
                        self.mark(&worker, WorkerGauge::Healthy);
                    }
                    return Ok((with_worker(response, base), result));
                }
                Err(SendError::NotSent(e)) => {
                    self.metrics.worker_failure(base);
                    self.mark(&worker, WorkerGauge::Unhealthy);
                    last = Some(Err(e));
                }
                Err(e) => {
                    if !e.is_timeout() {
                        self.metrics.worker_failure(base);
                        self.mark(&worker, WorkerGauge::Unhealthy);
                    }
                    return Err(e.into_api());
                }
            }
        }
        last.unwrap_or_else(|| {
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "WORKER_UNAVAILABLE",
                "no worker is known (LOWCODE_FAAS_WORKER_URL)",
            ))
        })
    }

    /// Forwards a `GET` of the function-log routes to one worker (the first
    /// healthy one in a fixed order: each worker has its own log buffer).
    pub async fn get(&self, path: &str, query: &str, wait: Duration) -> Result<Response, ApiError> {
        let Some(worker) = self.order("function-logs").into_iter().next() else {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "WORKER_UNAVAILABLE",
                "no worker is known (LOWCODE_FAAS_WORKER_URL)",
            ));
        };
        let response = worker.client.get(path, query, wait).await?;
        Ok(with_worker(response, worker.client.base()))
    }
}

/// Runs `tick` on the pool every `period` until the pool is dropped.
async fn every<F, Fut>(pool: Weak<WorkerPool>, period: Duration, tick: F)
where
    F: Fn(Arc<WorkerPool>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        tick(pool).await;
    }
}

fn with_worker(mut response: Response, base: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(base) {
        response.headers_mut().insert(WORKER_HEADER, v);
    }
    response
}

#[cfg(test)]
mod tests;
