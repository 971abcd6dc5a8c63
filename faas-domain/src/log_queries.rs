//! Ready-made queries for the log backends people paste run ids into (docs/api.md): Loki (LogQL), Elasticsearch (query string), CloudWatch Logs Insights
//! and Google Cloud Logging, each value escaped for its language, plus an
//! optional Grafana Explore link. Pure: the HTTP edge only serialises
//! [`LogQueryHints`].

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;

use crate::DomainError;

/// What the hints are about (each field as given by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQueryParams {
    /// A run id.
    pub run_id: Option<String>,
    /// A function name.
    pub function: Option<String>,
    /// A collection path (echoed only).
    pub collection_path: Option<String>,
    /// A deployment id.
    pub deployment_id: Option<String>,
}

/// The queries, one per backend; the run-only ones are absent without a run id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogQueries {
    /// `{job="docker"} | json | run_id="…"` (the substring query without a run id).
    pub loki_logql_json: String,
    /// `{job="docker"} |= "…"` with the run id, else the deployment id, else the function.
    pub loki_logql_substr: String,
    /// `run_id:"…"`, else `function_name:"…"`, else `deployment_id:"…"`.
    pub elasticsearch_query_string: String,
    /// The same Lucene query under the Go version's name.
    pub elasticsearch_lucene: String,
    /// `fields @timestamp, @message | filter @message like /…/` (run id only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_cloudwatch_logs_insights: Option<String>,
    /// `jsonPayload.run_id="…" OR textPayload:"…"` (run id only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google_cloud_logging: Option<String>,
}

/// The reply of `GET /function-logs/query`: the echoed parameters, the
/// queries, and the Grafana link when configured and a run or deployment id
/// is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogQueryHints {
    /// Echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// `function` again, under the Go version's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
    /// Echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_path: Option<String>,
    /// Echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// The queries.
    pub queries: LogQueries,
    /// The template with `{{logql}}` (the substring query), `{{run_id}}` and
    /// `{{deployment_id}}` URL-encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grafana_explore_url: Option<String>,
    /// [`NOTES`]: how to adapt the Loki selector (as the Go version said).
    pub notes: &'static str,
}

/// The `notes` of every hints reply, in English and Simplified Chinese (the
/// Go version said it in Chinese only).
pub const NOTES: &str = "The Loki queries select {job=\"docker\"}, the label of Promtail's Docker service discovery \
     without relabelling (deploy/promtail-dev.yml); adapt the selector to your real labels, e.g. \
     {compose_service=\"worker\"}. \
     Loki 查询使用 {job=\"docker\"} 选择器，即 Promtail 的 Docker 服务发现在未做 relabel 时的标签\
     （见 deploy/promtail-dev.yml）；请按实际的标签修改选择器，例如 {compose_service=\"worker\"}。";

/// The hints for `params`; [`DomainError::InvalidLogQuery`] when none of
/// run id, function and deployment id is given.
pub fn log_query_hints(params: &LogQueryParams, grafana_template: Option<&str>) -> Result<LogQueryHints, DomainError> {
    let p = params;
    let subject = p
        .run_id
        .as_ref()
        .or(p.deployment_id.as_ref())
        .or(p.function.as_ref())
        .ok_or(DomainError::InvalidLogQuery)?;
    let substr = format!("{{job=\"docker\"}} |= \"{}\"", dq(subject));
    let elasticsearch_query_string = match (&p.run_id, &p.function, &p.deployment_id) {
        (Some(r), _, _) => format!("run_id:\"{}\"", dq(r)),
        (None, Some(f), _) => format!("function_name:\"{}\"", dq(f)),
        (None, None, Some(d)) => format!("deployment_id:\"{}\"", dq(d)),
        (None, None, None) => String::new(),
    };
    let queries = LogQueries {
        loki_logql_json: match &p.run_id {
            Some(r) => format!("{{job=\"docker\"}} | json | run_id=\"{}\"", dq(r)),
            None => substr.clone(),
        },
        loki_logql_substr: substr.clone(),
        elasticsearch_lucene: elasticsearch_query_string.clone(),
        elasticsearch_query_string,
        aws_cloudwatch_logs_insights: p
            .run_id
            .as_ref()
            .map(|r| format!("fields @timestamp, @message | filter @message like /{}/", cw_regex(r))),
        google_cloud_logging: p
            .run_id
            .as_ref()
            .map(|r| format!("jsonPayload.run_id=\"{0}\" OR textPayload:\"{0}\"", dq(r))),
    };
    let grafana_explore_url = grafana_template
        .filter(|_| p.run_id.is_some() || p.deployment_id.is_some())
        .map(|template| {
            template
                .replace("{{logql}}", &url_encode(&substr))
                .replace("{{run_id}}", &url_encode(p.run_id.as_deref().unwrap_or("")))
                .replace(
                    "{{deployment_id}}",
                    &url_encode(p.deployment_id.as_deref().unwrap_or("")),
                )
        });
    Ok(LogQueryHints {
        run_id: p.run_id.clone(),
        function: p.function.clone(),
        function_name: p.function.clone(),
        collection_path: p.collection_path.clone(),
        deployment_id: p.deployment_id.clone(),
        queries,
        grafana_explore_url,
        notes: NOTES,
    })
}

