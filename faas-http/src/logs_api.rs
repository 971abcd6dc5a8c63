//! The function-log routes (docs/api.md), shared by the dispatcher and the
//! worker: the search over the in-memory buffer and the query hints (built
//! by the domain's `log_queries`, only serialised here).

use faas_adapters::logs::{LogBuffer, LogFilter};
use faas_domain::log_queries::{log_query_hints, LogQueryParams};
use faas_ports::CollectionPath;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::http::{self, Incoming};
use crate::ApiError;

/// Default and largest `limit` of `GET /function-logs`.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 500;

/// `GET /function-logs?run_id=&function=&collection_path=&q=&limit=`:
/// newest first; 404 `LOGS_DISABLED` when capture is off.
pub fn search(buffer: Option<&LogBuffer>, req: &Incoming) -> Result<Response, ApiError> {
    let Some(buffer) = buffer else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "LOGS_DISABLED",
            "function-log capture is off (LOWCODE_FAAS_FUNCTION_LOGS=false)",
        ));
    };
    let limit = match req.query("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_LIMIT",
                    format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                ))
            }
        },
    };
    let collection_path = req
        .query("collection_path")
        .map(CollectionPath::parse_stored)
        .transpose()?
        .map(|p| p.as_str().to_owned());
    let filter = LogFilter {
        run_id: req.query("run_id").map(str::to_owned),
        function: req.query("function").map(str::to_owned),
        collection_path,
        q: req.query("q").map(str::to_owned),
    };
    Ok(http::json(StatusCode::OK, &buffer.query(&filter, limit)))
}

/// `GET /function-logs/query`: the hints of
/// [`faas_domain::log_queries::log_query_hints`], serialised.
pub fn query(req: &Incoming, grafana_template: Option<&str>) -> Result<Response, ApiError> {
    let params = LogQueryParams {
        run_id: req.query("run_id").map(str::to_owned),
        function: req.query("function").map(str::to_owned),
        collection_path: req.query("collection_path").map(str::to_owned),
        deployment_id: req.query("deployment_id").map(str::to_owned),
    };
    let hints = log_query_hints(&params, grafana_template)?;
    Ok(http::json(StatusCode::OK, &hints))
}
