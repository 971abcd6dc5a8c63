//! A small client of the dispatcher's JSON API (docs/api.md §3): one
//! `request` that sends the bearer token, bounds the wait, and turns every
//! non-2xx answer into [`CliError::Api`] with the body's `error` and `code`.

use std::time::Duration;

use faas_ports::report::Report;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Method;
use serde_json::Value;

use crate::error::CliError;

/// How long a request (other than invoke) may take: pull fetches for at
/// most 60 s on the server, so this leaves room for that.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A dispatcher at `base` (`http://host:port`, no trailing `/`).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never in Debug.
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Api {
    /// A client for `base` with an optional bearer token.
    pub fn new(base: &str, token: Option<String>) -> Result<Api, CliError> {
        let base = base.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--url / LOWCODE_FAAS_URL must start with http:// or https://, got `{base}`"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| CliError::Network(format!("cannot build the HTTP client: {e}")))?;
        let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(Api { http, base, token })
    }

    /// Sends one request. `Ok(None)` for a 204 (or any empty 2xx body),
    /// `Ok(Some(json))` for a JSON 2xx body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Option<Value>, CliError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url).timeout(timeout);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| CliError::Network(describe(&e)))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| CliError::Network(describe(&e)))?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &text));
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CliError::Network(format!("the server's answer is not JSON: {e}")))
    }
}

/// The error of a non-2xx answer: the `{"error","code"}` body when there is
/// one, else the body text (shortened) or the status.
pub fn api_error(status: u16, body: &str) -> CliError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let error = field("error").unwrap_or_else(|| {
        let t: String = body.trim().chars().take(200).collect();
        if t.is_empty() {
            "no message".to_owned()
        } else {
            t
        }
    });
    CliError::Api {
        status,
        error,
        code: field("code").unwrap_or_default(),
    }
}

/// A reqwest error with its causes (reqwest's own text is only the outer
/// layer: "error sending request"), each named once.
fn describe(e: &reqwest::Error) -> String {
    Report(e).to_string()
}

/// Whether `/collections/{cp}/functions…` names exactly the collection `cp`:
/// each segment plain (no character a URL would need to encode) and none
/// `functions` or `env`. A collection the Go version stored may have such a
/// segment (docs/api.md §2.2), and `/collections/x/functions/functions` is
/// then ambiguous; those go in the flat form.
fn nests_plainly(collection: &str) -> bool {
    collection.split('/').all(|s| {
        !s.is_empty()
            && s != "functions"
            && s != "env"
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    })
}

/// What `?collection_path=` leaves as is: `/` and the unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The path of a function route (`tail` after `/functions`, `""` for the
/// list): `/functions…` for the root, `/collections/{cp}/functions…` for a
/// plain collection, else the unambiguous `/functions…?collection_path={cp}`.
fn function_route(collection: &str, tail: &str) -> String {
    if collection.is_empty() {
        format!("/functions{tail}")
    } else if nests_plainly(collection) {
        format!("/collections/{collection}/functions{tail}")
    } else {
        let cp = utf8_percent_encode(collection, QUERY_VALUE);
        format!("/functions{tail}?collection_path={cp}")
    }
}

/// The functions of a collection (list, create): see `function_route`.
pub fn functions_path(collection: &str) -> String {
    function_route(collection, "")
}

/// The path of one function (`…/functions/{name}`), plus an optional action
/// (`invoke`, `versions`, `pull`); see `function_route`.
pub fn function_path(collection: &str, name: &str, action: Option<&str>) -> String {
    match action {
        Some(a) => function_route(collection, &format!("/{name}/{a}")),
        None => function_route(collection, &format!("/{name}")),
    }
}

/// `/collections/env` for the root, `/collections/{cp}/env` otherwise.
pub fn collection_env_path(collection: &str) -> String {
    if collection.is_empty() {
        "/collections/env".to_owned()
    } else {
        format!("/collections/{collection}/env")
    }
}

