//! The dispatcher with the Docker runtime against the real engine and the
//! locally built image (`scripts/build-node-image.sh`). These tests fail,
//! never skip, when the daemon or the image is missing.

use faas_tests::{spawn_app, TestApp};
use serde_json::json;

use crate::dispatcher::{invoke, ECHO, HELLO};

fn image() -> String {
    std::env::var("LOWCODE_FAAS_NODE_DOCKER_IMAGE").unwrap_or_else(|_| "lowcode-faas/node:local".to_owned())
}

/// A dispatcher with the Docker runtime and an instance id of its own.
async fn docker_app(instance: &str, extra: &[(&str, &str)]) -> TestApp {
    let image = image();
    let instance = format!("faas-tests-{instance}-{}", std::process::id());
    let mut vars = vec![
        ("LOWCODE_FAAS_RUNTIME", "docker"),
        ("LOWCODE_FAAS_NODE_DOCKER_IMAGE", image.as_str()),
        ("LOWCODE_FAAS_PREWARM_NODE_IMAGE", "false"),
        ("LOWCODE_FAAS_INSTANCE_ID", instance.as_str()),
    ];
    vars.extend_from_slice(extra);
    let app = spawn_app(&vars).await;
    let ready = app.get("/readyz").await;
    assert_eq!(
        ready.status, 200,
        "Docker runtime not ready ({}); start the daemon and run scripts/build-node-image.sh",
        ready.text
    );
    app
}

fn containers_of(label: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .expect("the docker CLI (used by tests only)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn invokes_run_in_containers_with_the_merged_env() {
    let app = docker_app("env", &[]).await;
    assert_eq!(
        app.put("/collections/env", json!({"env": {"ROOT": "r", "ALL": "root"}}))
            .await
            .status,
        200
    );
    assert_eq!(
        app.post("/collections", json!({"path": "a", "env": {"ALL": "a"}}))
            .await
            .status,
        201
    );
    app.create_function("a", "echo", ECHO, json!({"ALL": "fn", "FN": "1"}))
        .await;
    let res = invoke(
        &app,
        "/collections/a/functions/echo/invoke",
        json!({"input": {"x": 1}, "env": {"REQ": "q"}}),
    )
    .await;
    assert_eq!(res["status"], "success", "{res}");
    let env = &res["output"]["data"]["env"];
    assert_eq!(env["ALL"], "fn");
    assert_eq!(env["ROOT"], "r");
    assert_eq!(env["REQ"], "q");
    assert_eq!(env["LOWCODE_FAAS_DEPLOYMENT_ID"], "a/echo@v1");
    for leaked in ["CARGO", "RUST_LOG", "USER", "CARGO_HOME"] {
        assert!(env.get(leaked).is_none(), "host variable {leaked} leaked");
    }
    app.create_function("", "hello", HELLO, json!({})).await;
    let res = invoke(&app, "/functions/hello/invoke", json!({"input": {"name": "Docker"}})).await;
    assert_eq!(res["output"]["data"]["message"], "Hello, Docker!");
    // A graceful stop removes the pool's containers.
    app.stop().await;
}

#[tokio::test]
async fn a_timed_out_run_leaves_no_container() {
    // Cold: the run's container carries its run id.
    let app = docker_app("timeout", &[("LOWCODE_FAAS_EXECUTION_MODE", "cold")]).await;
    app.create_function(
        "",
        "spin",
        "export async function handler(){ while (true) {} }",
        json!({}),
    )
    .await;
    let res = invoke(&app, "/functions/spin/invoke", json!({"timeout_ms": 1500})).await;
    assert_eq!(res["error_code"], "TIMEOUT", "{res}");
    assert!(res["error_message"].as_str().unwrap().contains("1500 ms"));
    let run_id = res["run_id"].as_str().unwrap();
    // Killed at the deadline, then removed off the request path: poll (bounded).
    let label = format!("lowcode-faas.run_id={run_id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !containers_of(&label).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run's container was not removed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A graceful stop removes the pool's containers.
    app.stop().await;
}

#[tokio::test]
async fn handler_failures_have_the_same_codes_as_with_the_process_runtime() {
    let app = docker_app("codes", &[("LOWCODE_FAAS_MAX_OUTPUT_BYTES", "1000")]).await;
    let cases = [
        (
            "throws",
            "export async function handler(){ throw new Error('boom'); }",
            "HANDLER_THROW",
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
    for (name, source, code) in cases {
        app.create_function("", name, source, json!({})).await;
        let res = invoke(&app, &format!("/functions/{name}/invoke"), json!({})).await;
        assert_eq!(res["error_code"], code, "{name}: {res}");
    }
    // A graceful stop removes the pool's containers.
    app.stop().await;
}

#[tokio::test]
async fn a_missing_image_is_image_unavailable_and_not_ready() {
    let app = spawn_app(&[
        ("LOWCODE_FAAS_RUNTIME", "docker"),
        ("LOWCODE_FAAS_NODE_DOCKER_IMAGE", "lowcode-faas/does-not-exist:never"),
        ("LOWCODE_FAAS_PREWARM_NODE_IMAGE", "false"),
        ("LOWCODE_FAAS_INSTANCE_ID", "faas-tests-noimage"),
    ])
    .await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert!(r.body["components"]["runtime"].is_string(), "{}", r.text);
    app.create_function("", "hello", HELLO, json!({})).await;
    let res = invoke(&app, "/functions/hello/invoke", json!({"timeout_ms": 20000})).await;
    assert_eq!(res["error_code"], "IMAGE_UNAVAILABLE", "{res}");
    // A graceful stop removes the pool's containers.
    app.stop().await;
}

#[tokio::test]
async fn include_logs_returns_the_runs_logs_in_every_execution_mode() {
    for mode in ["cold", "prewarm", "warm"] {
        let app = docker_app(&format!("logs-{mode}"), &[("LOWCODE_FAAS_EXECUTION_MODE", mode)]).await;
        app.create_function("", "echo", ECHO, json!({})).await;
        // Twice: in warm mode the second run reuses the first one's runner.
        for _ in 0..2 {
            let r = invoke(&app, "/functions/echo/invoke", json!({"include_logs": true})).await;
            let logs = r["logs"].as_array().unwrap_or_else(|| panic!("{mode}: {r}"));
            assert_eq!(logs.len(), 1, "{mode}: {r}");
            assert_eq!(logs[0]["message"], "echo 1", "{mode}");
            assert_eq!(logs[0]["stream"], "stdout", "{mode}");
            assert_eq!(r["logs_truncated"], false, "{mode}");
        }
        let r = invoke(&app, "/functions/echo/invoke", json!({})).await;
        assert!(r.get("logs").is_none(), "{mode}: {r}");
        app.stop().await;
    }
}
