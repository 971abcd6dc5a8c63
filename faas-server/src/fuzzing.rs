//! Entry points into the dispatcher's private parsers of outside input, for
//! the fuzz targets of `fuzz/` (feature `fuzzing`; not a stable API): the
//! route table and the invoke body, through the product code itself.

use std::time::Duration;

use faas_domain::InvokeRequest;
use faas_http::http::parse_json_body;
use faas_http::replies::validate_run;
use faas_ports::{CollectionPath, FunctionName, RunRequest};

use crate::api::InvokeBody;
pub use crate::router::{candidates, match_path, route, Playground, Route};
use crate::ApiError;

/// An invoke of `…/functions/{name}/invoke` (in the collection `cp` of the
/// URL, `None` = root) with `body` and `?version=` as the dispatcher
/// validates it (no `?include_logs=`).
pub fn invoke_body(
    cp: Option<&str>,
    name: &str,
    query_version: Option<&str>,
    body: &[u8],
) -> Result<InvokeRequest, ApiError> {
    let cp = CollectionPath::parse(cp.unwrap_or(""))?;
    let name = FunctionName::parse(name)?;
    let body: InvokeBody = parse_json_body(body, true)?;
    let run = body.into_run(&cp, &name, query_version, || Ok(None))?;
    validate_run(run)
}

/// The `/v1/run` body a proxy-mode dispatcher forwards `request` with.
pub fn forwarded_run(request: &InvokeRequest, timeout: Duration) -> RunRequest {
    crate::api::forwarded_run(request, timeout)
}