/// Why the dispatcher would read the nested URL of a collection route as a
/// function route, if it would (docs/api.md §2.2: a function route wins):
/// the env of `x/functions` (`/collections/x/functions/env` is the function
/// `env` of `x`), or deleting `x/functions/f` (`/collections/x/functions/f`
/// is the function `f` of `x`). Only collections the Go version stored can
/// have such paths, and the API has no other URL for these two routes.
pub fn misread_collection_route(collection: &str, env: bool) -> Option<String> {
    let segments: Vec<&str> = collection.split('/').collect();
    let n = segments.len();
    let (at, what) = if env {
        (n.checked_sub(1)?, "setting its env")
    } else {
        (n.checked_sub(2)?, "deleting it")
    };
    (segments[at] == "functions").then(|| {
        let parent = segments[..at].join("/");
        let parent = if parent.is_empty() { "/" } else { parent.as_str() };
        format!(
            "{what} is not possible over the API: the dispatcher reads the URL of `{collection}` \
             as a function of the collection `{parent}` (docs/api.md §2.2)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_root_and_nested_collections() {
        assert_eq!(functions_path(""), "/functions");
        assert_eq!(functions_path("a/b"), "/collections/a/b/functions");
        assert_eq!(
            function_path("a", "f", Some("invoke")),
            "/collections/a/functions/f/invoke"
        );
        assert_eq!(function_path("", "f", None), "/functions/f");
        assert_eq!(collection_env_path(""), "/collections/env");
        assert_eq!(collection_env_path("team"), "/collections/team/env");
    }

    #[test]
    fn collections_with_a_functions_or_env_segment_use_the_flat_form() {
        assert_eq!(functions_path("t/functions"), "/functions?collection_path=t/functions");
        assert_eq!(
            function_path("functions", "f", Some("invoke")),
            "/functions/f/invoke?collection_path=functions"
        );
        assert_eq!(
            function_path("a/env/b", "f", None),
            "/functions/f?collection_path=a/env/b"
        );
        assert_eq!(
            function_path("x/functions", "g", Some("versions")),
            "/functions/g/versions?collection_path=x/functions"
        );
        // A segment a URL path would need to encode, also stored by Go.
        assert_eq!(functions_path("a/b c+d"), "/functions?collection_path=a/b%20c%2Bd");
        // `functions` inside a segment is plain.
        assert_eq!(functions_path("my-functions"), "/collections/my-functions/functions");
        // Collection routes stay nested: the router reads these unambiguously.
        assert_eq!(collection_env_path("x/env"), "/collections/x/env/env");
        assert_eq!(misread_collection_route("x/env", true), None);
        assert_eq!(misread_collection_route("x/functions", false), None);
        assert_eq!(misread_collection_route("x/functions/f", true), None);
        assert_eq!(misread_collection_route("team", true), None);
        assert_eq!(misread_collection_route("team", false), None);
        // but not these two: a function route would win.
        let env = misread_collection_route("x/functions", true).unwrap();
        assert!(env.contains("function of the collection `x`"), "{env}");
        assert!(misread_collection_route("functions", true)
            .unwrap()
            .contains("collection `/`"));
        assert!(misread_collection_route("x/functions/f", false).is_some());
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            api_error(404, r#"{"error":"no such function","code":"FUNCTION_NOT_FOUND"}"#),
            CliError::Api {
                status: 404,
                error: "no such function".into(),
                code: "FUNCTION_NOT_FOUND".into()
            }
        );
        assert_eq!(
            api_error(502, "Bad Gateway"),
            CliError::Api {
                status: 502,
                error: "Bad Gateway".into(),
                code: String::new()
            }
        );
    }

    #[test]
    fn url_must_be_http() {
        assert!(Api::new("ftp://x", None).is_err());
        let api = Api::new("http://127.0.0.1:1/", Some("secret".into())).unwrap();
        assert!(!format!("{api:?}").contains("secret"));
    }
}
