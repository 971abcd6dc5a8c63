//! The log-query hints (faas-domain `log_queries`): whatever the run id,
//! function and deployment id, every query quotes them so that unescaping
//! gives the value back, with no unescaped quote (LogQL, Lucene, Cloud
//! Logging) or slash (CloudWatch regex), and the Grafana link carries them
//! percent-encoded.
#![no_main]
#[path = "common.rs"]
mod common;

use common::{parts, unquote};
use faas_domain::log_queries::{log_query_hints, LogQueryParams};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

const TEMPLATE: &str = "https://grafana.example/explore?left={{logql}}&run={{run_id}}&dep={{deployment_id}}";

/// `before` + quoted + `after` → the unescaped quoted value.
fn quoted(query: &str, before: &str, after: &str) -> String {
    let inner = query
        .strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
        .unwrap_or_else(|| panic!("{query:?} is not {before:?}…{after:?}"));
    unquote(inner).unwrap_or_else(|| panic!("{inner:?} holds an unescaped quote or a bad escape"))
}

/// The CloudWatch regex body → the literal it matches; every special
/// character must be escaped.
fn unregex(inner: &str) -> String {
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let e = chars.next().expect("a regex escape is complete");
            assert!("\\/.*+?()[]{}|^$".contains(e), "needless escape {e:?}");
            out.push(e);
        } else {
            assert!(!"\\/.*+?()[]{}|^$".contains(c), "unescaped {c:?} in {inner:?}");
            out.push(c);
        }
    }
    out
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fuzz_target!(|data: &[u8]| {
    let Some(p) = parts(data, 4) else { return };
    let get = |i: usize| p.get(i).copied().unwrap_or("");
    let params = LogQueryParams {
        run_id: opt(get(0)),
        function: opt(get(1)),
        deployment_id: opt(get(2)),
        collection_path: opt(get(3)),
    };
    let Ok(hints) = log_query_hints(&params, Some(TEMPLATE)) else {
        assert!(params.run_id.is_none() && params.function.is_none() && params.deployment_id.is_none());
        return;
    };
    let q = &hints.queries;
    let subject = params
        .run_id
        .as_ref()
        .or(params.deployment_id.as_ref())
        .or(params.function.as_ref());
    let subject = subject.expect("hints need a subject");
    assert_eq!(&quoted(&q.loki_logql_substr, "{job=\"docker\"} |= \"", "\""), subject);
    match &params.run_id {
        Some(run) => {
            assert_eq!(
                &quoted(&q.loki_logql_json, "{job=\"docker\"} | json | run_id=\"", "\""),
                run
            );
            assert_eq!(&quoted(&q.elasticsearch_query_string, "run_id:\"", "\""), run);
            let cw = q
                .aws_cloudwatch_logs_insights
                .as_deref()
                .expect("a run id gives a CloudWatch query");
            let body = cw
                .strip_prefix("fields @timestamp, @message | filter @message like /")
                .and_then(|r| r.strip_suffix('/'))
                .expect("the CloudWatch query shape");
            assert_eq!(&unregex(body), run);
            let gcl = q
                .google_cloud_logging
                .as_deref()
                .expect("a run id gives a Cloud Logging query");
            let (a, b) = gcl
                .split_once("\" OR textPayload:\"")
                .expect("the Cloud Logging query shape");
            assert_eq!(&quoted(&format!("{a}\""), "jsonPayload.run_id=\"", "\""), run);
            assert_eq!(&quoted(&format!("\"{b}"), "\"", "\""), run);
        }
        None => {
            assert_eq!(q.loki_logql_json, q.loki_logql_substr);
            assert!(q.aws_cloudwatch_logs_insights.is_none() && q.google_cloud_logging.is_none());
        }
    }
    match &hints.grafana_explore_url {
        Some(url) => {
            let query = url
                .strip_prefix("https://grafana.example/explore?")
                .expect("the template's start");
            let fields: Vec<&str> = query.split('&').collect();
            assert_eq!(fields.len(), 3, "{url:?}: an encoded value holds '&'");
            let decoded = |f: &str, name: &str| -> String {
                let v = f.strip_prefix(name).expect("the template's field");
                // Form-encoded as the Go version did: `+` for a space.
                assert!(
                    v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%*+".contains(&b)),
                    "{v:?}"
                );
                let spaces = v.replace('+', " ");
                percent_decode_str(&spaces).decode_utf8().expect("encoded UTF-8").into_owned()
            };
            assert_eq!(decoded(fields[0], "left="), q.loki_logql_substr);
            assert_eq!(decoded(fields[1], "run="), params.run_id.clone().unwrap_or_default());
            assert_eq!(
                decoded(fields[2], "dep="),
                params.deployment_id.clone().unwrap_or_default()
            );
        }
        None => assert!(params.run_id.is_none() && params.deployment_id.is_none()),
    }
});
