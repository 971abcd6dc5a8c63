//! One worker's HTTP client: `POST /v1/run`, the log routes, `/readyz`,
//! with the bounds of every reply; says whether a failed run ever left.

use std::time::Duration;

use bytes::BytesMut;
use faas_adapters::outbound::OutboundProxy;
use faas_ports::{RunRequest, RunResult};
use futures_util::StreamExt;
use warp::http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::config::Secret;
use crate::{ApiError, ServerError};

/// Extra time the dispatcher waits for a worker beyond the run's timeout.
pub const WORKER_GRACE: Duration = Duration::from_secs(5);
/// Bound on health probes of the worker.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on opening a connection to a worker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a run sent to one worker has no reply from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No connection could be opened: the request never left, so another
    /// worker may run it.
    #[error("{}", .0.message)]
    NotSent(ApiError),
    /// The request may have reached the worker (a reset after sending, a
    /// broken reply, a timeout): the run may have happened, it is never
    /// sent again.
    #[error("{}", .0.message)]
    MaybeRan(ApiError),
}

impl SendError {
    /// The reply the client gets (502 `WORKER_UNAVAILABLE`, 504 `WORKER_TIMEOUT`).
    pub fn into_api(self) -> ApiError {
        match self {
            SendError::NotSent(e) | SendError::MaybeRan(e) => e,
        }
    }

    /// A timeout, not a transport failure (says nothing about the worker's health).
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendError::MaybeRan(e) if e.code == "WORKER_TIMEOUT")
    }
}

/// A keep-alive HTTP client for one worker (clones share the connection pool).
#[derive(Debug, Clone)]
pub struct WorkerClient {
    base: String,
    token: Option<Secret>,
    client: reqwest::Client,
    max_reply_bytes: u64,
}

impl WorkerClient {
    /// A client for the worker at `base` (`http://host:port`), sending `token`
    /// as a bearer token, over a shared [`http_client`] (one pool for every
    /// worker); replies larger than `max_reply_bytes` are refused.
    pub fn with_client(base: &str, token: Option<Secret>, max_reply_bytes: u64, client: reqwest::Client) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client,
            max_reply_bytes,
        }
    }

    /// The worker's base URL (`http://host:port`), its identity for routing and metrics.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        }
    }

    /// Forwards a run; waits at most `wait`. Returns the worker's reply
    /// (2xx, 4xx, 429 and 5xx unchanged) and the RunResult when it is one.
    pub async fn run(&self, run: &RunRequest, wait: Duration) -> Result<(Response, Option<RunResult>), SendError> {
        let send = async {
            let res = self
                .request(reqwest::Method::POST, "/v1/run")
                .json(run)
                .send()
                .await
                .map_err(|e| {
                    if e.is_connect() {
                        tracing::warn!(worker = %self.base, error = %faas_ports::report::Report(&e), "cannot connect to the worker");
                        SendError::NotSent(worker_unreachable())
                    } else {
                        SendError::MaybeRan(map_error(e))
                    }
                })?;
            self.relay(res).await.map_err(SendError::MaybeRan)
        };
        let (response, body) = tokio::time::timeout(wait, send)
            .await
            .map_err(|_| SendError::MaybeRan(worker_timeout(wait)))??;
        let result = if response.status() == StatusCode::OK {
            serde_json::from_slice::<RunResult>(&body).ok()
        } else {
            None
        };
        Ok((response, result))
    }

    /// Forwards a `GET` (function-log routes) with its query string.
    pub async fn get(&self, path: &str, query: &str, wait: Duration) -> Result<Response, ApiError> {
        let path = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let send = async {
            let res = self
                .request(reqwest::Method::GET, &path)
                .send()
                .await
                .map_err(map_error)?;
            self.relay(res).await
        };
        let (response, _) = tokio::time::timeout(wait, send)
            .await
            .map_err(|_| worker_timeout(wait))??;
        Ok(response)
    }

    /// `Ok` when the worker answers `/readyz` with 200.
    pub async fn health(&self) -> Result<(), String> {
        let res = self
            .request(reqwest::Method::GET, "/readyz")
            .timeout(HEALTH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("worker unreachable: {e}"))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("worker answered /readyz with {}", res.status().as_u16()))
        }
    }

    async fn relay(&self, res: reqwest::Response) -> Result<(Response, bytes::Bytes), ApiError> {
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        if status == StatusCode::UNAUTHORIZED {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "WORKER_UNAVAILABLE",
                "the worker refused the dispatcher's credentials (check LOWCODE_FAAS_WORKER_TOKEN)",
            ));
        }
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
        let mut body = BytesMut::new();
        let mut stream = res.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(map_error)?;
            if (body.len() + chunk.len()) as u64 > self.max_reply_bytes {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "WORKER_UNAVAILABLE",
                    "the worker's reply is larger than allowed",
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let body = body.freeze();
        let mut response = Response::new(body.clone().into());
        *response.status_mut() = status;
        if let Some(v) = content_type {
            response.headers_mut().insert(CONTENT_TYPE, v);
        }
        if let Some(v) = retry_after {
            response.headers_mut().insert(RETRY_AFTER, v);
        }
        Ok((response, body))
    }
}

/// How long an idle keep-alive connection to a worker is kept: below the
/// worker's own idle timeout (`LOWCODE_FAAS_IDLE_TIMEOUT_MS`, 30 s by
/// default), so the dispatcher drops a connection before the worker closes
/// it and never sends a request into a connection being closed.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The shared HTTP client of the dispatcher → worker hop: keep-alive,
/// bounded connects, through `proxy` (`HTTP_PROXY` / `HTTPS_PROXY` /
/// `NO_PROXY` of the settings; put the workers in `NO_PROXY` to reach them
/// directly).
pub fn http_client(proxy: &OutboundProxy) -> Result<reqwest::Client, ServerError> {
    let builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true);
    proxy
        .apply(builder)
        .map_err(|e| ServerError::Adapter {
            context: "LOWCODE_FAAS_WORKER_URL client".into(),
            source: Box::new(e),
        })?
        .build()
        .map_err(|e| ServerError::Adapter {
            context: "LOWCODE_FAAS_WORKER_URL client".into(),
            source: Box::new(e),
        })
}

fn worker_unreachable() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "WORKER_UNAVAILABLE",
        "the worker cannot be reached",
    )
}

fn worker_timeout(wait: Duration) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "WORKER_TIMEOUT",
        format!("the worker did not answer within {} ms", wait.as_millis()),
    )
}

fn map_error(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        return ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "WORKER_TIMEOUT",
            "the worker did not answer in time",
        );
    }
    tracing::warn!(error = %faas_ports::report::Report(&e), "worker request failed");
    worker_unreachable()
}
