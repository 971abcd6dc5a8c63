//! The binary run the way the Go version's deployments run it: under the
//! name `dispatcher` (the image links it), from a working directory holding
//! a Go-era `data/` tree, with no `LOWCODE_FAAS_DATA_DIR`: the default data
//! directory is that tree (as the Go version's relative `data/` was), new
//! and legacy layouts included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const HELLO: &str = "export async function handler(input) { return { ok: true, data: `hello ${input.name}` }; }";
const LEGACY: &str = "export async function handler() { return { ok: false, code: 7 }; }";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The tree the Go version wrote under its working directory.
fn go_tree(app: &Path) {
    let data = app.join("data");
    write(&data.join("collections/__root__/functions/hello.mjs"), HELLO);
    write(
        &data.join("collections/__root__/functions/hello.meta.json"),
        r#"{"version":3}"#,
    );
    write(&data.join("functions/legacy.mjs"), LEGACY);
    write(&data.join("collections/team/functions/t.mjs"), HELLO);
    write(&data.join("collections/team/collection.env.json"), r#"{"TEAM":"x"}"#);
}

#[test]
fn dispatcher_named_as_in_the_go_image_serves_the_go_data_tree_by_default() {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_faas-server"), bin.join("dispatcher")).unwrap();
    let app = root.path().join("app");
    go_tree(&app);

    let version = Command::new(bin.join("dispatcher")).arg("--version").output().unwrap();
    assert!(version.status.success());

    let mut child = Command::new(bin.join("dispatcher"))
        .current_dir(&app)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOWCODE_FAAS_LISTEN", "127.0.0.1:0")
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
        .find(|l| l.contains("dispatcher listening"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .map(|a| a.trim_matches('"').to_owned())
        })
        .expect("the dispatcher logs its address");
    std::thread::spawn(move || for _ in lines {});

    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let client = reqwest::Client::new();
            let base = format!("http://{addr}");
            let list: serde_json::Value = client
                .get(format!("{base}/functions"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let names: Vec<(&str, i64)> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|f| (f["name"].as_str().unwrap(), f["version"].as_i64().unwrap()))
                .collect();
            assert_eq!(names, [("hello", 3), ("legacy", 1)], "{list}");
            let run: serde_json::Value = client
                .post(format!("{base}/functions/hello/invoke"))
                .json(&serde_json::json!({"input": {"name": "Ada"}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(
                run["output"],
                serde_json::json!({"ok": true, "data": "hello Ada"}),
                "{run}"
            );
            assert_eq!(run["deployment_id"], "hello@v3");
            let run: serde_json::Value = client
                .post(format!("{base}/collections/team/functions/t/invoke"))
                .json(&serde_json::json!({"input": {"name": "team"}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(run["status"], "success", "{run}");
        });
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
