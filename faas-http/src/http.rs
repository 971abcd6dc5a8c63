//! HTTP plumbing shared by the dispatcher and the worker: request ids,
//! bearer auth, bounded bodies, JSON replies, the per-request span and
//! request metrics. Route handling itself lives in each binary's [`Service`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use subtle::ConstantTimeEq;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;
use warp::Filter;

use crate::browser::{is_preflight, BrowserPolicy};
use crate::metrics::Metrics;
use crate::ApiError;

/// Longest a client may take to send its request body (slow clients hold a
/// connection and a buffer; this bounds both).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Longest request target (path and query string) in bytes; a longer one
/// is answered 414 `URI_TOO_LONG` before routing.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, warp::Error>> + Send>>;

/// One incoming request, routed-to but with its body still unread.
pub struct Incoming {
    /// Method.
    pub method: Method,
    /// Path as received.
    pub path: String,
    /// Decoded query parameters (the last value wins).
    pub query: HashMap<String, String>,
    raw_query: String,
    /// Headers.
    pub headers: HeaderMap,
    // A Mutex only to make `Incoming` Sync (handlers hold `&Incoming` across awaits); never contended.
    body: std::sync::Mutex<Option<BodyStream>>,
    max_body_bytes: u64,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Incoming {
    /// Reads the whole body, refusing more than the limit with 413
    /// `PAYLOAD_TOO_LARGE` (with or without `Content-Length`).
    pub async fn body(&mut self) -> Result<Bytes, ApiError> {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("request body is larger than {} bytes", self.max_body_bytes),
            )
        };
        let declared = self
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes) {
            return Err(too_large());
        }
        let taken = self.body.get_mut().ok().and_then(Option::take);
        let Some(mut stream) = taken else {
            return Ok(Bytes::new());
        };
        let limit = self.max_body_bytes;
        let read = async {
            let mut buf = BytesMut::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| ApiError::invalid_json(format!("could not read request body: {e}")))?;
                if (buf.len() + chunk.len()) as u64 > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(buf.freeze())
        };
        tokio::time::timeout(BODY_READ_TIMEOUT, read).await.map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                format!(
                    "the request body was not received within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            )
        })?
    }

    /// Reads the body as a JSON object into `T`. An empty body is `{}` when
    /// `empty_is_object`, else `INVALID_JSON`.
    /// The body must come as `application/json` (or without a type; see
    /// [`crate::browser::check_json_content_type`]), else 415
    /// `UNSUPPORTED_MEDIA_TYPE` before it is read.
    pub async fn json<T: DeserializeOwned>(&mut self, empty_is_object: bool) -> Result<T, ApiError> {
        crate::browser::check_json_content_type(&self.headers)?;
        let body = self.body().await?;
        parse_json_body(&body, empty_is_object)
    }

    /// The query string as received (without `?`).
    pub fn raw_query(&self) -> String {
        self.raw_query.clone()
    }

    /// A query parameter, `None` when absent or empty.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// A request body as the JSON object `T` (400 `INVALID_JSON` otherwise,
/// naming what is wrong). An empty or all-whitespace body is `{}` when
/// `empty_is_object`, else refused.
pub fn parse_json_body<T: DeserializeOwned>(body: &[u8], empty_is_object: bool) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        if !empty_is_object {
            return Err(ApiError::invalid_json(
                "request body is empty; a JSON object is required",
            ));
        }
        b"{}"
    } else {
        body
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::invalid_json(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_json("request body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid_json(format!("invalid field: {e}")))
}

/// A JSON reply.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut res = Response::new(bytes.into());
            *res.status_mut() = status;
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "serialising a reply failed");
            error_reply(&ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            ))
        }
    }
}

/// 204 with an empty body.
pub fn no_content() -> Response {
    let mut res = Response::new(Default::default());
    *res.status_mut() = StatusCode::NO_CONTENT;
    res
}

