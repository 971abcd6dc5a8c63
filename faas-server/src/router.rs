//! Pure routing: a method and a path to a [`Route`], or 404 / 405 with `Allow`.
//!
//! Kept out of warp's filter combinators so that a domain 404 can never
//! surface as 405 and the nested `/collections/{cp}/functions/{name}` forms
//! (with any depth of `{cp}`) follow docs/api.md exactly.

use faas_http::router::{method_not_allowed, RouteSpec};
use warp::http::Method;

use crate::ApiError;

/// Every endpoint of the dispatcher. Path parts are raw strings; handlers
/// validate them into newtypes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
    /// `GET /openapi.json`: the OpenAPI document of this API.
    OpenApi,
    /// `GET|POST /collections`
    Collections,
    /// `PUT /collections/env`, `PUT /collections/{cp}/env`
    CollectionEnv(String),
    /// `DELETE /collections/{cp}`
    Collection(String),
    /// `GET|POST /functions`, `/collections/{cp}/functions`; `None` = not in the URL.
    Functions(Option<String>),
    /// `GET|PUT|DELETE …/functions/{name}`
    Function(Option<String>, String),
    /// `GET …/functions/{name}/versions`
    Versions(Option<String>, String),
    /// `POST …/functions/{name}/invoke`
    Invoke(Option<String>, String),
    /// `POST …/functions/{name}/pull`
    Pull(Option<String>, String),
    /// `GET /function-logs/query`
    LogsQuery,
    /// `GET /function-logs`
    Logs,
    /// `GET|HEAD /ui`: redirects to `/ui/`.
    UiRedirect,
    /// `GET|HEAD /ui/{file}` (`""` = `index.html`): the playground.
    Ui(String),
}

impl RouteSpec for Route {
    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Healthz
            | Route::Readyz
            | Route::Metrics
            | Route::OpenApi
            | Route::Versions(..)
            | Route::LogsQuery
            | Route::Logs => &[Method::GET],
            Route::Collections | Route::Functions(_) => &[Method::GET, Method::POST],
            Route::CollectionEnv(_) => &[Method::PUT],
            Route::Collection(_) => &[Method::DELETE],
            Route::Function(..) => &[Method::GET, Method::PUT, Method::DELETE],
            Route::Invoke(..) | Route::Pull(..) => &[Method::POST],
            Route::UiRedirect | Route::Ui(_) => &[Method::GET, Method::HEAD],
        }
    }
}

impl Route {
    /// A low-cardinality label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.json",
            Route::Collections => "/collections",
            Route::CollectionEnv(_) => "/collections/{cp}/env",
            Route::Collection(_) => "/collections/{cp}",
            Route::Functions(_) => "/functions",
            Route::Function(..) => "/functions/{name}",
            Route::Versions(..) => "/functions/{name}/versions",
            Route::Invoke(..) => "/functions/{name}/invoke",
            Route::Pull(..) => "/functions/{name}/pull",
            Route::LogsQuery => "/function-logs/query",
            Route::Logs => "/function-logs",
            Route::UiRedirect | Route::Ui(_) => "/ui",
        }
    }

    /// Health endpoints, the OpenAPI document and the playground's static files are open even
    /// when an API token is set (the page's API calls carry the token).
    pub fn is_public(&self) -> bool {
        matches!(self, Route::Healthz | Route::Readyz | Route::OpenApi) || self.is_ui()
    }

    /// A playground route (`/ui`, `/ui/…`).
    pub fn is_ui(&self) -> bool {
        matches!(self, Route::UiRedirect | Route::Ui(_))
    }
}

/// Matches a path to a route (404 `NOT_FOUND` if none): the first of
/// [`candidates`] (the routing tests and the fuzz target check against it).
#[cfg(any(test, feature = "fuzzing"))]
pub fn match_path(path: &str) -> Option<Route> {
    candidates(path).into_iter().next()
}

