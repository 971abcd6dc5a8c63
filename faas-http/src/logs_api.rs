//! The function-log routes (SPEC §9), shared by the dispatcher and the
//! worker: the search over the in-memory buffer and the query hints for
//! Loki, Elasticsearch, CloudWatch and Google Cloud Logging.

use faas_adapters::logs::{LogBuffer, LogFilter};
use faas_ports::CollectionPath;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
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
            Ok(n) if n >= 1 => n.min(MAX_LIMIT),
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
        .map(CollectionPath::parse)
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

/// What the hints are about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HintParams {
    /// A run id.
    pub run_id: Option<String>,
    /// A function name.
    pub function: Option<String>,
    /// A collection path (echoed only).
    pub collection_path: Option<String>,
    /// A deployment id.
    pub deployment_id: Option<String>,
}

/// `GET /function-logs/query`.
pub fn query(req: &Incoming, grafana_template: Option<&str>) -> Result<Response, ApiError> {
    let params = HintParams {
        run_id: req.query("run_id").map(str::to_owned),
        function: req.query("function").map(str::to_owned),
        collection_path: req.query("collection_path").map(str::to_owned),
        deployment_id: req.query("deployment_id").map(str::to_owned),
    };
    Ok(http::json(StatusCode::OK, &hints(&params, grafana_template)?))
}

/// The hints object: the echoed fields, `queries`, and `grafana_explore_url`
/// when a template is configured and a run or deployment id is given.
pub fn hints(p: &HintParams, grafana_template: Option<&str>) -> Result<Value, ApiError> {
    let Some(subject) = p.run_id.as_ref().or(p.deployment_id.as_ref()).or(p.function.as_ref()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
            "give at least one of run_id, function, deployment_id",
        ));
    };
    let substr = format!("{{job=\"docker\"}} |= \"{}\"", dq(subject));
    let mut queries = Map::new();
    queries.insert(
        "loki_logql_json".into(),
        Value::String(match &p.run_id {
            Some(r) => format!("{{job=\"docker\"}} | json | run_id=\"{}\"", dq(r)),
            None => substr.clone(),
        }),
    );
    queries.insert("loki_logql_substr".into(), Value::String(substr.clone()));
    let es = match (&p.run_id, &p.function, &p.deployment_id) {
        (Some(r), _, _) => format!("run_id:\"{}\"", dq(r)),
        (None, Some(f), _) => format!("function_name:\"{}\"", dq(f)),
        (None, None, Some(d)) => format!("deployment_id:\"{}\"", dq(d)),
        (None, None, None) => String::new(),
    };
    queries.insert("elasticsearch_query_string".into(), Value::String(es));
    if let Some(r) = &p.run_id {
        queries.insert(
            "aws_cloudwatch_logs_insights".into(),
            Value::String(format!(
                "fields @timestamp, @message | filter @message like /{}/",
                cw_regex(r)
            )),
        );
        queries.insert(
            "google_cloud_logging".into(),
            Value::String(format!("jsonPayload.run_id=\"{0}\" OR textPayload:\"{0}\"", dq(r))),
        );
    }
    let mut out = Map::new();
    for (key, value) in [
        ("run_id", &p.run_id),
        ("function", &p.function),
        ("collection_path", &p.collection_path),
        ("deployment_id", &p.deployment_id),
    ] {
        if let Some(v) = value {
            out.insert(key.into(), Value::String(v.clone()));
        }
    }
    out.insert("queries".into(), Value::Object(queries));
    if let Some(template) = grafana_template {
        if p.run_id.is_some() || p.deployment_id.is_some() {
            let url = template
                .replace("{{logql}}", &url_encode(&substr))
                .replace("{{run_id}}", &url_encode(p.run_id.as_deref().unwrap_or("")))
                .replace(
                    "{{deployment_id}}",
                    &url_encode(p.deployment_id.as_deref().unwrap_or("")),
                );
            out.insert("grafana_explore_url".into(), Value::String(url));
        }
    }
    Ok(json!(out))
}

