//! Black-box tests of the `faas` binary: each test starts a canned HTTP
//! server on 127.0.0.1:0 that answers fixed JSON per `METHOD path` and
//! records every request, runs the built binary against it, and checks the
//! request it sent (method, path, query, headers, body) and what it printed
//! and returned. `faas run` is tested on real handler files with `node`
//! (through the handler kit).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// One request the canned server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query, as sent.
    target: String,
    authorization: Option<String>,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A canned answer: `(method, path without query, status, body)`.
type Route = (&'static str, &'static str, u16, String);

struct Canned {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Canned {
    fn start(routes: Vec<Route>) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                serve_one(stream, &routes, &log);
            }
        });
        Canned { base, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        seen.into_iter().next().unwrap()
    }
}

fn serve_one(stream: TcpStream, routes: &[Route], log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "authorization" => authorization = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let path = target.split('?').next().unwrap_or("").to_owned();
    log.lock().unwrap().push(Seen {
        method: method.clone(),
        target,
        authorization,
        body: String::from_utf8(body).unwrap(),
    });
    let (status, body) = routes
        .iter()
        .find(|(m, p, _, _)| *m == method && *p == path)
        .map(|(_, _, s, b)| (*s, b.clone()))
        .unwrap_or((404, r#"{"error":"no such route","code":"NOT_FOUND"}"#.to_owned()));
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// Runs `faas` with `args` (no ambient URL/token) and `stdin`.
fn faas(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faas"))
        .args(args)
        .env_remove("LOWCODE_FAAS_URL")
        .env_remove("LOWCODE_FAAS_API_TOKEN")
        .env_remove("LOWCODE_FAAS_NODE_BIN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn function(id: &str, version: u64) -> String {
    json!({"id": id, "name": id.rsplit('/').next().unwrap(), "language":"javascript",
           "source_code":"export function handler(){return {ok:true}}",
           "created_at":"2026-01-02T03:04:05.678Z", "version": version,
           "deployment_id": format!("{id}@v{version}")})
    .to_string()
}

#[test]
fn deploy_posts_the_file_with_name_env_and_token() {
    let server = Canned::start(vec![(
        "POST",
        "/collections/team/functions",
        201,
        function("team/hello", 1),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.mjs");
    std::fs::write(&file, "export function handler(){return {ok:true}}").unwrap();
    let o = faas(
        &[
            "--url",
            &server.base,
            "--token",
            "s3cret",
            "deploy",
            file.to_str().unwrap(),
            "--collection",
            "team",
            "--env",
            "A=1",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "deployed team/hello version 1\n");
    let req = server.only();
    assert_eq!(req.method, "POST");
    assert_eq!(req.target, "/collections/team/functions");
    assert_eq!(req.authorization.as_deref(), Some("Bearer s3cret"));
    assert_eq!(
        req.json(),
        json!({"name":"hello","source_code":"export function handler(){return {ok:true}}","env":{"A":"1"}})
    );
}

#[test]
fn deploy_name_flag_and_root_collection() {
    // A new function: the PUT that keeps the env finds nothing, so it is
    // created (with an empty env).
    let server = Canned::start(vec![
        (
            "PUT",
            "/functions/other",
            404,
            json!({"error":"function other not found","code":"FUNCTION_NOT_FOUND"}).to_string(),
        ),
        ("POST", "/functions", 201, function("other", 1)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.mjs");
    std::fs::write(&file, "x").unwrap();
    let o = faas(
        &[
            "--url",
            &server.base,
            "deploy",
            file.to_str().unwrap(),
            "--name",
            "other",
            "--json",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let printed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(printed["version"], 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("PUT", "/functions/other")
    );
    assert_eq!(seen[0].json(), json!({"source_code":"x"}));
    assert_eq!(
        (seen[1].method.as_str(), seen[1].target.as_str()),
        ("POST", "/functions")
    );
    assert_eq!(seen[1].authorization, None);
    assert_eq!(seen[1].json(), json!({"name":"other","source_code":"x","env":{}}));
}

#[test]
fn redeploy_without_env_keeps_the_stored_env() {
    // An existing function: one PUT without `env` (the API keeps the stored
    // env), never a POST (whose absent env would wipe it).
    let server = Canned::start(vec![
        (
            "PUT",
            "/collections/team/functions/hello",
            200,
            function("team/hello", 2),
        ),
        ("POST", "/collections/team/functions", 201, function("team/hello", 9)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.mjs");
    std::fs::write(&file, "export function handler(){return {ok:true}}").unwrap();
    let o = faas(
        &["--url", &server.base, "deploy", file.to_str().unwrap(), "-c", "team"],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "deployed team/hello version 2\n");
    let req = server.only();
    assert_eq!(req.method, "PUT");
    assert_eq!(req.target, "/collections/team/functions/hello");
    assert_eq!(
        req.json(),
        json!({"source_code":"export function handler(){return {ok:true}}"})
    );
}

#[test]
fn deploy_passes_other_errors_of_the_put_through() {
    let server = Canned::start(vec![(
        "PUT",
        "/collections/nope/functions/hello",
        404,
        json!({"error":"collection nope not found","code":"COLLECTION_NOT_FOUND"}).to_string(),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.mjs");
    std::fs::write(&file, "x").unwrap();
    let o = faas(
        &["--url", &server.base, "deploy", file.to_str().unwrap(), "-c", "nope"],
        "",
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("COLLECTION_NOT_FOUND"), "{}", stderr(&o));
    assert_eq!(server.only().method, "PUT");
}

#[test]
fn invoke_sends_input_env_timeout_version_and_prints_output_and_logs() {
    let result = json!({"run_id":"run-1","status":"success","output":{"ok":true,"data":{"greeting":"hi"}},
        "error_message":"","duration_ms":12,"start_kind":"cold",
        "logs":[{"stream":"stdout","level":"log","time":"2026-01-02T03:04:05.678Z","message":"greeting Ada"}],
        "logs_truncated":false});
    let server = Canned::start(vec![(
        "POST",
        "/collections/demo/functions/hello/invoke",
        200,
        result.to_string(),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    std::fs::write(&input, r#"{"name":"Ada"}"#).unwrap();
    let spec = format!("@{}", input.display());
    let o = faas(
        &[
            "--url",
            &server.base,
            "invoke",
            "hello",
            "-c",
            "demo",
            "--input",
            &spec,
            "--env",
            "GREETING=hey",
            "--timeout",
            "5000",
            "--version",
            "1",
            "--logs",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(out, json!({"ok":true,"data":{"greeting":"hi"}}));
    assert!(stderr(&o).contains("greeting Ada"), "{}", stderr(&o));
    assert_eq!(
        server.only().json(),
        json!({"input":{"name":"Ada"},"env":{"GREETING":"hey"},"timeout_ms":5000,"version":1,"include_logs":true})
    );
}

#[test]
fn invoke_reads_input_from_stdin_and_sends_only_what_was_given() {
    let server = Canned::start(vec![(
        "POST",
        "/functions/hello/invoke",
        200,
        json!({"status":"success","output":{"ok":true}}).to_string(),
    )]);
    let o = faas(
        &["--url", &server.base, "invoke", "hello", "--input", "-"],
        r#"{"a":1}"#,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.only().json(), json!({"input":{"a":1}}));
}

#[test]
fn a_failed_run_exits_1_with_its_code() {
    let server = Canned::start(vec![(
        "POST",
        "/functions/broken/invoke",
        200,
        json!({"status":"failed","error_code":"SYNTAX_ERROR","error_message":"SyntaxError: Unexpected token",
               "output":{"ok":false,"error":"SyntaxError: Unexpected token","code":"SYNTAX_ERROR"}})
        .to_string(),
    )]);
    let o = faas(&["--url", &server.base, "invoke", "broken"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("SYNTAX_ERROR: SyntaxError: Unexpected token"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_api_error_exits_3_with_error_and_code() {
    let server = Canned::start(vec![(
        "POST",
        "/functions/nope/invoke",
        404,
        json!({"error":"function nope not found","code":"FUNCTION_NOT_FOUND"}).to_string(),
    )]);
    let o = faas(&["--url", &server.base, "invoke", "nope"], "");
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.contains("FUNCTION_NOT_FOUND") && err.contains("function nope not found"),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_exits_3() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = faas(&["--url", &format!("http://127.0.0.1:{port}"), "ls"], "");
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("cannot reach the server"), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2_and_send_nothing() {
    let server = Canned::start(vec![]);
    for args in [
        vec!["invoke", "hello", "--input", "{not json"],
        vec!["invoke", "hello", "--input", "[1,2]"],
        vec!["invoke", "hello", "--env", "NOEQUALS"],
        vec!["invoke", "bad name"],
        vec!["deploy", "/nonexistent/file.mjs"],
        vec!["frobnicate"],
    ] {
        let mut full = vec!["--url", server.base.as_str()];
        full.extend(args.iter().copied());
        let o = faas(&full, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    assert!(server.seen().is_empty());
}

#[test]
fn ls_prints_a_table_or_the_raw_json() {
    let list = json!([{"id":"demo/hello","collection_path":"demo","name":"hello","language":"javascript",
                       "version":2,"created_at":"2026-01-02T03:04:05.678Z"}]);
    let server = Canned::start(vec![("GET", "/collections/demo/functions", 200, list.to_string())]);
    let o = faas(&["--url", &server.base, "ls", "--collection", "/demo/"], "");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "NAME   VERSION  CREATED\nhello  2        2026-01-02T03:04:05.678Z\n"
    );
    let o = faas(&["--url", &server.base, "--json", "ls", "-c", "demo"], "");
    assert_eq!(serde_json::from_str::<Value>(&stdout(&o)).unwrap(), list);
    assert!(server
        .seen()
        .iter()
        .all(|s| s.method == "GET" && s.target == "/collections/demo/functions"));
}

#[test]
fn get_prints_the_source_of_a_version() {
    let server = Canned::start(vec![("GET", "/functions/hello", 200, function("hello", 2))]);
    let o = faas(&["--url", &server.base, "get", "hello", "--version", "2"], "");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "export function handler(){return {ok:true}}\n");
    assert_eq!(server.only().target, "/functions/hello?version=2");
}

#[test]
fn versions_rm_and_pull() {
    let server = Canned::start(vec![
        (
            "GET",
            "/functions/hello/versions",
            200,
            json!([{"version":2,"created_at":"T2"},{"version":1,"created_at":"T1"}]).to_string(),
        ),
        ("DELETE", "/functions/hello", 204, String::new()),
        (
            "POST",
            "/collections/a/b/functions/hello/pull",
            200,
            function("a/b/hello", 4),
        ),
    ]);
    let o = faas(&["--url", &server.base, "versions", "hello"], "");
    assert_eq!(stdout(&o), "VERSION  CREATED\n2        T2\n1        T1\n");
    let o = faas(&["--url", &server.base, "rm", "hello"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "deleted hello\n");
    let o = faas(
        &[
            "--url",
            &server.base,
            "pull",
            "hello",
            "https://example.com/h.mjs",
            "-c",
            "a/b",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "pulled a/b/hello version 4\n");
    let seen = server.seen();
    assert_eq!(seen[1].method, "DELETE");
    assert_eq!(seen[2].json(), json!({"source_url":"https://example.com/h.mjs"}));
}

#[test]
fn logs_sends_its_filters() {
    let server = Canned::start(vec![(
        "GET",
        "/function-logs",
        200,
        json!([{"run_id":"run-1","function_name":"hello","ts":"T","level":"log","message":"hi"}]).to_string(),
    )]);
    let o = faas(
        &[
            "--url",
            &server.base,
            "logs",
            "--run-id",
            "run-1",
            "--function",
            "hello",
            "--limit",
            "5",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("run-1  hi"), "{}", stdout(&o));
    assert_eq!(
        server.only().target,
        "/function-logs?run_id=run-1&function=hello&limit=5"
    );
}

#[test]
fn logs_disabled_names_the_setting_and_the_way_without_it() {
    let server = Canned::start(vec![(
        "GET",
        "/function-logs",
        404,
        json!({"error":"function log capture is off","code":"LOGS_DISABLED"}).to_string(),
    )]);
    let o = faas(&["--url", &server.base, "logs", "--function", "hello"], "");
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(err.contains("404 LOGS_DISABLED"), "{err}");
    assert!(err.contains("LOWCODE_FAAS_FUNCTION_LOGS=true"), "{err}");
    assert!(err.contains("faas invoke NAME --logs"), "{err}");
}

#[test]
fn collections_commands() {
    let server = Canned::start(vec![
        (
            "GET",
            "/collections",
            200,
            json!([{"path":"demo","created_at":"T"}]).to_string(),
        ),
        (
            "POST",
            "/collections",
            201,
            json!({"path":"demo","created_at":"T"}).to_string(),
        ),
        ("PUT", "/collections/env", 200, json!({"status":"ok"}).to_string()),
        ("PUT", "/collections/demo/env", 200, json!({"status":"ok"}).to_string()),
        ("DELETE", "/collections/demo", 204, String::new()),
    ]);
    let run = |args: &[&str]| {
        let mut full = vec!["--url", server.base.as_str(), "collections"];
        full.extend(args);
        let o = faas(&full, "");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(run(&["ls"]), "PATH  CREATED\ndemo  T\n");
    assert_eq!(run(&["create", "demo", "--env", "GREETING=hi"]), "created demo\n");
    run(&["env", "/"]);
    run(&["env", "demo", "--env", "A=1"]);
    assert_eq!(run(&["rm", "demo"]), "deleted demo\n");
    let seen = server.seen();
    assert_eq!(seen[1].json(), json!({"path":"demo","env":{"GREETING":"hi"}}));
    assert_eq!(
        (seen[2].method.as_str(), seen[2].target.as_str()),
        ("PUT", "/collections/env")
    );
    assert_eq!(seen[2].json(), json!({"env":{}}));
    assert_eq!(seen[3].json(), json!({"env":{"A":"1"}}));
    assert_eq!(
        (seen[4].method.as_str(), seen[4].target.as_str()),
        ("DELETE", "/collections/demo")
    );
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = faas(&["completions", shell], "");
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains("faas"), "{shell}");
    }
}

#[test]
fn help_has_examples() {
    let o = faas(&["invoke", "--help"], "");
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("faas invoke hello --input"));
}

fn handler_file(dir: &tempfile::TempDir, name: &str, source: &str) -> String {
    let file = dir.path().join(name);
    std::fs::write(&file, source).unwrap();
    file.to_str().unwrap().to_owned()
}

#[test]
fn run_executes_a_handler_locally_with_node() {
    let dir = tempfile::tempdir().unwrap();
    let file = handler_file(
        &dir,
        "hello.mjs",
        "export async function handler(input, context) {\n  console.log('greeting', input.name);\n  \
         return { ok: true, data: { greeting: process.env.GREETING, name: input.name, fn: context.functionName, \
         path: process.env.PATH ?? null } };\n}\n",
    );
    let o = faas(
        &["run", &file, "--input", "-", "--env", "GREETING=hi"],
        r#"{"name":"Ada"}"#,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        out,
        json!({"ok":true,"data":{"greeting":"hi","name":"Ada","fn":"hello","path":null}})
    );
    assert!(stderr(&o).contains("greeting Ada"), "{}", stderr(&o));
}

#[test]
fn run_reports_a_syntax_error_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = handler_file(&dir, "broken.mjs", "export function handler( {\n");
    let o = faas(&["run", &file], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("SYNTAX_ERROR"), "{}", stderr(&o));
}

#[test]
fn run_kills_a_handler_that_passes_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let file = handler_file(&dir, "spin.mjs", "export function handler() { for (;;) {} }\n");
    let o = faas(&["run", &file, "--timeout", "300", "--json"], "");
    assert_eq!(o.status.code(), Some(1));
    let result: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(result["error_code"], "TIMEOUT");
    assert_eq!(result["status"], "failed");
}

#[test]
fn run_returns_the_result_and_logs_an_invoke_would() {
    // The handler kit runs it: the RunResult of an invoke of version 1,
    // with `logs` in the invoke's shape (stream, level, time, message).
    let dir = tempfile::tempdir().unwrap();
    let file = handler_file(
        &dir,
        "shape.mjs",
        "export async function handler(input) {\n  console.log('one', input.n);\n  console.warn('two');\n  \
         return { ok: true, data: input.n * 2 };\n}\n",
    );
    let o = faas(&["run", &file, "--input", r#"{"n":21}"#, "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let result: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(result["status"], "success");
    assert_eq!(result["output"], json!({"ok": true, "data": 42}));
    assert_eq!(result["function_id"], "shape");
    assert_eq!(result["deployment_version"], 1);
    assert_eq!(result["deployment_id"], "shape@v1");
    assert!(result["run_id"].as_str().unwrap().starts_with("run-"), "{result}");
    assert_eq!(result["logs_truncated"], false);
    let logs = result["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "{logs:?}");
    for (entry, (stream, level, message)) in logs
        .iter()
        .zip([("stdout", "log", "one 21"), ("stderr", "warn", "two")])
    {
        let keys: Vec<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["stream", "level", "time", "message"], "{entry}");
        assert_eq!(
            (
                entry["stream"].as_str(),
                entry["level"].as_str(),
                entry["message"].as_str()
            ),
            (Some(stream), Some(level), Some(message))
        );
    }
    // Without --json the same lines go to stderr as `time level message`.
    let o = faas(&["run", &file, "--input", r#"{"n":1}"#], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<String> = stderr(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with(" log   one 1"), "{lines:?}");
    assert!(lines[1].ends_with(" warn  two"), "{lines:?}");
}

#[test]
fn run_refuses_a_missing_node_and_an_empty_file_as_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = handler_file(&dir, "ok.mjs", "export function handler() { return { ok: true }; }\n");
    let o = faas(&["run", &file, "--node", "/nonexistent/node"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Node.js"), "{}", stderr(&o));
    let empty = handler_file(&dir, "empty.mjs", "\n");
    let o = faas(&["run", &empty], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("EMPTY_SOURCE"), "{}", stderr(&o));
}

#[test]
fn url_and_token_come_from_the_environment() {
    let server = Canned::start(vec![("GET", "/collections", 200, "[]".to_owned())]);
    let o = Command::new(env!("CARGO_BIN_EXE_faas"))
        .args(["collections", "ls"])
        .env("LOWCODE_FAAS_URL", &server.base)
        .env("LOWCODE_FAAS_API_TOKEN", "from-env")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "PATH  CREATED\n");
    assert_eq!(server.only().authorization.as_deref(), Some("Bearer from-env"));
}
