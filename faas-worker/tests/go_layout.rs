//! The binary run the way the Go version's compose file runs it: under the
//! name `worker` (the image links it), from a working directory holding a
//! Go-era `data/` tree, with no `LOWCODE_FAAS_DATA_DIR`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn worker_named_as_in_the_go_image_runs_functions_of_the_go_data_tree() {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_faas-worker"), bin.join("worker")).unwrap();
    let app = root.path().join("app");
    let functions = app.join("data/collections/__root__/functions");
    std::fs::create_dir_all(&functions).unwrap();
    std::fs::write(
        functions.join("hello.mjs"),
        "export async function handler(input) { return { ok: true, data: input.n + 1 }; }",
    )
    .unwrap();

    let mut child = Command::new(bin.join("worker"))
        .current_dir(&app)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOWCODE_FAAS_WORKER_LISTEN", "127.0.0.1:0")
        .env("LOWCODE_FAAS_RUNTIME", "process")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("worker listening"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .map(|a| a.trim_matches('"').to_owned())
        })
        .expect("the worker logs its address");
    std::thread::spawn(move || for _ in lines {});

    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{addr}/v1/run"))
            .json(&serde_json::json!({"function_name": "hello", "input": {"n": 41}, "timeout_ms": 30000}))
            .send()
            .await
            .map(|r| r.json::<serde_json::Value>())
    });
    let run = match run {
        Ok(body) => rt.block_on(body),
        Err(e) => Err(e),
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let run = run.unwrap();
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"]["data"], 42);
}
