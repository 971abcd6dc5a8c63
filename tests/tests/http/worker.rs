//! The worker (`POST /v1/run`) and the dispatcher's proxy mode (docs/api.md).

use faas_tests::{
    canned_server, closed_port, db_s3_mode, silent_server, spawn_app, spawn_app_on, spawn_worker, storage_vars, TestApp,
};
use serde_json::{json, Value};

use crate::dispatcher::{invoke, ECHO, HELLO};

/// A worker and a dispatcher in proxy mode over one data directory.
async fn pair(extra: &[(&str, &str)]) -> (TestApp, faas_server::app::RunningServer, String) {
    let data = tempfile::tempdir().unwrap();
    let storage = storage_vars().await;
    let mut vars: Vec<(&str, &str)> = extra.to_vec();
    vars.extend(storage.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (worker_url, worker) = spawn_worker(data.path(), &vars).await;
    vars.push(("LOWCODE_FAAS_WORKER_URL", &worker_url));
    let app = spawn_app_on(data, &vars).await;
    (app, worker, worker_url)
}

/// Without what differs between two runs of the same invoke (ids, timing,
/// and how the runner was started: both servers keep their own pool).
fn without_ids(mut v: Value) -> Value {
    for key in ["run_id", "execution_id", "duration_ms", "start_kind"] {
        v.as_object_mut().unwrap().remove(key);
    }
    v
}

#[tokio::test]
async fn proxied_invoke_equals_in_process_invoke() {
    let (proxied, _worker, _) = pair(&[]).await;
    let local = spawn_app(&[]).await;
    for app in [&proxied, &local] {
        assert_eq!(
            app.post("/collections", json!({"path": "a", "env": {"C": "a"}}))
                .await
                .status,
            201
        );
        app.create_function("a", "echo", ECHO, json!({"F": "fn"})).await;
        app.create_function(
            "",
            "boom",
            "export async function handler(){ throw new Error('x'); }",
            json!({}),
        )
        .await;
    }
    let body = json!({"input": {"k": [1, 2]}, "env": {"R": "req"}, "timeout_ms": 10000});
    let a = invoke(&proxied, "/collections/a/functions/echo/invoke", body.clone()).await;
    let b = invoke(&local, "/collections/a/functions/echo/invoke", body).await;
    assert_eq!(a["status"], "success", "{a}");
    let strip_env_ids = |mut v: Value| {
        let env = v["output"]["data"]["env"].as_object_mut().unwrap();
        env.remove("LOWCODE_FAAS_RUN_ID");
        env.remove("LOWCODE_FAAS_EXECUTION_ID");
        let ctx = v["output"]["data"]["context"].as_object_mut().unwrap();
        ctx.remove("runId");
        ctx.remove("executionId");
        without_ids(v)
    };
    assert_eq!(strip_env_ids(a), strip_env_ids(b));
    let a = invoke(&proxied, "/functions/boom/invoke", json!({})).await;
    let b = invoke(&local, "/functions/boom/invoke", json!({})).await;
    assert_eq!(without_ids(a), without_ids(b));
}

#[tokio::test]
async fn worker_errors_pass_through_unchanged() {
    let (app, _worker, _) = pair(&[]).await;
    app.create_function("", "hello", HELLO, json!({})).await;
    let r = app.post("/functions/missing/invoke", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "FUNCTION_NOT_FOUND"));
    let r = app.post("/functions/hello/invoke", json!({"version": 3})).await;
    if db_s3_mode() {
        assert_eq!(
            (r.status, r.code()),
            (404, "VERSION_NOT_FOUND"),
            "a 404 only the worker can detect"
        );
    } else {
        assert_eq!(
            (r.status, r.code()),
            (400, "VERSION_NOT_AVAILABLE"),
            "a 400 only the worker can detect"
        );
    }

    let body = r#"{"error":"too many runs","code":"TOO_MANY_REQUESTS"}"#;
    let canned = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 7\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let busy = canned_server(canned).await;
    let app = spawn_app(&[("LOWCODE_FAAS_WORKER_URL", &format!("http://{busy}"))]).await;
    app.create_function("", "hello", HELLO, json!({})).await;
    let r = app.post("/functions/hello/invoke", json!({})).await;
    assert_eq!((r.status, r.code()), (429, "TOO_MANY_REQUESTS"));
    assert_eq!(r.headers["retry-after"], "7");
}

#[tokio::test]
async fn worker_down_is_502_and_not_ready() {
    let (port, _held) = closed_port().await;
    let app = spawn_app(&[("LOWCODE_FAAS_WORKER_URL", &format!("http://127.0.0.1:{port}"))]).await;
    app.create_function("", "hello", HELLO, json!({})).await;
    let r = app.post("/functions/hello/invoke", json!({})).await;
    assert_eq!((r.status, r.code()), (502, "WORKER_UNAVAILABLE"));
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert!(r.body["components"]["worker"].is_string(), "{}", r.text);
    assert!(
        r.body["components"].get("runtime").is_none(),
        "proxy mode runs nothing itself"
    );
}

