//! What browsers get (issues #12, #13): the playground at `/ui/`, the
//! cross-site rule, CORS for configured origins, the JSON media type, and
//! `include_logs` on invoke, `/v1/run` and the proxy.

use faas_tests::{spawn_app, spawn_worker, TestApp};
use serde_json::{json, Value};

use crate::dispatcher::HELLO;

const LOGGER: &str = r#"export async function handler(input) {
  console.log("hello", input.n);
  console.info("info");
  console.debug("debug");
  console.warn("careful");
  console.error("bad");
  return { ok: true };
}"#;

const CHATTY: &str = r#"export async function handler() {
  for (let i = 0; i < 1500; i++) console.log("line", i);
  return { ok: true };
}"#;

/// `GET` with extra headers.
async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(format!("{}{path}", app.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// A raw `POST` with headers and a body.
async fn post_with(app: &TestApp, url: &str, headers: &[(&str, &str)], body: &str) -> faas_tests::Reply {
    let mut req = app.client.post(url.to_owned()).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.reply(req).await
}

fn own_origin(app: &TestApp) -> String {
    app.base.clone()
}

#[tokio::test]
async fn the_playground_is_served_with_its_headers() {
    let app = spawn_app(&[("LOWCODE_FAAS_API_TOKEN", "t0k")]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(format!("{}/ui", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 308, "/ui redirects");
    assert_eq!(r.headers()["location"], "ui/");

    let csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
    for (path, ctype, cache) in [
        ("/ui/", "text/html; charset=utf-8", "no-cache"),
        ("/ui/index.html", "text/html; charset=utf-8", "no-cache"),
        ("/ui/app.js", "text/javascript; charset=utf-8", "no-cache"),
        ("/ui/api.js", "text/javascript; charset=utf-8", "no-cache"),
        ("/ui/style.css", "text/css; charset=utf-8", "no-cache"),
        (
            "/ui/vendor/codemirror/lib/codemirror.js",
            "text/javascript; charset=utf-8",
            "public, max-age=86400",
        ),
        (
            "/ui/vendor/codemirror/lib/codemirror.css",
            "text/css; charset=utf-8",
            "public, max-age=86400",
        ),
    ] {
        // No token needed for the static files.
        let r = get_with(&app, path, &[]).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["content-type"], ctype, "{path}");
        assert_eq!(h["cache-control"], cache, "{path}");
        assert_eq!(h["content-security-policy"], csp, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(!r.bytes().await.unwrap().is_empty(), "{path}");
    }
    let page = get_with(&app, "/ui/", &[]).await.text().await.unwrap();
    assert!(page.contains("app.js"), "the page: {page}");

    let head = client.head(format!("{}/ui/app.js", app.base)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(head.bytes().await.unwrap().is_empty(), "HEAD has no body");

    for path in [
        "/ui/nope.js",
        "/ui/README.md",
        "/ui/vendor/",
        "/ui/vendor/codemirror",
        "/ui/../Cargo.toml",
        "/ui/%2e%2e/Cargo.toml",
        "/ui/..%2fCargo.toml",
        "/ui/vendor/../../Cargo.toml",
        "/ui//etc/passwd",
    ] {
        let r = app.get(path).await;
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{path}");
    }
    let r = app.post("/ui/", json!({})).await;
    assert_eq!(r.status, 405, "GET and HEAD only");
    assert_eq!(r.headers["allow"], "GET, HEAD");
    // The API itself still wants the token.
    assert_eq!(app.get("/functions").await.status, 401);
}

#[tokio::test]
async fn the_playground_can_be_turned_off() {
    let app = spawn_app(&[("LOWCODE_FAAS_UI", "false")]).await;
    for path in ["/ui", "/ui/", "/ui/app.js"] {
        let r = app.get(path).await;
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{path}");
    }
}

#[tokio::test]
async fn the_worker_never_serves_the_playground() {
    let data = tempfile::tempdir().unwrap();
    let (url, _worker) = spawn_worker(data.path(), &[]).await;
    for path in ["/ui", "/ui/", "/ui/app.js"] {
        let r = reqwest::get(format!("{url}{path}")).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn cross_site_writes_and_invokes_are_refused_before_any_work() {
    let app = spawn_app(&[]).await;
    app.create_function("", "hello", HELLO, json!({})).await;
    let invoke = format!("{}/functions/hello/invoke", app.base);
    let create = format!("{}/functions", app.base);

    // A cross-site text/plain POST (a form or fetch no-cors) is refused.
    let r = post_with(
        &app,
        &invoke,
        &[
            ("origin", "http://evil.example"),
            ("content-type", "text/plain"),
            ("sec-fetch-site", "cross-site"),
        ],
        r#"{"input":{}}"#,
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "CROSS_ORIGIN_FORBIDDEN"), "{}", r.text);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    // Sec-Fetch-Site alone, and Origin alone, are enough.
    let r = post_with(&app, &invoke, &[("sec-fetch-site", "cross-site")], "{}").await;
    assert_eq!((r.status, r.code()), (403, "CROSS_ORIGIN_FORBIDDEN"));
    let r = post_with(
        &app,
        &create,
        &[("origin", "http://evil.example"), ("content-type", "application/json")],
        r#"{"name":"evil","source_code":"x"}"#,
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "CROSS_ORIGIN_FORBIDDEN"));
    assert_eq!(app.get("/functions/evil").await.status, 404, "nothing was created");
    let r = app
        .reply(
            app.client
                .delete(format!("{}/functions/hello", app.base))
                .header("origin", "null"),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "CROSS_ORIGIN_FORBIDDEN"));
    // Reads are not refused (a browser cannot read them cross-site without CORS).
    let r = get_with(&app, "/functions", &[("origin", "http://evil.example")]).await;
    assert_eq!(r.status(), 200);

    // Same origin (the playground) works.
    let own = own_origin(&app);
    let r = post_with(
        &app,
        &invoke,
        &[
            ("origin", own.as_str()),
            ("content-type", "application/json"),
            ("sec-fetch-site", "same-origin"),
        ],
        r#"{"input":{"name":"Ada"}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["output"]["data"]["message"], "Hello, Ada!");
    // A text/plain body from the same origin is still not JSON.
    let r = post_with(
        &app,
        &invoke,
        &[("origin", own.as_str()), ("content-type", "text/plain")],
        "{}",
    )
    .await;
    assert_eq!((r.status, r.code()), (415, "UNSUPPORTED_MEDIA_TYPE"));
}

#[tokio::test]
async fn curl_like_requests_work_and_other_media_types_are_415() {
    let app = spawn_app(&[]).await;
    app.create_function("", "hello", HELLO, json!({})).await;
    let invoke = format!("{}/functions/hello/invoke", app.base);
    // curl -d sends application/x-www-form-urlencoded; curl -H sends JSON; none at all.
    for ctype in [
        Some("application/x-www-form-urlencoded"),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = ctype.map(|c| ("content-type", c)).into_iter().collect();
        let r = post_with(&app, &invoke, &headers, r#"{"input":{"name":"curl"}}"#).await;
        assert_eq!(r.status, 200, "{ctype:?}: {}", r.text);
        assert_eq!(r.body["output"]["data"]["message"], "Hello, curl!");
    }
    for ctype in ["text/plain", "multipart/form-data; boundary=x", "application/xml"] {
        let r = post_with(&app, &invoke, &[("content-type", ctype)], "{}").await;
        assert_eq!((r.status, r.code()), (415, "UNSUPPORTED_MEDIA_TYPE"), "{ctype}");
    }
    // A form type with an Origin is what a cross-site HTML form sends.
    let own = own_origin(&app);
    let r = post_with(
        &app,
        &invoke,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", own.as_str()),
        ],
        "{}",
    )
    .await;
    assert_eq!((r.status, r.code()), (415, "UNSUPPORTED_MEDIA_TYPE"));
}

#[tokio::test]
async fn cors_origins_get_cors_headers_and_preflights() {
    let app = spawn_app(&[
        ("LOWCODE_FAAS_CORS_ORIGINS", "https://app.example"),
        ("LOWCODE_FAAS_API_TOKEN", "t0k"),
    ])
    .await;
    let options = |origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/functions/hello/invoke", app.base))
            .header("origin", origin.to_owned())
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
    };
    // Preflight: answered before auth (no token).
    let r = app.reply(options("https://app.example")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.headers["access-control-allow-origin"], "https://app.example");
    assert_eq!(
        r.headers["access-control-allow-headers"],
        "authorization, content-type, x-request-id"
    );
    assert!(r.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(r.headers.contains_key("access-control-max-age"));
    assert_eq!(r.headers["vary"], "Origin");
    // Another origin: refused, no CORS headers.
    let r = app.reply(options("https://evil.example")).await;
    assert_eq!((r.status, r.code()), (403, "CROSS_ORIGIN_FORBIDDEN"));
    assert!(r.headers.get("access-control-allow-origin").is_none());

    // The allowed origin's real request (cross-site by definition) works.
    let r = app
        .reply(
            app.client
                .post(format!("{}/functions", app.base))
                .bearer_auth("t0k")
                .header("origin", "https://app.example")
                .header("sec-fetch-site", "cross-site")
                .json(&json!({"name": "hello", "source_code": HELLO})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.headers["access-control-allow-origin"], "https://app.example");
    assert_eq!(r.headers["vary"], "Origin");
    // Its errors carry the headers too (so the page can read them).
    let r = app
        .reply(
            app.client
                .get(format!("{}/functions", app.base))
                .header("origin", "https://app.example"),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["access-control-allow-origin"], "https://app.example");
    // A disallowed origin: refused, no CORS headers.
    let r = app
        .reply(
            app.client
                .post(format!("{}/functions/hello/invoke", app.base))
                .bearer_auth("t0k")
                .header("origin", "https://evil.example")
                .json(&json!({})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "CROSS_ORIGIN_FORBIDDEN"));
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let r = get_with(&app, "/healthz", &[("origin", "https://evil.example")]).await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_cors_origins_no_cors_headers_and_preflights_are_refused() {
    let app = spawn_app(&[]).await;
    let r = app
        .reply(
            app.client
                .request(reqwest::Method::OPTIONS, format!("{}/functions", app.base))
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "CROSS_ORIGIN_FORBIDDEN"));
    let r = get_with(&app, "/functions", &[("origin", "https://app.example")]).await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(r.headers().get("vary").is_none());
}

fn check_logs(result: &Value) {
    assert_eq!(result["status"], "success", "{result}");
    let logs = result["logs"].as_array().expect("logs");
    let got: Vec<(&str, &str, &str)> = logs
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap(),
                l["level"].as_str().unwrap(),
                l["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("stdout", "log", "hello 7"),
            ("stdout", "info", "info"),
            ("stdout", "debug", "debug"),
            ("stderr", "warn", "careful"),
            ("stderr", "error", "bad"),
        ]
    );
    let time = logs[0]["time"].as_str().unwrap();
    assert!(time.len() >= 20 && time.contains('T'), "RFC 3339: {time}");
    assert_eq!(result["logs_truncated"], false);
}

#[tokio::test]
async fn include_logs_returns_the_runs_logs_without_a_sink() {
    let app = spawn_app(&[]).await;
    app.create_function("", "logger", LOGGER, json!({})).await;
    app.create_function("", "chatty", CHATTY, json!({})).await;
    let r = app
        .post(
            "/functions/logger/invoke",
            json!({"input": {"n": 7}, "include_logs": true}),
        )
        .await;
    check_logs(&r.body);
    let r = app
        .post("/functions/logger/invoke?include_logs=true", json!({"input": {"n": 7}}))
        .await;
    check_logs(&r.body);
    // Without it, nothing changes.
    for path in [
        "/functions/logger/invoke",
        "/functions/logger/invoke?include_logs=false",
    ] {
        let r = app.post(path, json!({"input": {"n": 7}})).await;
        assert_eq!(r.status, 200);
        assert!(
            r.body.get("logs").is_none() && r.body.get("logs_truncated").is_none(),
            "{}",
            r.text
        );
    }
    let r = app
        .post(
            "/functions/logger/invoke",
            json!({"input": {"n": 7}, "include_logs": false}),
        )
        .await;
    assert!(r.body.get("logs").is_none());
    let r = app.post("/functions/logger/invoke?include_logs=maybe", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_REQUEST"));
    let r = app
        .post("/functions/logger/invoke", json!({"include_logs": "yes"}))
        .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_JSON"));
    // Capped at 1000 entries.
    let r = app
        .post("/functions/chatty/invoke", json!({"include_logs": true}))
        .await;
    assert_eq!(r.body["logs"].as_array().unwrap().len(), 1000, "{}", &r.text[..200]);
    assert_eq!(r.body["logs_truncated"], true);
}

#[tokio::test]
async fn include_logs_works_in_every_execution_mode_of_the_process_runtime() {
    for mode in ["cold", "prewarm", "warm"] {
        let app = spawn_app(&[("LOWCODE_FAAS_EXECUTION_MODE", mode)]).await;
        app.create_function("", "logger", LOGGER, json!({})).await;
        // Twice: in warm mode the second run reuses the first one's runner;
        // a run without logs in between must not change what the next one returns.
        for include in [true, false, true] {
            let r = app
                .post(
                    "/functions/logger/invoke",
                    json!({"input": {"n": 7}, "include_logs": include}),
                )
                .await;
            if include {
                check_logs(&r.body);
            } else {
                assert!(r.body.get("logs").is_none(), "{mode}: {}", r.text);
            }
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn include_logs_on_the_worker_and_through_the_proxy() {
    let data = tempfile::tempdir().unwrap();
    let storage = faas_tests::storage_vars().await;
    let mut vars: Vec<(&str, &str)> = storage.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (worker_url, _worker) = spawn_worker(data.path(), &vars).await;
    vars.push(("LOWCODE_FAAS_WORKER_URL", &worker_url));
    let app = faas_tests::spawn_app_on(data, &vars).await;
    app.create_function("", "logger", LOGGER, json!({})).await;
    // Straight to the worker, body and query.
    let client = reqwest::Client::new();
    for (url, body) in [
        (
            format!("{worker_url}/v1/run"),
            json!({"function_name": "logger", "input": {"n": 7}, "include_logs": true}),
        ),
        (
            format!("{worker_url}/v1/run?include_logs=true"),
            json!({"function_name": "logger", "input": {"n": 7}}),
        ),
    ] {
        let r = client.post(url).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        check_logs(&r.json().await.unwrap());
    }
    let r: Value = client
        .post(format!("{worker_url}/v1/run"))
        .json(&json!({"function_name": "logger"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r.get("logs").is_none(), "{r}");
    // Through the dispatcher in proxy mode.
    let r = app
        .post(
            "/functions/logger/invoke",
            json!({"input": {"n": 7}, "include_logs": true}),
        )
        .await;
    check_logs(&r.body);
    let r = app
        .post("/functions/logger/invoke?include_logs=1", json!({"input": {"n": 7}}))
        .await;
    check_logs(&r.body);
    let r = app.post("/functions/logger/invoke", json!({"input": {"n": 7}})).await;
    assert!(r.body.get("logs").is_none());
}

#[tokio::test]
async fn the_worker_refuses_browsers() {
    let data = tempfile::tempdir().unwrap();
    let (url, _worker) = spawn_worker(data.path(), &[]).await;
    let client = reqwest::Client::new();
    let host = url.trim_start_matches("http://").to_owned();
    for headers in [
        vec![("origin", format!("http://{host}"))],
        vec![("origin", "http://evil.example".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
    ] {
        let mut req = client
            .post(format!("{url}/v1/run"))
            .header("content-type", "text/plain")
            .body(r#"{"function_name":"x"}"#);
        for (k, v) in &headers {
            req = req.header(*k, v.as_str());
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{headers:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "CROSS_ORIGIN_FORBIDDEN");
    }
    // Without Origin (the dispatcher's hop) it answers as before.
    let r = client
        .post(format!("{url}/v1/run"))
        .json(&json!({"function_name": "missing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
