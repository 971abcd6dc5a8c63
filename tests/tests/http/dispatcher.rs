//! The dispatcher API over real HTTP, with files storage and the process
//! runtime (real `node`).

use faas_tests::{db_s3_mode, spawn_app, spawn_app_on, storage_vars, TestApp};
use serde_json::{json, Value};

pub const ECHO: &str = r#"export async function handler(input, context) {
  console.log("echo", 1);
  return { ok: true, data: { input, context, env: { ...process.env } } };
}"#;

pub const HELLO: &str = r#"export async function handler(input) {
  return { ok: true, data: { message: `Hello, ${input.name ?? "world"}!` } };
}"#;

pub async fn invoke(app: &TestApp, path: &str, body: Value) -> Value {
    let r = app.post(path, body).await;
    assert_eq!(r.status, 200, "invoke {path}: {}", r.text);
    r.body
}

fn chunked(chunks: Vec<Vec<u8>>) -> reqwest::Body {
    reqwest::Body::wrap_stream(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, std::io::Error>),
    ))
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let app = spawn_app(&[]).await;
    let r = app.get("/healthz").await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
    let r = app.get("/readyz").await;
    assert_eq!((r.status, &r.body["status"]), (200, &json!("ready")), "{}", r.text);
    assert_eq!(r.body["runtime_status"]["execution_mode"], "prewarm", "{}", r.text);
    assert_eq!(r.body["runtime_status"]["pool"]["prewarm_target"], 4, "{}", r.text);
    // Once the pool holds a runner, an invoke takes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.get("/readyz").await.body["runtime_status"]["pool"]["prewarm_idle"] == 0 {
        assert!(std::time::Instant::now() < deadline, "the pool never filled");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.create_function("", "hello", HELLO, json!({})).await;
    let result = invoke(&app, "/functions/hello/invoke", json!({})).await;
    assert_eq!(result["start_kind"], "prewarm", "{result}");
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    for needle in [
        "lowcode_faas_http_requests_total{method=\"POST\",route=\"/functions\",status=\"201\"} 1",
        "lowcode_faas_runs_total{outcome=\"success\"} 1",
        "lowcode_faas_run_duration_seconds_count{status=\"success\"} 1",
        "lowcode_faas_starts_total{kind=\"prewarm\"} 1",
        "lowcode_faas_starts_total{kind=\"cold\"} 0",
        "lowcode_faas_pool_events_total{event=\"hit\"} 1",
        "lowcode_faas_pool_runners{state=\"prewarm_target\"} 4",
        "lowcode_faas_runs_in_flight 0",
        "lowcode_faas_runs_queued 0",
    ] {
        assert!(r.text.contains(needle), "metrics lack {needle}:\n{}", r.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn readyz_reports_the_failing_runtime_and_invokes_say_why() {
    let app = spawn_app(&[("LOWCODE_FAAS_NODE_BIN", "/nonexistent/node")]).await;
    let r = app.get("/readyz").await;
    assert_eq!((r.status, r.code()), (503, "NOT_READY"));
    assert!(r.body["components"]["runtime"].is_string(), "{}", r.text);
    app.create_function("", "f", HELLO, json!({})).await;
    let res = invoke(&app, "/functions/f/invoke", json!({})).await;
    assert_eq!(res["status"], "failed");
    assert_eq!(res["error_code"], "RUNTIME_UNAVAILABLE");
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_request_ids() {
    let app = spawn_app(&[]).await;
    let r = app.get("/nope").await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    assert!(r.headers.contains_key("x-request-id"));
    let r = app.delete("/functions").await;
    assert_eq!((r.status, r.code()), (405, "METHOD_NOT_ALLOWED"));
    assert_eq!(r.headers["allow"], "GET, POST");
    let r = app.get("/functions/f/invoke").await;
    assert_eq!((r.status, r.headers["allow"].to_str().unwrap()), (405, "POST"));
    let r = app
        .reply(
            app.client
                .get(format!("{}/healthz", app.base))
                .header("x-request-id", "req-42"),
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "req-42");
}

#[tokio::test]
async fn malformed_bodies_and_limits() {
    let app = spawn_app(&[
        ("LOWCODE_FAAS_MAX_BODY_BYTES", "1000"),
        ("LOWCODE_FAAS_MAX_SOURCE_BYTES", "200"),
    ])
    .await;
    let post_raw = |body: &'static str| {
        app.client
            .post(format!("{}/functions", app.base))
            .header("content-type", "application/json")
            .body(body)
    };
    let r = app.reply(post_raw("{not json")).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_JSON"));
    let r = app.reply(post_raw("")).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "INVALID_JSON"),
        "empty body is an error outside invoke"
    );
    let r = app.reply(post_raw("[1,2]")).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_JSON"));
    let r = app.post("/functions", json!({"name": 5, "source_code": "x"})).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_JSON"), "wrong field type");

    let r = app
        .post("/functions", json!({"name": "f", "source_code": "x".repeat(5000)}))
        .await;
    assert_eq!((r.status, r.code()), (413, "PAYLOAD_TOO_LARGE"));
    let r = app
        .reply(
            app.client
                .post(format!("{}/functions", app.base))
                .body(chunked(vec![vec![b' '; 600], vec![b' '; 600]])),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (413, "PAYLOAD_TOO_LARGE"),
        "chunked body over the cap"
    );

    let r = app
        .post("/functions", json!({"name": "f", "source_code": "y".repeat(300)}))
        .await;
    assert_eq!((r.status, r.code()), (413, "SOURCE_TOO_LARGE"));
}

