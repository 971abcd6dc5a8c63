//! The `faas` binary against a real dispatcher (the same code the
//! `faas-server` binary runs, started on 127.0.0.1:0 by the black-box
//! suite's `spawn_app`, process runtime): deploy, invoke with input, env and
//! logs, a failing run, list, get, versions, collections, rm, and the exit
//! codes of each outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use faas_tests::spawn_app;

fn faas(base: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faas"))
        .arg("--url")
        .arg(base)
        .args(args)
        .env_remove("LOWCODE_FAAS_API_TOKEN")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_drives_a_real_dispatcher() {
    let app = spawn_app(&[]).await;
    let base = app.base.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("greet.mjs");
    std::fs::write(
        &file,
        "export async function handler(input) { console.log('greeting', input.name); \
         return { ok: true, data: { hi: input.name, from: process.env.FROM } }; }",
    )
    .unwrap();
    let file = file.display().to_string();
    let failing = dir.path().join("fails.mjs");
    std::fs::write(&failing, "export async function handler() { throw new Error('nope'); }").unwrap();
    let failing = failing.display().to_string();

    let base2 = base.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let base = base2.as_str();
        let o = faas(base, &["collections", "create", "team", "--env", "FROM=team"]);
        assert!(o.status.success(), "{}", text(&o.stderr));

        // deploy: the name is the file stem; it prints the new version.
        let o = faas(base, &["deploy", &file, "--collection", "team"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(text(&o.stdout).contains('1'), "{}", text(&o.stdout));
        let o = faas(base, &["deploy", &file, "--collection", "team"]);
        assert!(o.status.success(), "{}", text(&o.stderr));

        // invoke: the output on stdout, the run's logs on stderr with --logs.
        let o = faas(
            base,
            &[
                "invoke",
                "greet",
                "--collection",
                "team",
                "--input",
                r#"{"name":"Ada"}"#,
                "--logs",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(out["data"], serde_json::json!({"hi": "Ada", "from": "team"}));
        assert!(text(&o.stderr).contains("greeting Ada"), "{}", text(&o.stderr));

        // Request env wins over the collection's.
        let o = faas(
            base,
            &[
                "invoke",
                "greet",
                "--collection",
                "team",
                "--env",
                "FROM=request",
                "--json",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let result: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(result["output"]["data"]["from"], "request");
        assert_eq!(result["deployment_version"], 2);

        // A failed run: exit 1, its error code on stderr.
        let o = faas(base, &["deploy", &failing]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let o = faas(base, &["invoke", "fails"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains("HANDLER_THROW"), "{}", text(&o.stderr));

        // A server-side refusal: exit 3 with the API's code.
        let o = faas(base, &["invoke", "missing"]);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains("FUNCTION_NOT_FOUND"), "{}", text(&o.stderr));

        let o = faas(base, &["ls", "--collection", "team"]);
        assert!(text(&o.stdout).contains("greet"), "{}", text(&o.stdout));
        let o = faas(base, &["get", "greet", "--collection", "team"]);
        assert!(
            text(&o.stdout).contains("export async function handler"),
            "{}",
            text(&o.stdout)
        );
        let o = faas(base, &["versions", "greet", "--collection", "team"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let o = faas(base, &["collections", "ls"]);
        assert!(text(&o.stdout).contains("team"), "{}", text(&o.stdout));
        let o = faas(base, &["rm", "fails"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let o = faas(base, &["invoke", "fails"]);
        assert_eq!(o.status.code(), Some(3));
        // Usage errors: clap's exit 2.
        let o = faas(base, &["invoke"]);
        assert_eq!(o.status.code(), Some(2));
    })
    .await;
    app.stop().await;
    outcome.unwrap();
}