/// Every route a path can stand for, the preferred first. Only paths below
/// `/collections/` can have more than one: a collection the Go version
/// stored may have a segment `functions` (docs/api.md §2.2), so
/// `/collections/x/functions/functions/f` is the function `f` of `x/functions`
/// (no function route of `x` matches), `/collections/x/functions` lists
/// the functions of `x` but, for a `DELETE`, deletes the collection
/// `x/functions`, and `/collections/x/env` is the env of `x` but, for a
/// `DELETE`, the collection `x/env` ([`route`] takes the first candidate
/// that allows the method).
pub fn candidates(path: &str) -> Vec<Route> {
    // The playground's paths are file names: kept exact (`/ui` ≠ `/ui/`).
    if path == "/ui" {
        return vec![Route::UiRedirect];
    }
    if let Some(file) = path.strip_prefix("/ui/") {
        return vec![Route::Ui(file.to_owned())];
    }
    let Some(trimmed) = path.strip_prefix('/') else {
        return Vec::new();
    };
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    // Each segment percent-decoded on its own: `ok%31` is `ok1`; an encoded
    // `/` stays inside its segment, where name validation refuses it.
    let decoded: Vec<String> = trimmed
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map_or_else(|_| s.to_owned(), |d| d.into_owned())
        })
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let single = match segments.as_slice() {
        ["healthz"] => Some(Route::Healthz),
        ["readyz"] => Some(Route::Readyz),
        ["metrics"] => Some(Route::Metrics),
        ["openapi.json"] => Some(Route::OpenApi),
        ["function-logs"] => Some(Route::Logs),
        ["function-logs", "query"] => Some(Route::LogsQuery),
        ["functions", rest @ ..] => function_route(None, rest),
        ["collections"] => Some(Route::Collections),
        ["collections", rest @ ..] => return collection_routes(rest),
        _ => None,
    };
    single.into_iter().collect()
}

/// The routes of `/collections/{segments}`: a function route split at each
/// segment `functions` in turn (the first split wins, as for paths of
/// today's grammar, which has no such segment in a collection), then the
/// collection's env or the collection itself.
fn collection_routes(segments: &[&str]) -> Vec<Route> {
    let mut out: Vec<Route> = segments
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == "functions")
        .filter_map(|(i, _)| function_route(Some(segments[..i].join("/")), &segments[i + 1..]))
        .collect();
    // A function route, where one matches, is the only meaning, except
    // `…/functions` (the functions of `x`, or the collection `x/functions`).
    if out.is_empty() || segments.last() == Some(&"functions") {
        match segments.split_last() {
            // The env of `x`; for a DELETE, the collection `x/env`.
            Some((&"env", before)) => {
                out.push(Route::CollectionEnv(before.join("/")));
                out.push(Route::Collection(segments.join("/")));
            }
            Some(_) => out.push(Route::Collection(segments.join("/"))),
            None => out.push(Route::Collections),
        }
    }
    out
}

fn function_route(cp: Option<String>, rest: &[&str]) -> Option<Route> {
    match rest {
        [] => Some(Route::Functions(cp)),
        [name] => Some(Route::Function(cp, (*name).to_owned())),
        [name, "versions"] => Some(Route::Versions(cp, (*name).to_owned())),
        [name, "invoke"] => Some(Route::Invoke(cp, (*name).to_owned())),
        [name, "pull"] => Some(Route::Pull(cp, (*name).to_owned())),
        _ => None,
    }
}

/// Matches method and path of the dispatcher: the first of [`candidates`]
/// that allows the method, or 404 (none) / 405 with `Allow` naming every
/// method some candidate allows (`PATCH /collections/x/env`: `PUT, DELETE`).
/// With the playground off, its paths are 404 like any unknown path.
pub fn route(method: &Method, path: &str, playground: Playground) -> Result<Route, ApiError> {
    let candidates: Vec<Route> = candidates(path)
        .into_iter()
        .filter(|r| playground == Playground::Served || !r.is_ui())
        .collect();
    if candidates.is_empty() {
        return Err(ApiError::not_found());
    }
    if let Some(r) = candidates.iter().find(|r| allows(r, method)) {
        return Ok(r.clone());
    }
    Err(method_not_allowed(method, &allowed_by_any(&candidates)))
}