/// Escapes a value for a double-quoted string (LogQL, Lucene, Cloud Logging): `\` and `"`.
fn dq(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Escapes a value for a CloudWatch `/regex/`: exactly `\ / . * + ? ( ) [ ] { } | ^ $`.
fn cw_regex(value: &str) -> String {
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

/// Form encoding, as the Go version's `url.QueryEscape`: unreserved
/// characters stay, a space is `+`, everything else is percent-encoded
/// (so a literal `+` is `%2B`).
fn url_encode(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string().replace("%20", "+")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(run: Option<&str>, function: Option<&str>, deployment: Option<&str>) -> LogQueryParams {
        LogQueryParams {
            run_id: run.map(str::to_owned),
            function: function.map(str::to_owned),
            collection_path: None,
            deployment_id: deployment.map(str::to_owned),
        }
    }

    /// One case: (run, function, deployment) → expected queries.
    fn check(given: (Option<&str>, Option<&str>, Option<&str>), want: [Option<&str>; 5]) {
        let h = log_query_hints(&params(given.0, given.1, given.2), None).unwrap();
        let q = &h.queries;
        let got = [
            Some(q.loki_logql_json.as_str()),
            Some(q.loki_logql_substr.as_str()),
            Some(q.elasticsearch_query_string.as_str()),
            q.aws_cloudwatch_logs_insights.as_deref(),
            q.google_cloud_logging.as_deref(),
        ];
        assert_eq!(got, want, "{given:?}");
    }

    #[test]
    fn queries_table() {
        check(
            (Some("run-1"), Some("f"), None),
            [
                Some(r#"{job="docker"} | json | run_id="run-1""#),
                Some(r#"{job="docker"} |= "run-1""#),
                Some(r#"run_id:"run-1""#),
                Some("fields @timestamp, @message | filter @message like /run-1/"),
                Some(r#"jsonPayload.run_id="run-1" OR textPayload:"run-1""#),
            ],
        );
        // Without a run id: no run-specific queries; the function is searched.
        check(
            (None, Some("f"), None),
            [
                Some(r#"{job="docker"} |= "f""#),
                Some(r#"{job="docker"} |= "f""#),
                Some(r#"function_name:"f""#),
                None,
                None,
            ],
        );
        // The deployment id is the subject before the function.
        check(
            (None, Some("f"), Some("a/f@v2")),
            [
                Some(r#"{job="docker"} |= "a/f@v2""#),
                Some(r#"{job="docker"} |= "a/f@v2""#),
                Some(r#"function_name:"f""#),
                None,
                None,
            ],
        );
        check(
            (None, None, Some("d@v1")),
            [
                Some(r#"{job="docker"} |= "d@v1""#),
                Some(r#"{job="docker"} |= "d@v1""#),
                Some(r#"deployment_id:"d@v1""#),
                None,
                None,
            ],
        );
        // Hostile values are escaped for each language.
        let hostile = r#"x"} |= "y\ /.*+?()[]{}|^$-"#;
        check(
            (Some(hostile), None, None),
            [
                Some(r#"{job="docker"} | json | run_id="x\"} |= \"y\\ /.*+?()[]{}|^$-""#),
                Some(r#"{job="docker"} |= "x\"} |= \"y\\ /.*+?()[]{}|^$-""#),
                Some(r#"run_id:"x\"} |= \"y\\ /.*+?()[]{}|^$-""#),
                Some(
                    r#"fields @timestamp, @message | filter @message like /x"\} \|= "y\\ \/\.\*\+\?\(\)\[\]\{\}\|\^\$-/"#,
                ),
                Some(
                    r#"jsonPayload.run_id="x\"} |= \"y\\ /.*+?()[]{}|^$-" OR textPayload:"x\"} |= \"y\\ /.*+?()[]{}|^$-""#,
                ),
            ],
        );
    }

    #[test]
    fn grafana_link_needs_a_run_or_deployment_id_and_is_url_encoded() {
        let template = Some("http://g/e?left={{logql}}&r={{run_id}}");
        let h = log_query_hints(&params(None, Some("f"), None), template).unwrap();
        assert!(h.grafana_explore_url.is_none());
        let hostile = r#"x"} |= "y\ /.*+?()[]{}|^$-"#;
        let h = log_query_hints(&params(Some(hostile), None, None), template).unwrap();
        let url = h.grafana_explore_url.unwrap();
        assert!(
            url.starts_with("http://g/e?left=%7Bjob%3D%22docker%22%7D+%7C%3D+%22x%5C%22%7D"),
            "{url}"
        );
        assert!(url.contains("&r=x%22%7D+%7C%3D+%22y%5C+%2F.%2A"), "{url}");
        assert!(!url.contains(' ') && !url.contains('"'));
        // Form encoding as Go's url.QueryEscape: a space is `+`, a `+` is `%2B`.
        let h = log_query_hints(&params(Some("a b+c~"), None, None), Some("{{run_id}}")).unwrap();
        assert_eq!(h.grafana_explore_url.as_deref(), Some("a+b%2Bc~"));
    }

    #[test]
    fn echoes_what_was_given_and_needs_a_subject() {
        let h = log_query_hints(&params(Some("r"), Some("f"), None), None).unwrap();
        assert_eq!((h.run_id.as_deref(), h.function.as_deref()), (Some("r"), Some("f")));
        // The Go version's keys are there too.
        assert_eq!(h.function_name.as_deref(), Some("f"));
        assert_eq!(h.queries.elasticsearch_lucene, h.queries.elasticsearch_query_string);
        assert!(h.notes.contains("compose_service") && h.notes.contains("选择器"));
        let err = log_query_hints(&LogQueryParams::default(), None).unwrap_err();
        assert_eq!(err.code(), "INVALID_QUERY");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;
        use super::params;

        /// A double-quoted string's content unescaped; `None` on a bare `"`
        /// or an escape other than `\\` and `\"`.
        fn unquote(inner: &str) -> Option<String> {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(e @ ('\\' | '"')) => out.push(e),
                        _ => return None,
                    },
                    '"' => return None,
                    c => out.push(c),
                }
            }
            Some(out)
        }

        const SPECIAL: &str = "\\/.*+?()[]{}|^$";

        proptest! {
            #[test]
            fn double_quoted_values_never_hold_an_unescaped_quote(value in ".{0,40}") {
                prop_assert_eq!(unquote(&dq(&value)), Some(value));
            }

            #[test]
            fn cloudwatch_regexes_escape_every_special_character(value in "[a-z\\\\/.*+?()\\[\\]{}|^$\" -]{0,40}") {
                let escaped = cw_regex(&value);
                let mut back = String::new();
                let mut chars = escaped.chars();
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        let e = chars.next().unwrap();
                        prop_assert!(SPECIAL.contains(e));
                        back.push(e);
                    } else {
                        prop_assert!(!SPECIAL.contains(c), "unescaped {:?}", c);
                        back.push(c);
                    }
                }
                prop_assert_eq!(back, value);
            }

            #[test]
            fn every_query_quotes_the_run_id(run in ".{1,40}") {
                let h = log_query_hints(&params(Some(&run), None, None), Some("x?q={{logql}}&r={{run_id}}")).unwrap();
                let q = &h.queries;
                let inner = q.loki_logql_json.strip_prefix("{job=\"docker\"} | json | run_id=\"").unwrap();
                prop_assert_eq!(unquote(inner.strip_suffix('"').unwrap()), Some(run.clone()));
                let inner = q.elasticsearch_query_string.strip_prefix("run_id:\"").unwrap();
                prop_assert_eq!(unquote(inner.strip_suffix('"').unwrap()), Some(run.clone()));
                let url = h.grafana_explore_url.unwrap();
                let r = url.split_once("&r=").unwrap().1;
                // Form-encoded as the Go version did: `+` for a space.
                prop_assert!(r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%*+".contains(&b)));
                let spaces = r.replace('+', " ");
                prop_assert_eq!(percent_encoding::percent_decode_str(&spaces).decode_utf8().unwrap(), run.as_str());
            }
        }
    }
}
