//! Replies both servers give the same way: `/healthz`, `/readyz`,
//! `/metrics`, and a run (validated at the edge, run in this process,
//! counted).

use faas_domain::{Engine, InvokeRequest, RunInput};
use faas_ports::{CollectionPath, EnvMap, FunctionName, RunRequest, Version};
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::http;
use crate::metrics::Metrics;
use crate::ApiError;

/// Validates a run request (a public invoke or a worker `/v1/run`) into the
/// domain's invoke request. The same checks on both paths, so a proxied run
/// fails exactly like an in-process one.
pub fn validate_run(run: RunRequest) -> Result<InvokeRequest, ApiError> {
    // Runs address stored functions: any name or collection path the Go
    // version could store.
    let name = FunctionName::parse_stored(&run.function_name)?;
    let collection_path = CollectionPath::parse_stored(run.collection_path.as_deref().unwrap_or(""))?;
    let version = match run.version {
        None | Some(Value::Null) => None,
        Some(v) => Some(Version::from_json(&v)?),
    };
    Ok(InvokeRequest {
        collection_path,
        name,
        input: RunInput::parse(run.input)?,
        timeout: timeout_from_wire(run.timeout_ms),
        env: EnvMap::from_json(&run.env.unwrap_or(Value::Null))?,
        version,
        include_logs: run.include_logs.unwrap_or(false),
    })
}

/// `?include_logs=` of an invoke or a `/v1/run` (read only when the body
/// names none): `1/true/yes/on` or `0/false/no/off`, else 400 `INVALID_REQUEST`.
pub fn include_logs_query(req: &http::Incoming) -> Result<Option<bool>, ApiError> {
    match req.query("include_logs") {
        None => Ok(None),
        Some(raw) => crate::config::parse_bool(raw).map(Some).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                format!("include_logs={raw:?}: expected true or false"),
            )
        }),
    }
}

/// The wire's `timeout_ms`: absent, `0` or negative mean "the default"
/// (`None`); the library API takes a [`std::time::Duration`].
pub fn timeout_from_wire(timeout_ms: Option<i64>) -> Option<std::time::Duration> {
    timeout_ms
        .filter(|ms| *ms > 0)
        .map(|ms| std::time::Duration::from_millis(ms.unsigned_abs()))
}

/// Runs in this process and counts the run.
pub async fn run_in_process(engine: &Engine, metrics: &Metrics, request: InvokeRequest) -> Result<Response, ApiError> {
    let result = engine.invoke(request).await?;
    metrics.observe_run(&result);
    Ok(http::json(StatusCode::OK, &result))
}

/// `/readyz` of a process that runs functions: storage and runtime must
/// answer; the body also reports the execution mode and the runtime's pool.
pub async fn engine_readiness(engine: &Engine) -> Response {
    let health = engine.health().await;
    let status = engine.runtime_status();
    let mut runtime = serde_json::Map::new();
    runtime.insert("execution_mode".into(), json!(status.execution_mode));
    if let Some(pool) = status.pool {
        runtime.insert(
            "pool".into(),
            json!({
                "prewarm_target": pool.prewarm_target,
                "prewarm_idle": pool.prewarm_idle,
                "launching": pool.launching,
                "warm_idle": pool.warm_idle,
                "warm_busy": pool.warm_busy,
                "warm_keys": pool.warm_keys,
                "hits": pool.hits,
                "misses": pool.misses,
                "evictions": pool.evictions,
                "launch_failures": pool.launch_failures,
                "last_error": pool.last_error,
            }),
        );
    }
    readiness_with(
        &[
            ("storage", health.storage.map_err(|e| e.to_string())),
            ("runtime", health.runtime.map_err(|e| e.to_string())),
        ],
        Some(("runtime_status", Value::Object(runtime))),
    )
}

/// `/healthz`: 200 `{"status":"ok"}` while the process serves.
pub fn healthz() -> Response {
    http::json(StatusCode::OK, &json!({"status": "ok"}))
}

/// `/readyz`: 200 `{"status":"ready"}`, or 503 naming each failing component.
pub fn readiness(checks: &[(&str, Result<(), String>)]) -> Response {
    readiness_with(checks, None)
}

/// [`readiness`] with one more field in the body, whatever the verdict.
pub fn readiness_with(checks: &[(&str, Result<(), String>)], extra: Option<(&str, Value)>) -> Response {
    let failing: serde_json::Map<String, Value> = checks
        .iter()
        .filter_map(|(name, result)| {
            result
                .as_ref()
                .err()
                .map(|e| ((*name).to_owned(), Value::String(e.clone())))
        })
        .collect();
    let (status, mut body) = if failing.is_empty() {
        (StatusCode::OK, json!({"status": "ready"}))
    } else {
        let names: Vec<&str> = failing.keys().map(String::as_str).collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "not_ready",
                "error": format!("not ready: {}", names.join(", ")),
                "code": "NOT_READY",
                "components": failing,
            }),
        )
    };
    if let (Some((key, value)), Some(map)) = (extra, body.as_object_mut()) {
        map.insert(key.to_owned(), value);
    }
    http::json(status, &body)
}

/// `GET /openapi.json`: a server's OpenAPI document, exactly as embedded
/// (`docs/openapi.json`, `docs/openapi-worker.json`).
pub fn openapi(document: &'static str) -> Response {
    let mut res = Response::new(document.into());
    res.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    res
}

/// The Prometheus text reply.
pub fn metrics_reply(text: String) -> Response {
    let mut res = Response::new(text.into());
    res.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn wire_timeouts_at_or_below_zero_mean_the_default() {
        let cases = [
            (None, None),
            (Some(0), None),
            (Some(-5), None),
            (Some(1500), Some(Duration::from_millis(1500))),
        ];
        for (wire, want) in cases {
            assert_eq!(timeout_from_wire(wire), want, "{wire:?}");
        }
    }
}
