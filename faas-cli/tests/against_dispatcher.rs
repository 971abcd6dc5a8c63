//! The `faas` binary against a real dispatcher (the same code the
//! `faas-server` binary runs, started on 127.0.0.1:0 by the black-box
//! suite's `spawn_app`, process runtime): deploy, invoke with input, env and
//! logs, a failing run, list, get, versions, collections, rm, and the exit
//! codes of each outcome; a redeploy that keeps the function's env; an API
//! token; captured logs; collection env and removal; pull from a URL; and
//! a pinned old version (on `db_s3`, which keeps every version: the
//! `LOWCODE_FAAS_TEST_*` services of scripts/start-test-services.sh); a
//! collection the Go version could store (`t/functions`, also on `db_s3`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use faas_tests::{canned_server, db_s3_vars, spawn_app, TestApp};
use serde_json::{json, Value};

fn faas(base: &str, args: &[&str]) -> Output {
    faas_with_token(base, None, args)
}

/// `faas --url BASE ARGS`, with `LOWCODE_FAAS_API_TOKEN` set to `token`
/// (unset for `None`).
fn faas_with_token(base: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faas"));
    cmd.arg("--url")
        .arg(base)
        .args(args)
        .env_remove("LOWCODE_FAAS_API_TOKEN");
    if let Some(t) = token {
        cmd.env("LOWCODE_FAAS_API_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit status 0 and returns stdout.
fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    text(&o.stdout)
}

/// Asserts exit status 0 and parses stdout as JSON.
fn ok_json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

/// Asserts `code` as the exit status and `needle` on stderr.
fn fails(o: &Output, code: i32, needle: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
}

/// Writes `source` to `dir/file` and returns its path.
fn write(dir: &tempfile::TempDir, file: &str, source: &str) -> String {
    let path = dir.path().join(file);
    std::fs::write(&path, source).unwrap();
    path.display().to_string()
}

/// Runs the blocking `body` (which calls the binary) next to the server,
/// then stops the server, then re-raises a failed assertion.
async fn with_app(app: TestApp, body: impl FnOnce(String) + Send + 'static) {
    let base = app.base.clone();
    let outcome = tokio::task::spawn_blocking(move || body(base)).await;
    app.stop().await;
    outcome.unwrap();
}

/// A handler that returns `process.env.<key>` for every key it is given.
const ENV_ECHO: &str = "export async function handler(input) { \
    const out = {}; for (const k of input.keys ?? []) out[k] = process.env[k] ?? null; \
    return { ok: true, data: out }; }";

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

        // `files` keeps only the current version (2 by now): pinning 1 is
        // the documented VERSION_NOT_AVAILABLE.
        let o = faas(base, &["invoke", "greet", "-c", "team", "--version", "1"]);
        fails(&o, 3, "VERSION_NOT_AVAILABLE");
        // Capture is off by default: `faas logs` is the documented 404.
        fails(&faas(base, &["logs", "--function", "greet"]), 3, "LOGS_DISABLED");
        // Pull from a loopback URL: refused unless the server allows private
        // addresses.
        let o = faas(base, &["pull", "greet", "http://127.0.0.1:9/h.mjs", "-c", "team"]);
        fails(&o, 3, "SOURCE_URL_FORBIDDEN");
    })
    .await;
    app.stop().await;
    outcome.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_without_env_keeps_the_functions_env() {
    let app = spawn_app(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "echo.mjs", ENV_ECHO);
    with_app(app, move |base| {
        let base = base.as_str();
        let input = r#"{"keys":["FROM","OTHER"]}"#;
        let echo = || ok_json(&faas(base, &["invoke", "echo", "--input", input]))["data"].clone();

        assert!(ok(&faas(base, &["deploy", &file, "--env", "FROM=function"])).contains("version 1"));
        assert_eq!(echo(), json!({"FROM": "function", "OTHER": null}));

        // Without --env: version 2, same env.
        assert!(ok(&faas(base, &["deploy", &file])).contains("version 2"));
        assert_eq!(echo(), json!({"FROM": "function", "OTHER": null}));
        let f = ok_json(&faas(base, &["--json", "get", "echo"]));
        assert_eq!(
            (f["version"].clone(), f["env"].clone()),
            (json!(2), json!({"FROM": "function"}))
        );

        // With --env: the given pairs replace the whole env.
        assert!(ok(&faas(base, &["deploy", &file, "--env", "OTHER=x"])).contains("version 3"));
        assert_eq!(echo(), json!({"FROM": null, "OTHER": "x"}));

        // A new function deployed without --env starts with none.
        let fresh = write(&dir, "fresh.mjs", ENV_ECHO);
        assert!(ok(&faas(base, &["deploy", &fresh])).contains("version 1"));
        let f = ok_json(&faas(base, &["--json", "get", "fresh"]));
        assert_eq!(f["version"], 1);
        assert!(f.get("env").is_none(), "an empty env is omitted: {f}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_protected_dispatcher_needs_the_token() {
    let token = "cli-test-token-5e1f";
    let app = spawn_app(&[("LOWCODE_FAAS_API_TOKEN", token)]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "hello.mjs",
        "export function handler() { return { ok: true, data: 'hi' }; }",
    );
    with_app(app, move |base| {
        let base = base.as_str();
        // No token, or a wrong one: the server's 401 is exit 3.
        fails(&faas(base, &["ls"]), 3, "401 UNAUTHORIZED");
        fails(&faas(base, &["deploy", &file]), 3, "UNAUTHORIZED");
        let wrong = "not-the-token-9c1d";
        fails(&faas_with_token(base, Some(wrong), &["ls"]), 3, "UNAUTHORIZED");
        // The token from the environment, or from --token.
        assert!(ok(&faas_with_token(base, Some(token), &["deploy", &file])).contains("version 1"));
        let out = ok_json(&faas(base, &["--token", token, "invoke", "hello"]));
        assert_eq!(out, json!({"ok": true, "data": "hi"}));
        assert!(ok(&faas_with_token(base, Some(token), &["ls"])).contains("hello"));
        // The token never shows in what the binary prints.
        let o = faas(base, &["--token", wrong, "ls"]);
        assert!(!text(&o.stderr).contains(wrong) && !text(&o.stdout).contains(wrong));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faas_logs_reads_the_captured_logs() {
    let app = spawn_app(&[
        ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "memory"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "chatty.mjs",
        "export function handler(input) { console.log('chatty says', input.word); return { ok: true }; }",
    );
    with_app(app, move |base| {
        let base = base.as_str();
        ok(&faas(base, &["deploy", &file]));
        let first = ok_json(&faas(
            base,
            &["--json", "invoke", "chatty", "--input", r#"{"word":"one"}"#],
        ));
        ok(&faas(base, &["invoke", "chatty", "--input", r#"{"word":"two"}"#]));
        let run_id = first["run_id"].as_str().unwrap().to_owned();

        // A table of one run's entries.
        let table = ok(&faas(base, &["logs", "--run-id", &run_id]));
        let mut lines = table.lines();
        assert!(lines.next().unwrap().starts_with("TIME"), "{table}");
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), 1, "{table}");
        assert!(rows[0].contains("chatty") && rows[0].contains(&run_id), "{table}");
        assert!(rows[0].ends_with("chatty says one"), "{table}");

        // The raw entries of the function, newest first, with --limit.
        let all = ok_json(&faas(base, &["--json", "logs", "--function", "chatty"]));
        let messages: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert_eq!(messages, ["chatty says two", "chatty says one"]);
        let one = ok_json(&faas(base, &["--json", "logs", "--function", "chatty", "--limit", "1"]));
        assert_eq!(one.as_array().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_env_and_rm() {
    let app = spawn_app(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "echo.mjs", ENV_ECHO);
    with_app(app, move |base| {
        let base = base.as_str();
        let input = r#"{"keys":["REGION","ROOT"]}"#;
        let echo = || ok_json(&faas(base, &["invoke", "echo", "-c", "ops", "--input", input]))["data"].clone();
        assert_eq!(ok(&faas(base, &["collections", "create", "ops"])), "created ops\n");
        ok(&faas(base, &["deploy", &file, "-c", "ops"]));
        assert_eq!(echo(), json!({"REGION": null, "ROOT": null}));

        // Set the collection's env, and the root's (inherited below it).
        let o = faas(base, &["collections", "env", "ops", "--env", "REGION=eu"]);
        assert_eq!(ok(&o), "env of ops set (1 variables)\n");
        ok(&faas(base, &["collections", "env", "/", "--env", "ROOT=r"]));
        assert_eq!(echo(), json!({"REGION": "eu", "ROOT": "r"}));
        // No --env clears it.
        ok(&faas(base, &["collections", "env", "ops"]));
        assert_eq!(echo(), json!({"REGION": null, "ROOT": "r"}));

        // rm: refused while the collection holds a function, then done.
        fails(&faas(base, &["collections", "rm", "ops"]), 3, "COLLECTION_NOT_EMPTY");
        ok(&faas(base, &["rm", "echo", "-c", "ops"]));
        assert_eq!(ok(&faas(base, &["collections", "rm", "ops"])), "deleted ops\n");
        assert!(!ok(&faas(base, &["collections", "ls"])).contains("ops"));
        fails(&faas(base, &["collections", "rm", "ops"]), 3, "COLLECTION_NOT_FOUND");
        fails(&faas(base, &["collections", "rm", "/"]), 2, "root collection");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faas_pull_fetches_a_new_version_from_a_url() {
    // The source server is on loopback, which a dispatcher refuses unless
    // LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE is on (docs/api.md §2.6).
    let pulled = "export function handler() { return { ok: true, data: 'pulled' }; }\n";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{pulled}",
        pulled.len()
    );
    let source = canned_server(response).await;
    let app = spawn_app(&[("LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE", "true")]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "puller.mjs",
        "export function handler() { return { ok: true, data: 'local' }; }",
    );
    with_app(app, move |base| {
        let base = base.as_str();
        let url = format!("http://{source}/puller.mjs");
        // Pull needs an existing function.
        fails(&faas(base, &["pull", "puller", &url]), 3, "FUNCTION_NOT_FOUND");
        ok(&faas(base, &["deploy", &file]));
        assert_eq!(ok(&faas(base, &["pull", "puller", &url])), "pulled puller version 2\n");
        assert_eq!(ok(&faas(base, &["get", "puller"])), pulled);
        let out = ok_json(&faas(base, &["invoke", "puller"]));
        assert_eq!(out["data"], "pulled");
        // A URL the fetch cannot use: the API's code, exit 3.
        fails(
            &faas(base, &["pull", "puller", "ftp://example.com/x.mjs"]),
            3,
            "INVALID_SOURCE_URL",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_and_get_a_pinned_old_version_on_db_s3() {
    // db_s3 keeps every version; needs the LOWCODE_FAAS_TEST_* services.
    let vars = db_s3_vars().await;
    let extra: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_app(&extra).await;
    let dir = tempfile::tempdir().unwrap();
    let v1 = "export function handler() { return { ok: true, data: 'v1' }; }\n";
    let v2 = "export function handler() { return { ok: true, data: 'v2' }; }\n";
    let file = write(&dir, "pinned.mjs", v1);
    with_app(app, move |base| {
        let base = base.as_str();
        ok(&faas(base, &["deploy", &file]));
        std::fs::write(&file, v2).unwrap();
        assert!(ok(&faas(base, &["deploy", &file])).contains("version 2"));

        assert_eq!(ok_json(&faas(base, &["invoke", "pinned"]))["data"], "v2");
        let result = ok_json(&faas(base, &["--json", "invoke", "pinned", "--version", "1"]));
        assert_eq!(result["output"]["data"], "v1");
        assert_eq!(result["deployment_version"], 1);
        assert_eq!(result["deployment_id"], "pinned@v1");
        assert_eq!(ok(&faas(base, &["get", "pinned", "--version", "1"])), v1);
        assert_eq!(ok(&faas(base, &["get", "pinned"])), v2);
        let versions = ok(&faas(base, &["versions", "pinned"]));
        let listed: Vec<&str> = versions
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(listed, ["2", "1"], "{versions}");
        fails(
            &faas(base, &["invoke", "pinned", "--version", "3"]),
            3,
            "VERSION_NOT_FOUND",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_with_a_functions_segment_on_db_s3() {
    // A path the Go version could store (docs/api.md §2.2): the CLI uses
    // `/functions…?collection_path=t/functions`, which no route confuses
    // with the functions of `t`.
    let vars = db_s3_vars().await;
    let mut extra: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    extra.push(("LOWCODE_FAAS_LEGACY_NAMES", "true"));
    let app = spawn_app(&extra).await;
    let dir = tempfile::tempdir().unwrap();
    let inner = write(
        &dir,
        "g.mjs",
        "export function handler() { return { ok: true, data: 'inner' }; }\n",
    );
    let outer = write(
        &dir,
        "outer.mjs",
        "export function handler() { return { ok: true, data: 'outer' }; }\n",
    );
    with_app(app, move |base| {
        let base = base.as_str();
        let names = |cp: &str| -> Vec<String> {
            let list = ok_json(&faas(base, &["--json", "ls", "-c", cp]));
            let items = list
                .get("functions")
                .unwrap_or(&list)
                .as_array()
                .cloned()
                .unwrap_or_default();
            items.iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect()
        };
        ok(&faas(base, &["collections", "create", "t"]));
        ok(&faas(base, &["deploy", &outer, "-c", "t"]));
        assert_eq!(
            ok(&faas(base, &["collections", "create", "t/functions"])),
            "created t/functions\n"
        );
        assert!(ok(&faas(base, &["deploy", &inner, "-c", "t/functions"])).contains("version 1"));

        assert_eq!(names("t/functions"), ["g"]);
        assert_eq!(names("t"), ["outer"]);
        assert_eq!(
            ok_json(&faas(base, &["invoke", "g", "-c", "t/functions"]))["data"],
            "inner"
        );
        assert_eq!(ok_json(&faas(base, &["invoke", "outer", "-c", "t"]))["data"], "outer");
        fails(&faas(base, &["invoke", "g", "-c", "t"]), 3, "FUNCTION_NOT_FOUND");
        let versions = ok(&faas(base, &["versions", "g", "-c", "t/functions"]));
        assert!(versions.lines().skip(1).any(|l| l.starts_with('1')), "{versions}");

        ok(&faas(base, &["rm", "g", "-c", "t/functions"]));
        assert!(names("t/functions").is_empty());
        assert_eq!(names("t"), ["outer"]);
        // The env of `t/functions` has no URL the dispatcher reads as such
        // (`/collections/t/functions/env` is the function `env` of `t`): refused.
        fails(
            &faas(base, &["collections", "env", "t/functions", "--env", "A=1"]),
            2,
            "not possible",
        );
        assert_eq!(
            ok(&faas(base, &["collections", "rm", "t/functions"])),
            "deleted t/functions\n"
        );
        let listed = ok(&faas(base, &["collections", "ls"]));
        assert!(!listed.contains("t/functions"), "{listed}");
        assert_eq!(names("t"), ["outer"]);
    })
    .await;
}
