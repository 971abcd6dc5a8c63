//! The dispatcher's OpenAPI 3.1 document (`docs/openapi.json`), embedded
//! and served at `GET /openapi.json` (public, like `/healthz`). docs/api.md
//! is the contract in prose; this document is its machine-readable form,
//! checked here against the router and the error codes, and against the
//! running server by Schemathesis (`scripts/schemathesis.sh`).

/// `docs/openapi.json`, byte for byte.
pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use faas_http::router::RouteSpec;
    use serde_json::Value;
    use warp::http::Method;

    use super::DOCUMENT;
    use crate::router::{self, Playground, Route};

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).unwrap()
    }

    /// Every (method, path template) of the document.
    fn operations(doc: &Value) -> Vec<(Method, String)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) {
                    out.push((m, path.clone()));
                }
            }
        }
        out
    }

    /// A path template with sample values.
    fn instantiate(template: &str) -> String {
        template
            .replace("{cp}", "team/api")
            .replace("{name}", "hello")
            .replace("{file}", "app.js")
    }

    /// One route of every kind, each with the methods it answers. The
    /// `match` has no wildcard: a new route does not compile until it is
    /// listed here, and then the test wants it in the document.
    fn every_route() -> Vec<Route> {
        let s = |x: &str| x.to_owned();
        let all = vec![
            Route::Healthz,
            Route::Readyz,
            Route::Metrics,
            Route::OpenApi,
            Route::Collections,
            Route::CollectionEnv(s("")),
            Route::CollectionEnv(s("team/api")),
            Route::Collection(s("team/api")),
            Route::Functions(None),
            Route::Functions(Some(s("team/api"))),
            Route::Function(None, s("hello")),
            Route::Function(Some(s("team/api")), s("hello")),
            Route::Versions(None, s("hello")),
            Route::Versions(Some(s("team/api")), s("hello")),
            Route::Invoke(None, s("hello")),
            Route::Invoke(Some(s("team/api")), s("hello")),
            Route::Pull(None, s("hello")),
            Route::Pull(Some(s("team/api")), s("hello")),
            Route::LogsQuery,
            Route::Logs,
            Route::UiRedirect,
            Route::Ui(s("")),
            Route::Ui(s("app.js")),
        ];
        for route in &all {
            match route {
                Route::Healthz
                | Route::Readyz
                | Route::Metrics
                | Route::OpenApi
                | Route::Collections
                | Route::CollectionEnv(_)
                | Route::Collection(_)
                | Route::Functions(_)
                | Route::Function(..)
                | Route::Versions(..)
                | Route::Invoke(..)
                | Route::Pull(..)
                | Route::LogsQuery
                | Route::Logs
                | Route::UiRedirect
                | Route::Ui(_) => {}
            }
        }
        all
    }

    #[test]
    fn is_openapi_3_1() {
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    }

    #[test]
    fn every_operation_of_the_document_is_a_route() {
        for (method, template) in operations(&document()) {
            let path = instantiate(&template);
            let routed = router::route(&method, &path, Playground::Served);
            assert!(
                routed.is_ok(),
                "{method} {template} ({path}) is not a route: {routed:?}"
            );
        }
    }

    #[test]
    fn every_route_and_method_is_in_the_document() {
        let documented: Vec<(String, Route)> = operations(&document())
            .into_iter()
            .filter_map(|(method, template)| {
                let route = router::route(&method, &instantiate(&template), Playground::Served).ok()?;
                Some((method.to_string(), route))
            })
            .collect();
        for route in every_route() {
            for method in route.allowed() {
                // HEAD is GET without a body (docs/api.md §1.7): the GET operation documents it.
                let method = if *method == Method::HEAD {
                    Method::GET
                } else {
                    method.clone()
                };
                assert!(
                    documented.contains(&(method.to_string(), route.clone())),
                    "{method} of {route:?} is missing from docs/openapi.json"
                );
            }
        }
    }

    #[test]
    fn public_operations_need_no_token_and_the_others_do() {
        let doc = document();
        for (method, template) in operations(&doc) {
            let route = router::route(&method, &instantiate(&template), Playground::Served).unwrap();
            let op = &doc["paths"][&template][method.as_str().to_lowercase()];
            let open = op["security"].as_array().is_some_and(Vec::is_empty);
            assert_eq!(open, route.is_public(), "{method} {template}");
        }
    }

    /// `"CODE"` literals where codes are raised: `=> "CODE"` in the error
    /// enums' `code()` and `ApiError::new(status, "CODE", …)` at the edge.
    fn codes_in_source() -> BTreeSet<String> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut files = vec![
            format!("{root}/faas-ports/src/error.rs"),
            format!("{root}/faas-domain/src/error.rs"),
        ];
        for dir in ["faas-http/src", "faas-server/src", "faas-worker/src"] {
            collect_rs(&format!("{root}/{dir}"), &mut files);
        }
        let mut codes = BTreeSet::new();
        for file in files {
            // Comments (like this function's own doc) are not code.
            let text: String = std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let is_enum = file.ends_with("faas-ports/src/error.rs") || file.ends_with("faas-domain/src/error.rs");
            let mut rest = text.as_str();
            while let Some(at) = rest.find("ApiError::new(") {
                rest = &rest[at + "ApiError::new(".len()..];
                // The second argument, when it is a literal.
                let Some(comma) = rest.find(',') else { break };
                let arg = rest[comma + 1..].trim_start();
                if let Some(lit) = arg.strip_prefix('"') {
                    let code: String = lit.chars().take_while(|c| *c != '"').collect();
                    codes.insert(code);
                }
            }
            if is_enum {
                for line in text.lines() {
                    if let Some((_, lit)) = line.split_once("=> \"") {
                        let code: String = lit.chars().take_while(|c| *c != '"').collect();
                        if code.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                            codes.insert(code);
                        }
                    }
                }
            }
        }
        codes
    }

    fn collect_rs(dir: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect_rs(path.to_str().unwrap(), out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.to_string_lossy().into_owned());
            }
        }
    }

    fn enum_of(schema: &Value) -> BTreeSet<String> {
        schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// The HTTP codes of docs/api.md §10 (the error code index).
    fn codes_in_the_contract() -> BTreeSet<String> {
        let api = include_str!("../../docs/api.md");
        let index = &api[api.find("## 10. Error code index").unwrap()..];
        index
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let status = cells.get(1)?;
                (status.len() == 3 && status.chars().all(|c| c.is_ascii_digit()))
                    .then(|| cells.get(2)?.trim_matches('`').to_owned().into())
                    .flatten()
            })
            .collect()
    }

    #[test]
    fn every_error_code_is_in_the_document() {
        let doc = document();
        let http = enum_of(&doc["components"]["schemas"]["Error"]["properties"]["code"]);
        let run = enum_of(&doc["components"]["schemas"]["RunResult"]["properties"]["error_code"]);
        // The run codes, exactly.
        let all_run: BTreeSet<String> = faas_ports::ErrorCode::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        assert_eq!(run, all_run, "RunResult.error_code");
        // The HTTP codes: exactly the index of docs/api.md.
        assert_eq!(http, codes_in_the_contract(), "Error.code vs docs/api.md §10");
        // And every code the source raises is one of them.
        let source = codes_in_source();
        assert!(source.len() > 30, "the scan finds the codes: {source:?}");
        for code in source {
            assert!(
                http.contains(&code) || run.contains(&code),
                "{code} is raised in the source but missing from docs/openapi.json"
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = DOCUMENT;
        let mut rest = text;
        while let Some(at) = rest.find("\"$ref\": \"#/") {
            rest = &rest[at + "\"$ref\": \"#/".len()..];
            let target: String = rest.chars().take_while(|c| *c != '"').collect();
            let pointer = format!("/{target}");
            assert!(doc.pointer(&pointer).is_some(), "dangling $ref #/{target}");
        }
    }
}