#[tokio::test]
async fn slow_worker_is_504_after_timeout_plus_grace() {
    let slow = silent_server().await;
    let app = spawn_app(&[("LOWCODE_FAAS_WORKER_URL", &format!("http://{slow}"))]).await;
    app.create_function("", "hello", HELLO, json!({})).await;
    let r = app.post("/functions/hello/invoke", json!({"timeout_ms": 100})).await;
    assert_eq!((r.status, r.code()), (504, "WORKER_TIMEOUT"));
}

#[tokio::test]
async fn worker_token_is_required_and_sent() {
    let (app, _worker, worker_url) = pair(&[("LOWCODE_FAAS_WORKER_TOKEN", "w-secret")]).await;
    app.create_function("", "hello", HELLO, json!({})).await;
    let res = invoke(&app, "/functions/hello/invoke", json!({})).await;
    assert_eq!(res["status"], "success", "the dispatcher sends the worker token");
    assert_eq!(app.get("/readyz").await.status, 200);

    let client = reqwest::Client::new();
    let r = client
        .post(format!("{worker_url}/v1/run"))
        .json(&json!({"function_name": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client.get(format!("{worker_url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "health stays open");
    let r = client
        .post(format!("{worker_url}/v1/run"))
        .bearer_auth("w-secret")
        .json(&json!({"function_name": "hello", "input": {"name": "W"}}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["output"]["data"]["message"], "Hello, W!");

    // A dispatcher with the wrong token gets a clear 502, not the worker's 401.
    let data = tempfile::tempdir().unwrap();
    let wrong = spawn_app_on(
        data,
        &[
            ("LOWCODE_FAAS_WORKER_URL", &worker_url),
            ("LOWCODE_FAAS_WORKER_TOKEN", "nope"),
        ],
    )
    .await;
    wrong.create_function("", "hello", HELLO, json!({})).await;
    let r = wrong.post("/functions/hello/invoke", json!({})).await;
    assert_eq!((r.status, r.code()), (502, "WORKER_UNAVAILABLE"));
    assert!(r.body["error"].as_str().unwrap().contains("LOWCODE_FAAS_WORKER_TOKEN"));
}

#[tokio::test]
async fn worker_refuses_traversal_and_bad_requests() {
    let data = tempfile::tempdir().unwrap();
    let storage = storage_vars().await;
    let vars: Vec<(&str, &str)> = storage.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (worker_url, _worker) = spawn_worker(data.path(), &vars).await;
    let client = reqwest::Client::new();
    let run = |body: Value| {
        let client = client.clone();
        let url = format!("{worker_url}/v1/run");
        async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (status, body["code"].as_str().unwrap_or("").to_owned())
        }
    };
    let cases = [
        (json!({"function_name": "../../etc/passwd"}), 400, "INVALID_NAME"),
        (json!({"function_name": "a/b"}), 400, "INVALID_NAME"),
        (json!({}), 400, "INVALID_NAME"),
        (
            json!({"function_name": "f", "collection_path": "../x"}),
            400,
            "INVALID_COLLECTION_PATH",
        ),
        (json!({"function_name": "f", "input": 3}), 400, "INVALID_INPUT"),
        (json!({"function_name": "f"}), 404, "FUNCTION_NOT_FOUND"),
        (
            json!({"function_name": "f", "collection_path": "nope"}),
            404,
            "COLLECTION_NOT_FOUND",
        ),
    ];
    for (body, status, code) in cases {
        assert_eq!(run(body.clone()).await, (status, code.to_owned()), "{body}");
    }
    let r = client.get(format!("{worker_url}/v1/run")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = client.get(format!("{worker_url}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn function_log_routes_are_forwarded_to_the_worker() {
    let (app, _worker, _) = pair(&[
        ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "memory"),
    ])
    .await;
    app.create_function(
        "",
        "talk",
        "export async function handler(){ console.log('from the worker'); return {ok:true}; }",
        json!({}),
    )
    .await;
    let res = invoke(&app, "/functions/talk/invoke", json!({})).await;
    let r = app
        .get(&format!("/function-logs?run_id={}", res["run_id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body[0]["message"], "from the worker");
    let r = app.get("/function-logs/query?function=talk").await;
    assert_eq!(
        r.body["queries"]["elasticsearch_query_string"],
        r#"function_name:"talk""#
    );
    // The worker answers with the Go version's keys too.
    assert_eq!(r.body["function_name"], "talk");
    assert_eq!(r.body["queries"]["elasticsearch_lucene"], r#"function_name:"talk""#);
}