/// `{"error": "...", "code": "..."}` with the error's status and headers.
pub fn error_reply(err: &ApiError) -> Response {
    let mut res = json(err.status, &serde_json::json!({"error": err.message, "code": err.code}));
    if let Some(allow) = err.allow.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
        res.headers_mut().insert(ALLOW, allow);
    }
    if let Some(secs) = err.retry_after {
        res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// What a service (dispatcher or worker API) plugs into [`filter`].
#[async_trait::async_trait]
pub trait Service: Send + Sync + 'static {
    /// The service's own route enum.
    type Route: Send + 'static;
    /// Matches method and path; `label` is for metrics; `public` skips auth.
    fn route(&self, method: &Method, path: &str) -> Result<RouteInfo<Self::Route>, ApiError>;
    /// Handles a routed request.
    async fn handle(&self, route: RouteInfo<Self::Route>, req: Incoming) -> Result<Response, ApiError>;
    /// The bearer token this service requires, if any.
    fn token(&self) -> Option<&str>;
    /// Largest body accepted.
    fn max_body_bytes(&self) -> u64;
    /// Request metrics.
    fn metrics(&self) -> &Metrics;
    /// Which browser requests this service accepts (cross-site rule, CORS).
    fn browser_policy(&self) -> &BrowserPolicy;
}

/// A matched route as the plumbing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo<R> {
    /// The service's own route value.
    pub route: R,
    /// A low-cardinality label for metrics and logs.
    pub label: &'static str,
    /// Skip auth (health endpoints).
    pub public: bool,
}

/// The warp filter serving every request through `service`. It routes on
/// the path left unmatched by filters before it, so it can be mounted under a
/// prefix (`warp::path("faas").and(filter(..))`); it matches every path, so
/// mount it last when combining with other filters.
pub fn filter<S: Service>(service: Arc<S>) -> BoxedFilter<(Response,)> {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::any()
        .and(warp::method())
        .and(warp::path::tail())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method: Method, path: warp::path::Tail, query: String, headers: HeaderMap, body| {
                let service = Arc::clone(&service);
                let body = box_body(body);
                async move { serve_one(service, method, format!("/{}", path.as_str()), query, headers, body).await }
            },
        )
        .recover(|rejection: warp::Rejection| async move {
            tracing::warn!(?rejection, "request rejected by warp");
            Ok::<_, Infallible>(error_reply(&ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "the request could not be read",
            )))
        })
        .unify()
        .boxed()
}

fn box_body<S, B>(stream: S) -> BodyStream
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    Box::pin(stream.map(|chunk| chunk.map(|mut buf| buf.copy_to_bytes(buf.remaining()))))
}

async fn serve_one<S: Service>(
    service: Arc<S>,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: BodyStream,
) -> Response {
    let started = Instant::now();
    let request_id = request_id(&headers);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let label_method = method.clone();
    let policy = service.browser_policy();
    let cors_origin = policy.cors_origin(&headers);
    let (label, mut response) = async {
        if path.len() + query.len() > MAX_URI_BYTES {
            return ("unmatched", error_reply(&ApiError::uri_too_long()));
        }
        // A CORS preflight is answered before routing and auth (a browser
        // never sends the token with it).
        if is_preflight(&method, &headers) {
            return ("preflight", policy.preflight(&headers));
        }
        let routed = match service.route(&method, &path) {
            Ok(r) => r,
            Err(e) => return ("unmatched", error_reply(&e)),
        };
        let label = routed.label;
        tracing::Span::current().record("route", label);
        if let Err(e) = policy.check(&method, &headers) {
            tracing::warn!(origin = ?headers.get(warp::http::header::ORIGIN), "cross-site request refused");
            return (label, error_reply(&e));
        }
        if !routed.public {
            if let Some(token) = service.token() {
                if !bearer_matches(&headers, token) {
                    return (
                        label,
                        error_reply(&ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "UNAUTHORIZED",
                            "missing or wrong bearer token",
                        )),
                    );
                }
            }
        }
        let incoming = Incoming {
            method,
            path,
            query: form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            raw_query: query,
            headers,
            body: std::sync::Mutex::new(Some(body)),
            max_body_bytes: service.max_body_bytes(),
        };
        match service.handle(routed, incoming).await {
            Ok(res) => (label, res),
            Err(e) => (label, error_reply(&e)),
        }
    }
    .instrument(span.clone())
    .await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    policy.decorate(cors_origin, &mut response);
    let status = response.status();
    let elapsed = started.elapsed();
    span.record("status", status.as_u16());
    span.record("latency_ms", u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    service
        .metrics()
        .observe_request(label, label_method.as_str(), status.as_u16(), elapsed);
    span.in_scope(|| tracing::info!("request served"));
    response
}