#[tokio::test]
async fn api_token_guards_everything_but_health() {
    let app = spawn_app(&[("LOWCODE_FAAS_API_TOKEN", "t0ken")]).await;
    assert_eq!(app.get("/healthz").await.status, 200);
    assert_eq!(app.get("/readyz").await.status, 200);
    let r = app.get("/functions").await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    assert_eq!(app.get("/metrics").await.status, 401);
    let wrong = app
        .reply(app.client.get(format!("{}/functions", app.base)).bearer_auth("nope"))
        .await;
    assert_eq!(wrong.status, 401);
    let ok = app
        .reply(app.client.get(format!("{}/functions", app.base)).bearer_auth("t0ken"))
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn collections_lifecycle() {
    let app = spawn_app(&[]).await;
    let r = app.post("/collections", json!({"path": "/Team/API/"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["path"], "team/api");
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));
    let r = app.post("/collections", json!({"path": "team/api"})).await;
    assert_eq!((r.status, r.code()), (409, "COLLECTION_EXISTS"));
    for bad in ["", "/", "a/functions", "a/../b", "a b"] {
        let r = app.post("/collections", json!({"path": bad})).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_COLLECTION_PATH"), "path {bad:?}");
    }
    let r = app.post("/collections", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_COLLECTION_PATH"));
    let r = app
        .post("/collections", json!({"path": "x", "env": {"PORT": "1"}}))
        .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_ENV"));
    assert_eq!(app.post("/collections", json!({"path": "other"})).await.status, 201);
    assert_eq!(app.post("/collections", json!({"path": "teams"})).await.status, 201);

    let paths = |r: &faas_tests::Reply| -> Vec<String> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["path"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = app.get("/collections").await;
    assert_eq!(paths(&r), vec!["other", "team", "team/api", "teams"]);
    let r = app.get("/collections?prefix=team").await;
    assert_eq!(paths(&r), vec!["team", "team/api"]);

    let r = app.put("/collections/team/env", json!({"env": {"A": "1"}})).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
    let r = app.put("/collections/env", json!({"env": {"ROOT": "1"}})).await;
    assert_eq!(r.status, 200, "root env");
    let r = app.put("/collections/missing/env", json!({"env": {}})).await;
    assert_eq!((r.status, r.code()), (404, "COLLECTION_NOT_FOUND"));
    let r = app.put("/collections/team/env", json!({"env": {"A": 1}})).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_ENV"));
    // Names that change how the runtime starts, in the collection and function layers.
    let r = app
        .put("/collections/team/env", json!({"env": {"NODE_OPTIONS": "-r x"}}))
        .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_ENV"));
    assert!(r.body["error"].as_str().unwrap().contains("NODE_OPTIONS"), "{}", r.text);
    let r = app
        .post(
            "/functions",
            json!({"name": "envy", "source_code": HELLO, "env": {"LD_LIBRARY_PATH": "/x"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_ENV"));
    assert!(
        r.body["error"].as_str().unwrap().contains("LD_LIBRARY_PATH"),
        "{}",
        r.text
    );

    app.create_function("team/api", "f", HELLO, json!({})).await;
    let r = app.delete("/collections/team/api").await;
    assert_eq!((r.status, r.code()), (409, "COLLECTION_NOT_EMPTY"));
    let r = app.delete("/collections/team").await;
    assert_eq!(
        (r.status, r.code()),
        (409, "COLLECTION_NOT_EMPTY"),
        "has a sub-collection"
    );
    assert_eq!(app.delete("/collections/team/api/functions/f").await.status, 204);
    assert_eq!(app.delete("/collections/team/api").await.status, 204);
    assert_eq!(app.delete("/collections/team").await.status, 204);
    let r = app.delete("/collections/team").await;
    assert_eq!((r.status, r.code()), (404, "COLLECTION_NOT_FOUND"));
}

#[tokio::test]
async fn functions_lifecycle_and_errors() {
    let app = spawn_app(&[]).await;
    let r = app.create_function("", "hello", HELLO, json!({"GREETING": "hi"})).await;
    assert_eq!(r.body["id"], "hello");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["deployment_id"], "hello@v1");
    assert_eq!(r.body["language"], "javascript");
    assert_eq!(r.body["env"], json!({"GREETING": "hi"}));
    assert!(r.body.get("collection_path").is_none(), "omitted for the root");

    // Upsert writes a new version, answered 201.
    let r = app.create_function("", "hello", HELLO, json!({})).await;
    assert_eq!(r.body["version"], 2);
    assert!(r.body.get("env").is_none(), "omitted when empty");

    let r = app.get("/functions/hello").await;
    assert_eq!((r.status, r.body["version"].clone()), (200, json!(2)));
    let r = app.get("/functions").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["id"], "hello");
    assert!(r.body[0].get("source_code").is_none());

    // Update: env kept when absent, cleared by {}.
    let r = app.put("/functions/hello", json!({"env": {"K": "v"}})).await;
    assert_eq!((r.status, r.body["version"].clone()), (200, json!(3)));
    let r = app.put("/functions/hello", json!({"source_code": HELLO})).await;
    assert_eq!(r.body["env"], json!({"K": "v"}));
    let r = app.put("/functions/hello", json!({"env": {}})).await;
    assert!(r.body.get("env").is_none());
    let r = app
        .put(
            "/functions/hello",
            json!({"source_code": "x", "source_url": "https://example.com/x.mjs"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "SOURCE_CONFLICT"));
    let r = app.put("/functions/nope", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "FUNCTION_NOT_FOUND"));

    let r = app.get("/functions/hello/versions").await;
    let versions: Vec<u64> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    let r = app.get("/functions/hello?version=5").await;
    assert_eq!(r.status, 200);
    let r = app.get("/functions/hello?version=1").await;
    if db_s3_mode() {
        // db_s3 keeps the full history, newest first, every version pinnable.
        assert_eq!(versions, vec![5, 4, 3, 2, 1]);
        assert_eq!((r.status, r.body["version"].clone()), (200, json!(1)));
        assert_eq!(
            r.body["env"],
            json!({"GREETING": "hi"}),
            "a pinned version keeps its own env"
        );
        let r = app.get("/functions/hello?version=99").await;
        assert_eq!((r.status, r.code()), (404, "VERSION_NOT_FOUND"));
    } else {
        // files storage keeps the current version only.
        assert_eq!(versions, vec![5]);
        assert_eq!((r.status, r.code()), (400, "VERSION_NOT_AVAILABLE"));
    }
    let r = app.get("/functions/hello?version=0").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_VERSION"));
    let r = app.get("/functions/hello?version=abc").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_VERSION"));

    // Create errors.
    let cases = [
        (json!({"source_code": HELLO}), 400, "INVALID_NAME"),
        (json!({"name": "../etc", "source_code": HELLO}), 400, "INVALID_NAME"),
        (json!({"name": "1x", "source_code": HELLO}), 400, "INVALID_NAME"),
        (json!({"name": "f"}), 400, "SOURCE_REQUIRED"),
        (
            json!({"name": "f", "source_code": "x", "source_url": "https://example.com/x.mjs"}),
            400,
            "SOURCE_CONFLICT",
        ),
        (
            json!({"name": "f", "language": "python", "source_code": "x"}),
            400,
            "UNSUPPORTED_LANGUAGE",
        ),
        (
            json!({"name": "f", "source_code": "x", "env": {"LOWCODE_FAAS_X": "1"}}),
            400,
            "INVALID_ENV",
        ),
        (
            json!({"name": "f", "source_code": "x", "collection_path": "missing"}),
            404,
            "COLLECTION_NOT_FOUND",
        ),
        (
            json!({"name": "f", "source_code": "x", "collection_path": "a.b"}),
            400,
            "INVALID_COLLECTION_PATH",
        ),
        // A path only the Go version's grammar accepts addresses a stored
        // collection (docs/api.md §2.2): here there is none.
        (
            json!({"name": "f", "source_code": "x", "collection_path": "a/env"}),
            404,
            "COLLECTION_NOT_FOUND",
        ),
        (
            json!({"name": "f", "source_url": "ftp://example.com/x"}),
            400,
            "INVALID_SOURCE_URL",
        ),
    ];
    for (body, status, code) in cases {
        let r = app.post("/functions", body.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "create {body}: {}", r.text);
    }
    let r = app
        .post("/functions", json!({"name": "f", "language": "", "source_code": HELLO}))
        .await;
    assert_eq!(r.status, 201, "empty language is javascript");

    let r = app.get("/functions/nope").await;
    assert_eq!((r.status, r.code()), (404, "FUNCTION_NOT_FOUND"));
    let r = app.get("/functions/bad.name").await;
    assert_eq!(
        (r.status, r.code()),
        (404, "FUNCTION_NOT_FOUND"),
        "a name the Go version could store is addressable"
    );
    let r = app.get("/functions/bad..name").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_NAME"));
    let r = app.get("/functions?collection_path=missing").await;
    assert_eq!((r.status, r.code()), (404, "COLLECTION_NOT_FOUND"));
    let r = app.get("/collections/missing/functions/f").await;
    assert_eq!((r.status, r.code()), (404, "COLLECTION_NOT_FOUND"));
    let r = app.post("/collections/missing/functions/f/invoke", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "COLLECTION_NOT_FOUND"));

    assert_eq!(app.delete("/functions/hello").await.status, 204);
    let r = app.delete("/functions/hello").await;
    assert_eq!((r.status, r.code()), (404, "FUNCTION_NOT_FOUND"));
}

#[tokio::test]
async fn nested_routes_and_reserved_names() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.post("/collections", json!({"path": "a/b"})).await.status, 201);
    // URL {cp} wins over the body.
    let r = app
        .post(
            "/collections/a/b/functions",
            json!({"name": "env", "source_code": HELLO, "collection_path": "ignored"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["id"], "a/b/env");
    assert_eq!(r.body["collection_path"], "a/b");
    let r = app
        .post(
            "/collections/a/b/functions",
            json!({"name": "functions", "source_code": HELLO}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = app.get("/collections/a/b/functions").await;
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["env", "functions"]);
    let r = app.get("/functions?collection_path=a/b").await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert_eq!(
        app.get("/functions").await.body,
        json!([]),
        "root lists only its own functions"
    );
    let r = app.get("/collections/a/b/functions/env").await;
    assert_eq!(r.body["deployment_id"], "a/b/env@v1");
    let res = invoke(
        &app,
        "/collections/a/b/functions/functions/invoke",
        json!({"input": {"name": "x"}}),
    )
    .await;
    assert_eq!(res["output"]["data"]["message"], "Hello, x!");
    let r = app.get("/collections/a/b/functions/env/versions").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn invoke_results_inputs_and_errors() {
    let app = spawn_app(&[
        ("LOWCODE_FAAS_INVOKE_MAX_TIMEOUT_MS", "60000"),
        ("LOWCODE_FAAS_INVOKE_DEFAULT_TIMEOUT_MS", "30000"),
    ])
    .await;
    app.create_function("", "hello", HELLO, json!({})).await;
    let res = invoke(&app, "/functions/hello/invoke", json!({"input": {"name": "Ada"}})).await;
    assert_eq!(res["status"], "success");
    assert_eq!(res["http_status_code"], 200);
    assert_eq!(res["http_headers"], json!({"Content-Type": "application/json"}));
    assert_eq!(res["output"], json!({"ok": true, "data": {"message": "Hello, Ada!"}}));
    assert_eq!(res["error_message"], "");
    assert!(res.get("error_code").is_none());
    assert_eq!(res["function_id"], "hello");
    assert_eq!(res["deployment_version"], 1);
    assert_eq!(res["deployment_id"], "hello@v1");
    assert!(res["run_id"].as_str().unwrap().starts_with("run-"));
    assert_eq!(res["execution_id"], res["run_id"]);
    assert!(res["duration_ms"].is_u64());

    // Empty body is {}.
    let r = app
        .reply(app.client.post(format!("{}/functions/hello/invoke", app.base)))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["output"]["data"]["message"], "Hello, world!");

    let cases = [
        (json!({"input": [1]}), 400, "INVALID_INPUT"),
        (json!({"input": "x"}), 400, "INVALID_INPUT"),
        (json!({"timeout_ms": 60001}), 400, "INVALID_TIMEOUT"),
        (json!({"version": 0}), 400, "INVALID_VERSION"),
        (json!({"version": "1"}), 400, "INVALID_VERSION"),
        if db_s3_mode() {
            (json!({"version": 2}), 404, "VERSION_NOT_FOUND")
        } else {
            (json!({"version": 2}), 400, "VERSION_NOT_AVAILABLE")
        },
        (json!({"env": {"PORT": "1"}}), 400, "INVALID_ENV"),
        // Names that change how the runtime starts, in the request layer.
        (
            json!({"env": {"NODE_OPTIONS": "--import=data:text/javascript,process.exit(7)"}}),
            400,
            "INVALID_ENV",
        ),
        (json!({"env": {"LD_PRELOAD": "/tmp/x.so"}}), 400, "INVALID_ENV"),
        (json!({"env": {"PATH": "/nonexistent"}}), 400, "INVALID_ENV"),
        (json!({"timeout_ms": "soon"}), 400, "INVALID_JSON"),
    ];
    for (body, status, code) in cases {
        let r = app.post("/functions/hello/invoke", body.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "invoke {body}: {}", r.text);
    }
    let r = app.post("/functions/nope/invoke", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "FUNCTION_NOT_FOUND"));
    let r = app.post("/functions/hello/invoke?version=x", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_VERSION"));
    // Body version wins over the query.
    let res = invoke(&app, "/functions/hello/invoke?version=7", json!({"version": 1})).await;
    assert_eq!(res["deployment_version"], 1);
    // Negative and zero timeouts mean the default.
    let res = invoke(&app, "/functions/hello/invoke", json!({"timeout_ms": -1})).await;
    assert_eq!(res["status"], "success");
}

#[tokio::test]
async fn every_handler_failure_has_its_error_code() {
    let app = spawn_app(&[]).await;
    let cases = [
        (
            "throws",
            "export async function handler(){ throw new Error('boom'); }",
            "HANDLER_THROW",
        ),
        (
            "badreturn",
            "export async function handler(){ return 42; }",
            "BAD_RETURN",
        ),
        (
            "nook",
            "export async function handler(){ return { error: 'no ok' }; }",
            "BAD_RETURN",
        ),
        ("nohandler", "export const x = 1;", "NO_HANDLER"),
        ("syntax", "export async function handler( {", "SYNTAX_ERROR"),
        (
            "exits",
            "export async function handler(){ process.exit(3); }",
            "EXITED_WITHOUT_OUTPUT",
        ),
        (
            "big",
            "export async function handler(){ return { ok: true, data: 'x'.repeat(2000) }; }",
            "OUTPUT_TOO_LARGE",
        ),
    ];
    let app = {
        drop(app);
        spawn_app(&[("LOWCODE_FAAS_MAX_OUTPUT_BYTES", "1000")]).await
    };
    for (name, source, code) in cases {
        app.create_function("", name, source, json!({})).await;
        let res = invoke(&app, &format!("/functions/{name}/invoke"), json!({})).await;
        assert_eq!(res["status"], "failed", "{name}: {res}");
        assert_eq!(res["error_code"], code, "{name}: {res}");
        assert_eq!(res["http_status_code"], 0);
        assert!(res.get("http_headers").is_none());
        assert_eq!(res["output"]["ok"], false);
        assert_eq!(res["output"]["code"], code);
        assert!(!res["error_message"].as_str().unwrap().is_empty());
    }
    // A business failure is a success of the platform.
    app.create_function(
        "",
        "business",
        "export async function handler(){ return { ok: false, error: 'card declined', code: 'DECLINED' }; }",
        json!({}),
    )
    .await;
    let res = invoke(&app, "/functions/business/invoke", json!({})).await;
    assert_eq!(res["status"], "success");
    assert_eq!(
        res["output"],
        json!({"ok": false, "error": "card declined", "code": "DECLINED"})
    );
    // So is one the Go version accepted: no string `error`, a numeric `code`.
    app.create_function(
        "",
        "goera",
        "export async function handler(){ return { ok: false, code: 402 }; }",
        json!({}),
    )
    .await;
    let res = invoke(&app, "/functions/goera/invoke", json!({})).await;
    assert_eq!(res["status"], "success", "{res}");
    assert!(res.get("error_code").is_none(), "{res}");
    assert_eq!(res["error_message"], "");
    assert_eq!(res["output"], json!({"ok": false, "code": 402}));
}

#[tokio::test]
async fn env_precedence_root_two_collections_function_request() {
    let app = spawn_app(&[]).await;
    assert_eq!(
        app.put(
            "/collections/env",
            json!({"env": {"L0": "root", "ALL": "root", "A1": "root"}})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.post(
            "/collections",
            json!({"path": "a", "env": {"L1": "a", "ALL": "a", "A2": "a"}})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        app.post(
            "/collections",
            json!({"path": "a/b", "env": {"L2": "ab", "ALL": "ab", "A3": "ab"}})
        )
        .await
        .status,
        201
    );
    app.create_function("a/b", "echo", ECHO, json!({"FN": "fn", "ALL": "fn", "A4": "fn"}))
        .await;
    let res = invoke(
        &app,
        "/collections/a/b/functions/echo/invoke",
        json!({"input": {"k": 1}, "env": {"REQ": "req", "ALL": "req"}}),
    )
    .await;
    assert_eq!(res["status"], "success", "{res}");
    let env = &res["output"]["data"]["env"];
    assert_eq!(env["ALL"], "req");
    assert_eq!(env["L0"], "root");
    assert_eq!(env["L1"], "a");
    assert_eq!(env["L2"], "ab");
    assert_eq!(env["FN"], "fn");
    assert_eq!(env["REQ"], "req");
    assert_eq!(env["A1"], "root");
    assert_eq!(env["LOWCODE_FAAS_RUN_ID"], res["run_id"]);
    assert_eq!(env["LOWCODE_FAAS_FUNCTION_NAME"], "echo");
    assert_eq!(env["LOWCODE_FAAS_COLLECTION_PATH"], "a/b");
    assert_eq!(env["LOWCODE_FAAS_DEPLOYMENT_ID"], "a/b/echo@v1");
    assert_eq!(env["LOWCODE_FAAS_DEPLOYMENT_VERSION"], "1");
    for leaked in ["PATH", "HOME", "CARGO", "RUST_LOG", "USER"] {
        assert!(env.get(leaked).is_none(), "host variable {leaked} leaked into the run");
    }
    let ctx = &res["output"]["data"]["context"];
    assert_eq!(ctx["runId"], res["run_id"]);
    assert_eq!(ctx["functionName"], "echo");
    assert_eq!(ctx["collectionPath"], "a/b");
    assert_eq!(ctx["deploymentVersion"], 1);
    assert_eq!(res["output"]["data"]["input"], json!({"k": 1}));

    // Function env beats collections when the request says nothing.
    let res = invoke(&app, "/collections/a/b/functions/echo/invoke", json!({})).await;
    assert_eq!(res["output"]["data"]["env"]["ALL"], "fn");
}

#[tokio::test]
async fn legacy_go_layout_works_unchanged() {
    let data = tempfile::tempdir().unwrap();
    let legacy = data.path().join("functions");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(legacy.join("legacy.mjs"), HELLO).unwrap();
    std::fs::write(legacy.join("legacy.env.json"), r#"{"FROM":"legacy"}"#).unwrap();
    std::fs::write(
        legacy.join("dup.mjs"),
        "export async function handler(){ return {ok:true, data:'legacy'}; }",
    )
    .unwrap();
    let root = data.path().join("collections/__root__/functions");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("dup.mjs"),
        "export async function handler(){ return {ok:true, data:'new'}; }",
    )
    .unwrap();
    std::fs::write(root.join("dup.meta.json"), r#"{"version":4}"#).unwrap();
    let nested = data.path().join("collections/shop/functions");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(nested.join("cart.mjs"), HELLO).unwrap();
    std::fs::write(
        data.path().join("collections/shop/collection.env.json"),
        r#"{"SHOP":"1"}"#,
    )
    .unwrap();

    // The legacy layout is a files-storage feature: this test runs on files in every suite mode.
    let app = spawn_app_on(data, &[("LOWCODE_FAAS_STORAGE", "files")]).await;
    let r = app.get("/functions").await;
    let ids: Vec<(&str, u64)> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap(), f["version"].as_u64().unwrap()))
        .collect();
    assert_eq!(ids, vec![("dup", 4), ("legacy", 1)]);
    let r = app.get("/functions/legacy").await;
    assert_eq!(r.body["env"], json!({"FROM": "legacy"}));
    let res = invoke(&app, "/functions/legacy/invoke", json!({"input": {"name": "Go"}})).await;
    assert_eq!(res["output"]["data"]["message"], "Hello, Go!");
    assert_eq!(res["deployment_id"], "legacy@v1");
    let res = invoke(&app, "/functions/dup/invoke", json!({})).await;
    assert_eq!(res["output"]["data"], "new", "the new layout wins");
    let r = app.get("/collections").await;
    assert_eq!(r.body[0]["path"], "shop");
    let res = invoke(&app, "/collections/shop/functions/cart/invoke", json!({})).await;
    assert_eq!(res["deployment_id"], "shop/cart@v1");
}

#[tokio::test]
async fn infinite_loop_is_killed_at_its_timeout_with_nothing_left_behind() {
    let app = spawn_app(&[]).await;
    let pids = tempfile::tempdir().unwrap();
    let source = r#"
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
export async function handler() {
  const child = spawn("/bin/sleep", ["1000"], { stdio: "ignore" });
  writeFileSync(process.env.PID_FILE, JSON.stringify([process.pid, child.pid]));
  while (true) {}
}"#;
    app.create_function("", "spin", source, json!({})).await;
    let pid_file = pids.path().join("pids.json");
    let res = invoke(
        &app,
        "/functions/spin/invoke",
        // Long enough for a runner on a loaded machine to reach the line that
        // writes the pid file before the deadline.
        json!({"timeout_ms": 5000, "env": {"PID_FILE": pid_file.display().to_string()}}),
    )
    .await;
    assert_eq!(res["status"], "failed", "{res}");
    assert_eq!(res["error_code"], "TIMEOUT");
    assert!(res["error_message"].as_str().unwrap().contains("5000 ms"), "{res}");
    let pids: Vec<u32> = serde_json::from_str(&std::fs::read_to_string(&pid_file).unwrap()).unwrap();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        // SIGKILL was sent to the whole group before the reply; the kernel
        // delivers it asynchronously, so poll /proc (bounded) until it took.
        let dead = |status: &str| status.is_empty() || status.contains("State:\tZ") || status.contains("State:\tX");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        while !dead(&status) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        }
        assert!(dead(&status), "process {pid} survived the timeout:\n{status}");
    }
}

#[tokio::test]
async fn eight_concurrent_invokes() {
    let app = spawn_app(&[]).await;
    app.create_function("", "echo", ECHO, json!({})).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = app.client.clone();
        let url = format!("{}/functions/echo/invoke", app.base);
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).json(&json!({"input": {"i": i}})).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }));
    }
    let mut run_ids = std::collections::HashSet::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let res = task.await.unwrap();
        assert_eq!(res["status"], "success", "{res}");
        assert_eq!(res["output"]["data"]["input"]["i"], i);
        run_ids.insert(res["run_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(run_ids.len(), 8, "every run has its own id");
}

#[tokio::test]
async fn full_queue_answers_429_with_retry_after() {
    let app = spawn_app(&[
        ("LOWCODE_FAAS_MAX_CONCURRENT_RUNS", "1"),
        ("LOWCODE_FAAS_MAX_QUEUED_RUNS", "0"),
    ])
    .await;
    let gate = tempfile::tempdir().unwrap();
    let started = gate.path().join("started");
    let release = gate.path().join("release");
    let source = r#"
import { writeFileSync, existsSync } from "node:fs";
export async function handler() {
  writeFileSync(process.env.STARTED, "1");
  while (!existsSync(process.env.RELEASE)) { await new Promise(r => setTimeout(r, 20)); }
  return { ok: true };
}"#;
    app.create_function("", "gate", source, json!({})).await;
    let client = app.client.clone();
    let url = format!("{}/functions/gate/invoke", app.base);
    let body = json!({"env": {"STARTED": started.display().to_string(), "RELEASE": release.display().to_string()}});
    let first = tokio::spawn(async move {
        client
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    // Wait (bounded) until the first run holds the only slot.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !started.exists() {
        assert!(std::time::Instant::now() < deadline, "the first run never started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = app.post("/functions/gate/invoke", json!({})).await;
    assert_eq!((r.status, r.code()), (429, "TOO_MANY_REQUESTS"));
    assert!(r.headers.contains_key("retry-after"));
    std::fs::write(&release, "1").unwrap();
    assert_eq!(first.await.unwrap()["status"], "success");
}

const LOGGER: &str = r#"console.log("top level", 1);
export async function handler(input) {
  console.info("info %s", input.who);
  console.warn({ a: 1 });
  console.error(new Error("bad thing").message);
  console.debug("debug");
  return { ok: true };
}"#;

#[tokio::test]
async fn function_logs_disabled_is_404_but_query_hints_work() {
    let app = spawn_app(&[]).await;
    let r = app.get("/function-logs?run_id=x").await;
    assert_eq!((r.status, r.code()), (404, "LOGS_DISABLED"));
    let r = app.get("/function-logs/query?run_id=run-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["queries"]["elasticsearch_query_string"], r#"run_id:"run-1""#);
    let r = app.get("/function-logs/query").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_QUERY"));
}

#[tokio::test]
async fn captured_logs_are_searchable_by_run_function_collection_and_text() {
    let app = spawn_app(&[
        ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "memory"),
    ])
    .await;
    assert_eq!(app.post("/collections", json!({"path": "team"})).await.status, 201);
    app.create_function("team", "logger", LOGGER, json!({})).await;
    let res = invoke(
        &app,
        "/collections/team/functions/logger/invoke",
        json!({"input": {"who": "Ada"}}),
    )
    .await;
    let run_id = res["run_id"].as_str().unwrap().to_owned();
    invoke(
        &app,
        "/collections/team/functions/logger/invoke",
        json!({"input": {"who": "Bob"}}),
    )
    .await;

    let r = app.get(&format!("/function-logs?run_id={run_id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let entries = r.body.as_array().unwrap();
    let messages: Vec<&str> = entries.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(
        messages,
        vec!["debug", "bad thing", "{ a: 1 }", "info Ada", "top level 1"],
        "newest first"
    );
    let levels: Vec<&str> = entries.iter().map(|e| e["level"].as_str().unwrap()).collect();
    assert_eq!(levels, vec!["debug", "error", "warn", "info", "log"]);
    let e = &entries[0];
    assert_eq!(e["run_id"], run_id.as_str());
    assert_eq!(e["execution_id"], run_id.as_str());
    assert_eq!(e["function_name"], "logger");
    assert_eq!(e["collection_path"], "team");
    assert_eq!(e["deployment_version"], 1);
    assert_eq!(e["deployment_id"], "team/logger@v1");
    assert!(e["ts"].as_str().unwrap().ends_with('Z'));

    let r = app.get("/function-logs?function=logger&q=BOB").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "q is a case-insensitive substring");
    let r = app.get("/function-logs?collection_path=team&limit=3").await;
    assert_eq!(r.body.as_array().unwrap().len(), 3);
    let r = app.get("/function-logs?collection_path=other").await;
    assert_eq!(r.body, json!([]));
    let r = app.get("/function-logs?limit=0").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_LIMIT"));
    let r = app.get("/function-logs?limit=501").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_LIMIT"));
}

#[tokio::test]
async fn a_run_log_is_capped_with_one_truncation_entry() {
    let app = spawn_app(&[
        ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "memory"),
        ("LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES", "2000"),
    ])
    .await;
    app.create_function(
        "",
        "chatty",
        "export async function handler(){ for (let i = 0; i < 1000; i++) console.log('line', i); return {ok:true}; }",
        json!({}),
    )
    .await;
    let res = invoke(&app, "/functions/chatty/invoke", json!({})).await;
    assert_eq!(res["status"], "success");
    let r = app
        .get(&format!(
            "/function-logs?run_id={}&limit=500",
            res["run_id"].as_str().unwrap()
        ))
        .await;
    let entries = r.body.as_array().unwrap();
    assert!(entries.len() < 100, "capped: {} entries", entries.len());
    assert!(
        entries[0]["message"].as_str().unwrap().contains("truncated"),
        "{}",
        entries[0]
    );
    let truncations = entries
        .iter()
        .filter(|e| e["message"].as_str().unwrap().contains("truncated"))
        .count();
    assert_eq!(truncations, 1);
}

#[tokio::test]
async fn query_hints_escape_hostile_values_and_build_grafana_urls() {
    let app = spawn_app(&[(
        "LOWCODE_FAAS_LOGS_GRAFANA_EXPLORE_URL_TEMPLATE",
        "https://grafana.example/explore?expr={{logql}}&run={{run_id}}&dep={{deployment_id}}",
    )])
    .await;
    let r = app
        .reply(app.client.get(format!("{}/function-logs/query", app.base)).query(&[
            ("run_id", r#"r"1\x"#),
            ("function", "f"),
            ("collection_path", "a/b"),
            ("deployment_id", "a/b/f@v2"),
        ]))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["run_id"], r#"r"1\x"#);
    assert_eq!(r.body["collection_path"], "a/b");
    let q = &r.body["queries"];
    assert_eq!(q["loki_logql_json"], r#"{job="docker"} | json | run_id="r\"1\\x""#);
    assert_eq!(
        q["google_cloud_logging"],
        r#"jsonPayload.run_id="r\"1\\x" OR textPayload:"r\"1\\x""#
    );
    assert_eq!(
        q["aws_cloudwatch_logs_insights"],
        r#"fields @timestamp, @message | filter @message like /r"1\\x/"#
    );
    assert_eq!(
        r.body["grafana_explore_url"],
        "https://grafana.example/explore?expr=%7Bjob%3D%22docker%22%7D+%7C%3D+%22r%5C%221%5C%5Cx%22&run=r%221%5Cx&dep=a%2Fb%2Ff%40v2"
    );
}

#[tokio::test]
async fn source_url_fetch_refuses_loopback_by_default() {
    let app = spawn_app(&[]).await;
    let r = app
        .post(
            "/functions",
            json!({"name": "f", "source_url": "http://127.0.0.1:9/x.mjs"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "SOURCE_URL_FORBIDDEN"));
}

#[tokio::test]
async fn source_url_create_and_pull_with_private_fetch_allowed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let (status, body) = if req.starts_with("GET /v1.mjs") {
                ("200 OK", HELLO.to_owned())
            } else if req.starts_with("GET /v2.mjs") {
                (
                    "200 OK",
                    "export async function handler(){ return {ok:true, data:'v2'}; }".to_owned(),
                )
            } else {
                ("404 Not Found", "nope".to_owned())
            };
            let res = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(res.as_bytes()).await;
        }
    });
    let app = spawn_app(&[("LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE", "true")]).await;
    let r = app
        .post(
            "/functions",
            json!({"name": "remote", "source_url": format!("http://{addr}/v1.mjs")}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["source_code"], HELLO);
    let r = app
        .post(
            "/functions/remote/pull",
            json!({"source_url": format!("http://{addr}/v2.mjs")}),
        )
        .await;
    assert_eq!((r.status, r.body["version"].clone()), (200, json!(2)), "{}", r.text);
    let res = invoke(&app, "/functions/remote/invoke", json!({})).await;
    assert_eq!(res["output"]["data"], "v2");
    let r = app
        .post(
            "/functions/remote/pull",
            json!({"source_url": format!("http://{addr}/missing.mjs")}),
        )
        .await;
    assert_eq!((r.status, r.code()), (502, "SOURCE_FETCH_FAILED"));
    let r = app.post("/functions/remote/pull", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "SOURCE_REQUIRED"));
    let r = app
        .post(
            "/functions/ghost/pull",
            json!({"source_url": format!("http://{addr}/v2.mjs")}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "FUNCTION_NOT_FOUND"));
}

/// Two dispatchers on one storage (two replicas); the temp dir lives as long as the guard.
async fn two_replicas() -> (TestApp, TestApp, tempfile::TempDir) {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().display().to_string();
    let storage = storage_vars().await;
    let mut vars: Vec<(&str, &str)> = storage.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.push(("LOWCODE_FAAS_DATA_DIR", &dir));
    let a = spawn_app(&vars).await;
    let b = spawn_app(&vars).await;
    (a, b, shared)
}

#[tokio::test]
async fn two_replicas_saving_concurrently_never_lose_a_version() {
    let (a, b, _shared) = two_replicas().await;
    a.create_function(
        "",
        "counter",
        "export async function handler(){ return {ok:true, data:0}; }",
        json!({}),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 1..=40 {
        let app = if i % 2 == 0 { &a } else { &b };
        let client = app.client.clone();
        let url = format!("{}/functions", app.base);
        tasks.push(tokio::spawn(async move {
            let source = format!("export async function handler(){{ return {{ok:true, data:{i}}}; }}");
            let r = client
                .post(url)
                .json(&json!({"name": "counter", "source_code": source}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let body: Value = r.json().await.unwrap();
            (body["version"].as_u64().unwrap(), i)
        }));
    }
    let mut saved = Vec::new();
    for t in tasks {
        saved.push(t.await.unwrap());
    }
    let mut versions: Vec<u64> = saved.iter().map(|(v, _)| *v).collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=41).collect::<Vec<u64>>(),
        "every save got its own version"
    );
    let r = a.get("/functions/counter").await;
    assert_eq!(r.body["version"], 41);
    if db_s3_mode() {
        // Each version is retrievable with its own source.
        for (version, i) in saved {
            let r = b.get(&format!("/functions/counter?version={version}")).await;
            assert!(
                r.body["source_code"].as_str().unwrap().contains(&format!("data:{i}}}")),
                "v{version}"
            );
        }
        assert_eq!(
            a.get("/functions/counter/versions")
                .await
                .body
                .as_array()
                .unwrap()
                .len(),
            41
        );
    }
}

#[tokio::test]
async fn a_save_through_one_replica_is_seen_by_the_next_invoke_on_the_other() {
    let (a, b, _shared) = two_replicas().await;
    a.create_function(
        "",
        "v",
        "export async function handler(){ return {ok:true, data:'one'}; }",
        json!({}),
    )
    .await;
    assert_eq!(
        invoke(&a, "/functions/v/invoke", json!({})).await["output"]["data"],
        "one"
    );
    assert_eq!(
        invoke(&b, "/functions/v/invoke", json!({})).await["output"]["data"],
        "one"
    );
    b.create_function(
        "",
        "v",
        "export async function handler(){ return {ok:true, data:'two'}; }",
        json!({}),
    )
    .await;
    let res = invoke(&a, "/functions/v/invoke", json!({})).await;
    assert_eq!(
        res["output"]["data"], "two",
        "the cache revalidates the current version"
    );
    assert_eq!(res["deployment_version"], 2);

    // Deleted and re-created through the other replica: version 1 again, new content.
    assert_eq!(b.delete("/functions/v").await.status, 204);
    b.create_function(
        "",
        "v",
        "export async function handler(){ return {ok:true, data:'three'}; }",
        json!({}),
    )
    .await;
    let res = invoke(&a, "/functions/v/invoke", json!({})).await;
    assert_eq!(res["deployment_version"], 1);
    assert_eq!(
        res["output"]["data"], "three",
        "a re-created version 1 is not the cached old one"
    );
}

#[tokio::test]
async fn a_hand_edit_of_a_source_file_is_seen_by_the_next_invoke() {
    let app = spawn_app(&[("LOWCODE_FAAS_STORAGE", "files")]).await;
    app.create_function(
        "",
        "edit",
        "export async function handler(){ return {ok:true, data:'before'}; }",
        json!({}),
    )
    .await;
    assert_eq!(
        invoke(&app, "/functions/edit/invoke", json!({})).await["output"]["data"],
        "before"
    );
    let file = app.data_dir().join("collections/__root__/functions/edit.mjs");
    std::fs::write(
        &file,
        "export async function handler(){ return {ok:true, data:'after the edit'}; }",
    )
    .unwrap();
    let res = invoke(&app, "/functions/edit/invoke", json!({})).await;
    assert_eq!(
        res["output"]["data"], "after the edit",
        "the cache revalidates file times and sizes"
    );
}

#[tokio::test]
async fn the_output_limit_applies_to_the_value_exactly() {
    let app = spawn_app(&[("LOWCODE_FAAS_MAX_OUTPUT_BYTES", "1000")]).await;
    // {"ok":true,"data":"…"} is 21 bytes plus the string.
    app.create_function(
        "",
        "fits",
        "export async function handler(){ return {ok:true, data:'x'.repeat(979)}; }",
        json!({}),
    )
    .await;
    app.create_function(
        "",
        "over",
        "export async function handler(){ return {ok:true, data:'x'.repeat(980)}; }",
        json!({}),
    )
    .await;
    let res = invoke(&app, "/functions/fits/invoke", json!({})).await;
    assert_eq!(
        res["status"], "success",
        "exactly the limit is allowed: {}",
        res["error_message"]
    );
    let res = invoke(&app, "/functions/over/invoke", json!({})).await;
    assert_eq!(res["error_code"], "OUTPUT_TOO_LARGE");
    // Far over: the runtime refuses it; the message names the configured limit.
    app.create_function(
        "",
        "huge",
        "export async function handler(){ return {ok:true, data:'x'.repeat(5000)}; }",
        json!({}),
    )
    .await;
    let res = invoke(&app, "/functions/huge/invoke", json!({})).await;
    assert_eq!(res["error_code"], "OUTPUT_TOO_LARGE");
    let message = res["error_message"].as_str().unwrap();
    assert!(message.ends_with("is larger than the limit of 1000 bytes"), "{message}");
}

#[tokio::test]
async fn a_body_version_wins_over_an_invalid_query_version() {
    let app = spawn_app(&[]).await;
    app.create_function("", "hello", HELLO, json!({})).await;
    let res = invoke(&app, "/functions/hello/invoke?version=abc", json!({"version": 1})).await;
    assert_eq!(res["deployment_version"], 1);
}

#[tokio::test]
async fn head_answers_like_get_and_percent_encoded_names_are_decoded() {
    let app = spawn_app(&[]).await;
    app.create_function("", "ok1", HELLO, json!({})).await;
    for path in ["/healthz", "/functions", "/functions/ok1", "/collections"] {
        let r = app.reply(app.client.head(format!("{}{path}", app.base))).await;
        assert_eq!(r.status, 200, "HEAD {path}");
        assert!(r.text.is_empty(), "HEAD {path} has no body");
    }
    // HEAD where GET is not allowed is still 405.
    let r = app
        .reply(app.client.head(format!("{}/functions/ok1/invoke", app.base)))
        .await;
    assert_eq!(r.status, 405);
    let res = invoke(&app, "/functions/ok%31/invoke", json!({"input": {"name": "x"}})).await;
    assert_eq!(res["function_id"], "ok1", "{res}");
    let r = app.get("/functions/a%2Fb").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_NAME"), "{}", r.text);
    app.stop().await;
}