/// Escapes a value for a double-quoted string (LogQL, Lucene, Cloud Logging): `\` and `"`.
pub fn dq(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Escapes a value for a CloudWatch `/regex/`: exactly `\ / . * + ? ( ) [ ] { } | ^ $`.
pub fn cw_regex(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\/.*+?()[]{}|^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn url_encode(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(run: Option<&str>, function: Option<&str>, deployment: Option<&str>) -> HintParams {
        HintParams {
            run_id: run.map(str::to_owned),
            function: function.map(str::to_owned),
            collection_path: None,
            deployment_id: deployment.map(str::to_owned),
        }
    }

    #[test]
    fn run_id_hints() {
        let h = hints(&params(Some("run-1"), Some("f"), None), None).unwrap();
        assert_eq!(h["run_id"], "run-1");
        assert_eq!(h["function"], "f");
        let q = &h["queries"];
        assert_eq!(q["loki_logql_json"], r#"{job="docker"} | json | run_id="run-1""#);
        assert_eq!(q["loki_logql_substr"], r#"{job="docker"} |= "run-1""#);
        assert_eq!(q["elasticsearch_query_string"], r#"run_id:"run-1""#);
        assert_eq!(
            q["aws_cloudwatch_logs_insights"],
            "fields @timestamp, @message | filter @message like /run-1/"
        );
        assert_eq!(
            q["google_cloud_logging"],
            r#"jsonPayload.run_id="run-1" OR textPayload:"run-1""#
        );
        assert!(h.get("grafana_explore_url").is_none());
    }

    #[test]
    fn function_only_hints_have_no_run_specific_queries() {
        let h = hints(&params(None, Some("f"), None), Some("http://g/explore?q={{logql}}")).unwrap();
        let q = &h["queries"];
        assert_eq!(q["loki_logql_json"], r#"{job="docker"} |= "f""#);
        assert_eq!(q["elasticsearch_query_string"], r#"function_name:"f""#);
        assert!(q.get("aws_cloudwatch_logs_insights").is_none());
        assert!(q.get("google_cloud_logging").is_none());
        assert!(h.get("grafana_explore_url").is_none(), "needs a run or deployment id");
    }

    #[test]
    fn deployment_id_is_the_subject_before_function() {
        let h = hints(&params(None, Some("f"), Some("a/f@v2")), None).unwrap();
        assert_eq!(h["queries"]["loki_logql_substr"], r#"{job="docker"} |= "a/f@v2""#);
    }

    #[test]
    fn hostile_values_are_escaped_for_each_language() {
        let hostile = r#"x"} |= "y\ /.*+?()[]{}|^$-"#;
        let h = hints(
            &params(Some(hostile), None, None),
            Some("http://g/e?left={{logql}}&r={{run_id}}"),
        )
        .unwrap();
        let q = &h["queries"];
        assert_eq!(
            q["loki_logql_json"],
            r#"{job="docker"} | json | run_id="x\"} |= \"y\\ /.*+?()[]{}|^$-""#
        );
        assert_eq!(
            q["aws_cloudwatch_logs_insights"],
            r#"fields @timestamp, @message | filter @message like /x"\} \|= "y\\ \/\.\*\+\?\(\)\[\]\{\}\|\^\$-/"#
        );
        let url = h["grafana_explore_url"].as_str().unwrap();
        assert!(
            url.starts_with("http://g/e?left=%7Bjob%3D%22docker%22%7D%20%7C%3D%20%22x%5C%22%7D"),
            "{url}"
        );
        assert!(url.contains("&r=x%22%7D%20%7C%3D%20%22y%5C%20%2F.%2A"), "{url}");
        assert!(!url.contains(' ') && !url.contains('"'));
    }

    #[test]
    fn needs_a_subject() {
        let err = hints(&HintParams::default(), None).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (400, "INVALID_QUERY"));
    }
}