/// The request's own id when it is a sane header value, else a fresh UUIDv7.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// `Authorization: Bearer <token>`, compared in constant time.
pub fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert!(!bearer_matches(&h, "t"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(bearer_matches(&h, "t"));
        assert!(!bearer_matches(&h, "tt"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic t"));
        assert!(!bearer_matches(&h, "t"));
    }

    #[test]
    fn request_ids_are_echoed_or_generated() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h).len(), 36);
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&h), "has space");
    }
}

#[cfg(test)]
mod properties {
    use faas_ports::RunRequest;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    fn field() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            "[ -~]{0,10}".prop_map(Value::from),
            Just(json!({"A": "1"})),
            Just(json!([1])),
        ]
    }

    #[test]
    fn bodies_must_be_objects() {
        assert_eq!(parse_json_body::<Value>(b"  ", true).unwrap(), json!({}));
        assert_eq!(parse_json_body::<Value>(b"", false).unwrap_err().code, "INVALID_JSON");
        assert_eq!(parse_json_body::<Value>(b"[1]", true).unwrap_err().code, "INVALID_JSON");
        assert_eq!(parse_json_body::<Value>(b"{", true).unwrap_err().code, "INVALID_JSON");
        let err = parse_json_body::<RunRequest>(br#"{"timeout_ms":"5"}"#, true).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (400, "INVALID_JSON"));
    }

    #[test]
    fn numbers_in_bodies_are_read_exactly() {
        // Regression (faas-server's forwarded-invoke property): without
        // serde_json's `float_roundtrip` this input read one unit in the
        // last place off, so a handler (and a proxied run) saw another number.
        let x = 2.0999339139977052e-178_f64;
        let body: Value = parse_json_body(br#"{"x":2.0999339139977052e-178}"#, false).unwrap();
        assert_eq!(body["x"].as_f64().map(f64::to_bits), Some(x.to_bits()));
        let again: Value = parse_json_body(&serde_json::to_vec(&body).unwrap(), false).unwrap();
        assert_eq!(again, body);
    }

    proptest! {
        #[test]
        fn floats_survive_a_hop(x in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let body = serde_json::to_vec(&json!({ "x": x })).unwrap();
            let read: Value = parse_json_body(&body, false).unwrap();
            prop_assert_eq!(read["x"].as_f64().map(f64::to_bits), Some(x.to_bits()));
        }

        #[test]
        fn run_bodies_read_or_are_refused_as_invalid_json(
            fields in proptest::collection::btree_map(
                "function_name|collection_path|input|timeout_ms|env|version|include_logs|other",
                field(),
                0..8,
            )
        ) {
            let body = serde_json::to_vec(&Value::Object(fields.into_iter().collect())).unwrap();
            match parse_json_body::<RunRequest>(&body, false) {
                Ok(run) => {
                    let again = serde_json::to_vec(&run).unwrap();
                    prop_assert_eq!(parse_json_body::<RunRequest>(&again, false).unwrap(), run);
                }
                Err(err) => prop_assert_eq!((err.status.as_u16(), err.code), (400, "INVALID_JSON")),
            }
        }

        #[test]
        fn any_bytes_are_read_or_refused_with_400(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Err(err) = parse_json_body::<RunRequest>(&body, true) {
                prop_assert_eq!(err.status.as_u16(), 400);
            }
        }
    }
}