/// Whether `route` answers `method` (HEAD wherever GET is).
fn allows(route: &Route, method: &Method) -> bool {
    route.allowed().contains(method) || (*method == Method::HEAD && route.allowed().contains(&Method::GET))
}

/// The methods any of `routes` allows, each once, in the order of the routes.
fn allowed_by_any(routes: &[Route]) -> Vec<Method> {
    let mut out: Vec<Method> = Vec::new();
    for m in routes.iter().flat_map(|r| r.allowed()) {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    out
}

/// Whether the dispatcher serves the playground (`LOWCODE_FAAS_UI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playground {
    /// `/ui/` serves the embedded files.
    Served,
    /// `/ui/` is 404.
    Off,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, want: Option<Route>) {
        assert_eq!(match_path(path), want, "path {path}");
    }

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn routing_table() {
        check("/healthz", Some(Route::Healthz));
        check("/openapi.json", Some(Route::OpenApi));
        check("/functions", Some(Route::Functions(None)));
        check("/functions/", Some(Route::Functions(None)));
        check("/functions/hello", Some(Route::Function(None, s("hello"))));
        check("/functions/hello/invoke", Some(Route::Invoke(None, s("hello"))));
        check("/functions/hello/pull", Some(Route::Pull(None, s("hello"))));
        check("/functions/hello/versions", Some(Route::Versions(None, s("hello"))));
        check("/functions/hello/other", None);
        check("/functions/ok%31/invoke", Some(Route::Invoke(None, s("ok1"))));
        check("/functions/a%2Fb", Some(Route::Function(None, s("a/b"))));
        check(
            "/collections/team%2Fapi/functions/f",
            Some(Route::Function(Some(s("team/api")), s("f"))),
        );
        check("/collections", Some(Route::Collections));
        check("/collections/env", Some(Route::CollectionEnv(s(""))));
        check("/collections/a/b/env", Some(Route::CollectionEnv(s("a/b"))));
        check("/collections/a/b", Some(Route::Collection(s("a/b"))));
        check("/collections/a/b/functions", Some(Route::Functions(Some(s("a/b")))));
        check(
            "/collections/a/b/functions/f",
            Some(Route::Function(Some(s("a/b")), s("f"))),
        );
        check(
            "/collections/a/functions/env",
            Some(Route::Function(Some(s("a")), s("env"))),
        );
        check(
            "/collections/a/functions/functions",
            Some(Route::Function(Some(s("a")), s("functions"))),
        );
        check(
            "/collections/a/b/c/functions/f/invoke",
            Some(Route::Invoke(Some(s("a/b/c")), s("f"))),
        );
        check("/collections/functions/f", Some(Route::Function(Some(s("")), s("f"))));
        check("/function-logs", Some(Route::Logs));
        check("/function-logs/query", Some(Route::LogsQuery));
        check("/ui", Some(Route::UiRedirect));
        check("/ui/", Some(Route::Ui(s(""))));
        check(
            "/ui/vendor/codemirror/lib/codemirror.js",
            Some(Route::Ui(s("vendor/codemirror/lib/codemirror.js"))),
        );
        check("/uix", None);
        check("/nope", None);
        check("/", None);
        check("", None);
    }

    #[test]
    fn collections_with_a_functions_segment_are_reachable() {
        // Stored by the Go version (docs/api.md §2.2): `x/functions`.
        check(
            "/collections/x/functions/functions/f",
            Some(Route::Function(Some(s("x/functions")), s("f"))),
        );
        check(
            "/collections/x/functions/functions/f/invoke",
            Some(Route::Invoke(Some(s("x/functions")), s("f"))),
        );
        // Listing stays the functions of `x`; a DELETE deletes `x/functions`.
        let at = |m: Method, p: &str| route(&m, p, Playground::Served).unwrap();
        assert_eq!(
            at(Method::GET, "/collections/x/functions"),
            Route::Functions(Some(s("x")))
        );
        assert_eq!(
            at(Method::DELETE, "/collections/x/functions"),
            Route::Collection(s("x/functions"))
        );
        assert_eq!(
            at(Method::DELETE, "/collections/functions"),
            Route::Collection(s("functions"))
        );
        assert_eq!(
            candidates("/collections/x/functions"),
            vec![Route::Functions(Some(s("x"))), Route::Collection(s("x/functions"))]
        );
        // Paths of today's grammar keep exactly one meaning.
        assert_eq!(
            candidates("/collections/a/functions/f"),
            vec![Route::Function(Some(s("a")), s("f"))]
        );
        assert_eq!(
            candidates("/collections/a/functions/f/g/h"),
            vec![Route::Collection(s("a/functions/f/g/h"))]
        );
        assert_eq!(
            at(Method::PUT, "/collections/a/env/env"),
            Route::CollectionEnv(s("a/env"))
        );
        assert_eq!(at(Method::PUT, "/collections/a/env"), Route::CollectionEnv(s("a")));
        assert_eq!(at(Method::DELETE, "/collections/a/env"), Route::Collection(s("a/env")));
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let route = |m: &Method, p: &str| route(m, p, Playground::Served);
        let err = route(&Method::DELETE, "/functions").unwrap_err();
        assert_eq!(err.status.as_u16(), 405);
        assert_eq!(err.allow.as_deref(), Some("GET, POST"));
        assert_eq!(route(&Method::GET, "/nope").unwrap_err().status.as_u16(), 404);
        // No candidate allows the method: `Allow` names every candidate's methods.
        let allow = |m: Method, p: &str| route(&m, p).unwrap_err().allow;
        assert_eq!(
            allow(Method::PATCH, "/collections/x/env").as_deref(),
            Some("PUT, DELETE")
        );
        assert_eq!(
            allow(Method::PUT, "/collections/x/functions").as_deref(),
            Some("GET, POST, DELETE")
        );
        assert_eq!(allow(Method::POST, "/collections/x").as_deref(), Some("DELETE"));
        assert_eq!(
            route(&Method::POST, "/functions/f/invoke").unwrap(),
            Route::Invoke(None, s("f"))
        );
    }

    #[test]
    fn playground_routes_answer_get_and_head_only_and_vanish_when_off() {
        assert_eq!(
            route(&Method::HEAD, "/ui/app.js", Playground::Served).unwrap(),
            Route::Ui(s("app.js"))
        );
        let err = route(&Method::POST, "/ui/", Playground::Served).unwrap_err();
        assert_eq!((err.status.as_u16(), err.allow.as_deref()), (405, Some("GET, HEAD")));
        for path in ["/ui", "/ui/", "/ui/app.js"] {
            let err = route(&Method::GET, path, Playground::Off).unwrap_err();
            assert_eq!(err.status.as_u16(), 404, "{path}");
        }
        assert!(Route::Ui(s("")).is_public() && Route::UiRedirect.is_public());
    }

    mod properties {
        use faas_ports::{CollectionPath, FunctionName, RESERVED_SEGMENTS};
        use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
        use proptest::prelude::*;

        use super::super::*;

        fn segment() -> impl Strategy<Value = String> {
            "[a-z0-9_-]{1,8}".prop_filter("not reserved", |s| !RESERVED_SEGMENTS.contains(&s.as_str()))
        }

        /// Each segment encoded fully, minimally, or not at all.
        fn enc(segment: &str, how: u8) -> String {
            const SOME: &AsciiSet = &CONTROLS.add(b'-').add(b'_');
            match how % 3 {
                0 => segment.to_owned(),
                1 => utf8_percent_encode(segment, SOME).to_string(),
                _ => utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string(),
            }
        }

        proptest! {
            #[test]
            fn valid_parts_route_back_however_they_are_encoded(
                cp in proptest::collection::vec(segment(), 0..5),
                name in "[A-Za-z][A-Za-z0-9_-]{0,20}",
                tail in proptest::sample::select(vec!["", "/versions", "/invoke", "/pull"]),
                how: u8,
                slash: bool,
            ) {
                prop_assert!(FunctionName::parse(&name).is_ok());
                let prefix: String = cp.iter().map(|s| format!("/{}", enc(s, how))).collect();
                let path = if cp.is_empty() {
                    format!("/functions/{}{tail}", enc(&name, how / 3))
                } else {
                    format!("/collections{prefix}/functions/{}{tail}", enc(&name, how / 3))
                };
                let path = if slash { format!("{path}/") } else { path };
                let cp = (!cp.is_empty()).then(|| cp.join("/"));
                let want = match tail {
                    "" => Route::Function(cp.clone(), name.clone()),
                    "/versions" => Route::Versions(cp.clone(), name.clone()),
                    "/invoke" => Route::Invoke(cp.clone(), name.clone()),
                    _ => Route::Pull(cp.clone(), name.clone()),
                };
                prop_assert_eq!(match_path(&path), Some(want));
                if let Some(cp) = cp {
                    prop_assert!(CollectionPath::parse(&cp).is_ok());
                    prop_assert_eq!(match_path(&format!("/collections{prefix}")), Some(Route::Collection(cp.clone())));
                    prop_assert_eq!(match_path(&format!("/collections{prefix}/env")), Some(Route::CollectionEnv(cp)));
                }
            }

            #[test]
            fn any_path_is_a_route_404_or_405(path in any_path(), m in 0usize..6) {
                let method = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::PATCH][m].clone();
                let all = candidates(&path);
                prop_assert_eq!(match_path(&path), all.first().cloned());
                match route(&method, &path, Playground::Served) {
                    Err(err) if all.is_empty() => prop_assert_eq!(err.status.as_u16(), 404),
                    Ok(got) => {
                        // The first candidate that allows the method.
                        let first = all.iter().find(|r| allows(r, &method));
                        prop_assert_eq!(Some(&got), first, "{:?} of {:?}", path, all);
                    }
                    Err(err) => {
                        prop_assert_eq!(err.status.as_u16(), 405);
                        prop_assert!(all.iter().all(|r| !allows(r, &method)), "{:?} {:?}", path, all);
                        let mut want: Vec<&str> = Vec::new();
                        for m in all.iter().flat_map(|r| r.allowed()) {
                            if !want.contains(&m.as_str()) {
                                want.push(m.as_str());
                            }
                        }
                        prop_assert_eq!(err.allow, Some(want.join(", ")));
                    }
                }
            }
        }

        /// Any printable path, or one of route words (`collections`,
        /// `functions`, `env`, …) where a path can have several candidates.
        fn any_path() -> impl Strategy<Value = String> {
            let word = proptest::sample::select(vec![
                "collections",
                "functions",
                "env",
                "x",
                "a",
                "invoke",
                "versions",
                "pull",
                "ui",
                "",
            ]);
            let words = proptest::collection::vec(word, 0..7);
            prop_oneof![
                "/?[ -~]{0,40}",
                (words.clone(), any::<bool>()).prop_map(|(w, slash)| {
                    let p = format!("/collections/{}", w.join("/"));
                    if slash {
                        format!("{p}/")
                    } else {
                        p
                    }
                }),
                words.prop_map(|w| format!("/{}", w.join("/"))),
            ]
        }
    }
}
