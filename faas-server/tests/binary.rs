//! The `faas-server` binary itself: configuration errors stop it before it
//! binds, SIGTERM shuts it down gracefully with exit code 0, and function
//! logs reach stdout in the configured format (and nothing else does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

fn server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faas-server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    cmd
}

/// Starts the binary on 127.0.0.1:0 and returns it with its address (read
/// from its "dispatcher listening" log line).
fn start(data: &std::path::Path, extra: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = server();
    cmd.env("LOWCODE_FAAS_LISTEN", "127.0.0.1:0")
        .env("LOWCODE_FAAS_RUNTIME", "process")
        .env("LOWCODE_FAAS_DATA_DIR", data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("dispatcher listening") {
            addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .map(|a| a.trim_matches('"').to_owned());
            break;
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr.expect("the dispatcher logs its address"))
}

fn terminate(mut child: Child) -> (Option<i32>, String) {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    (child.wait().unwrap().code(), stdout)
}

#[test]
fn invalid_settings_exit_non_zero_naming_the_variable() {
    for (key, value) in [
        ("LOWCODE_FAAS_FUNCTION_LOGS", "maybe"),
        ("LOWCODE_FAAS_LISTEN", "not-an-address"),
        ("LOWCODE_FAAS_STORAGE", "mongo"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "kafka"),
        ("LOWCODE_FAAS_EXECUTION_MODE", "hot"),
        ("LOWCODE_FAAS_WARM_MAX_PER_KEY", "0"),
    ] {
        let out = server().env(key, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "stderr should name {key}: {stderr}");
        assert_eq!(
            stderr.matches("configuration error").count(),
            1,
            "a configuration error is printed once: {stderr}"
        );
        assert!(out.stdout.is_empty(), "stdout stays free for function logs");
    }
    let out = server()
        .env("LOWCODE_FAAS_STORAGE", "db_s3")
        .env("LOWCODE_FAAS_S3_BUCKET", "b")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LOWCODE_FAAS_POSTGRES_DSN"));
    let out = server()
        .env("LOWCODE_FAAS_FUNCTION_LOGS", "true")
        .env("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "loki")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LOWCODE_FAAS_LOG_LOKI_URL"));
}

#[test]
fn a_configuration_error_while_building_the_dispatcher_exits_2() {
    // Valid as a setting, refused by the files store when it is built.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let out = server()
        .env("LOWCODE_FAAS_LISTEN", "127.0.0.1:0")
        .env("LOWCODE_FAAS_RUNTIME", "process")
        .env("LOWCODE_FAAS_DATA_DIR", &file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("LOWCODE_FAAS_DATA_DIR"), "{stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout stays free for function logs");
}

#[test]
fn an_unknown_variable_is_reported_with_the_nearest_known_name() {
    // Invalid on purpose, so the binary stops right after reading settings.
    let out = server()
        .env("RUST_LOG", "warn")
        .env("LOWCODE_FAAS_RUNTIMES", "process")
        .env("LOWCODE_FAAS_LISTEN", "not-an-address")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LOWCODE_FAAS_RUNTIMES"), "{stderr}");
    assert!(stderr.contains("did_you_mean=LOWCODE_FAAS_RUNTIME"), "{stderr}");
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let data = tempfile::tempdir().unwrap();
    let (child, addr) = start(data.path(), &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async { reqwest::get(format!("http://{addr}/healthz")).await.unwrap().status() });
    assert_eq!(status, 200);
    let (code, stdout) = terminate(child);
    assert_eq!(code, Some(0), "graceful shutdown exits 0");
    assert!(stdout.is_empty(), "nothing but function logs on stdout: {stdout}");
}

/// Invokes a logging function through a binary with the given sink; returns its stdout lines.
fn stdout_of_a_run(sink: &str) -> (String, Vec<String>) {
    let data = tempfile::tempdir().unwrap();
    let (child, addr) = start(
        data.path(),
        &[
            ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
            ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", sink),
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let run_id = rt.block_on(async {
        let client = reqwest::Client::new();
        let source =
            "console.log('loaded'); export async function handler(i){ console.warn('x', i.n); return {ok:true}; }";
        let r = client
            .post(format!("http://{addr}/functions"))
            .json(&serde_json::json!({"name": "talk", "source_code": source}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r: serde_json::Value = client
            .post(format!("http://{addr}/functions/talk/invoke"))
            .json(&serde_json::json!({"input": {"n": 7}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["run_id"].as_str().unwrap().to_owned()
    });
    let (code, stdout) = terminate(child);
    assert_eq!(code, Some(0));
    (run_id, stdout.lines().map(str::to_owned).collect())
}

#[test]
fn stdout_sink_prints_prefixed_lines() {
    let (run_id, lines) = stdout_of_a_run("stdout");
    assert_eq!(lines.len(), 2, "{lines:?}");
    let entries: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l.strip_prefix("[function-log] ").expect("prefixed")).unwrap())
        .collect();
    assert_eq!(entries[0]["message"], "loaded");
    assert_eq!(entries[0]["level"], "log");
    assert_eq!(entries[1]["message"], "x 7");
    assert_eq!(entries[1]["level"], "warn");
    for e in &entries {
        assert_eq!(e["run_id"], run_id.as_str());
        assert_eq!(e["function_name"], "talk");
        assert_eq!(e["deployment_id"], "talk@v1");
    }
    assert!(
        lines[0].starts_with(r#"[function-log] {"run_id":"#),
        "field order: {}",
        lines[0]
    );
}

#[test]
fn docker_json_sink_prints_json_lines_with_log_stream() {
    let (run_id, lines) = stdout_of_a_run("docker_json");
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["log_stream"], "lowcode_faas_function_execution");
        assert_eq!(e["run_id"], run_id.as_str());
    }
}

fn docker_image() -> String {
    std::env::var("LOWCODE_FAAS_NODE_DOCKER_IMAGE").unwrap_or_else(|_| "lowcode-faas/node:local".to_owned())
}

fn containers_with(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .expect("the docker CLI (tests only; the runtime uses the API)");
    assert!(out.status.success(), "docker ps failed: is the daemon running?");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls `check` every 100 ms for at most `limit` (a bounded wait on an
/// outside process, not a synchronisation sleep).
fn eventually(limit: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    check()
}

#[test]
fn a_restart_after_kill_9_removes_the_leaked_container() {
    let data = tempfile::tempdir().unwrap();
    let instance = format!("faas-binary-kill9-{}", std::process::id());
    let image = docker_image();
    let settings = [
        ("LOWCODE_FAAS_RUNTIME", "docker"),
        ("LOWCODE_FAAS_NODE_DOCKER_IMAGE", image.as_str()),
        ("LOWCODE_FAAS_PREWARM_NODE_IMAGE", "false"),
        ("LOWCODE_FAAS_INSTANCE_ID", instance.as_str()),
    ];
    let (mut child, addr) = start(data.path(), &settings);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("http://{addr}/functions"))
            .json(&serde_json::json!({
                "name": "slow",
                "source_code": "export async function handler(){ await new Promise(r => setTimeout(r, 20000)); return {ok:true}; }"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    });
    let url = format!("http://{addr}/functions/slow/invoke");
    // The invoke never answers: the dispatcher dies under it.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _ = rt.block_on(
            reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({"timeout_ms": 60000}))
                .send(),
        );
    });
    let owner = format!("lowcode-faas.owner={instance}");
    assert!(
        eventually(std::time::Duration::from_secs(30), || !containers_with(&owner)
            .is_empty()),
        "the run's container appears"
    );
    child.kill().unwrap(); // SIGKILL: no clean-up can run
    child.wait().unwrap();
    // The run's container and the prewarmed pool's.
    let leaked = containers_with(&owner);
    assert!(!leaked.is_empty(), "kill -9 leaked the containers");

    // The successor (same instance id) removes them all, then fills its own pool.
    let (child, _addr) = start(data.path(), &settings);
    assert!(
        eventually(std::time::Duration::from_secs(30), || {
            let now = containers_with(&owner);
            leaked.iter().all(|id| !now.contains(id))
        }),
        "the restarted dispatcher removed its predecessor's containers"
    );
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    assert!(
        containers_with(&owner).is_empty(),
        "a graceful shutdown removes the pool's containers"
    );
}

#[test]
fn an_unreachable_docker_daemon_is_not_fatal_and_readyz_says_so() {
    let data = tempfile::tempdir().unwrap();
    let (child, addr) = start(
        data.path(),
        &[
            ("LOWCODE_FAAS_RUNTIME", "docker"),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
            ("LOWCODE_FAAS_INSTANCE_ID", "faas-binary-nodaemon"),
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let r = client.get(format!("http://{addr}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["components"]["runtime"].is_string(), "{body}");
        let r = client
            .post(format!("http://{addr}/functions"))
            .json(&serde_json::json!({"name": "f", "source_code": "export async function handler(){return {ok:true}}"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let res: serde_json::Value = client
            .post(format!("http://{addr}/functions/f/invoke"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(res["error_code"], "RUNTIME_UNAVAILABLE", "{res}");
    });
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
}

#[test]
fn an_unreachable_database_at_start_up_is_fatal_after_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = server()
        .env("LOWCODE_FAAS_LISTEN", "127.0.0.1:0")
        .env("LOWCODE_FAAS_STORAGE", "db_s3")
        .env(
            "LOWCODE_FAAS_POSTGRES_DSN",
            format!("postgres://faas:faas@127.0.0.1:{port}/faas"),
        )
        .env("LOWCODE_FAAS_S3_BUCKET", "b")
        .env("LOWCODE_FAAS_S3_ENDPOINT", "http://127.0.0.1:9")
        .env("LOWCODE_FAAS_STORAGE_TIMEOUT_MS", "1500")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "start-up failure exits non-zero");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LOWCODE_FAAS_STORAGE=db_s3"), "{stderr}");
    assert!(
        !stderr.contains("faas:faas@"),
        "the DSN's password is never printed: {stderr}"
    );
}

#[test]
fn run_handler_prints_the_run_result() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.mjs");
    std::fs::write(
        &ok,
        "export async function handler(i){ console.log('quiet'); return {ok:true, data:{z:1, a:i.n}}; }",
    )
    .unwrap();
    let out = server()
        .args(["run-handler", ok.to_str().unwrap(), "--input", r#"{"n":5}"#])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "success");
    assert_eq!(
        result["output"],
        serde_json::json!({"ok": true, "data": {"z": 1, "a": 5}})
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.find("\"z\"").unwrap() < text.find("\"a\"").unwrap(),
        "the handler's key order is kept"
    );

    let bad = dir.path().join("bad.mjs");
    std::fs::write(&bad, "export async function handler(){ throw new Error('nope'); }").unwrap();
    let out = server().args(["run-handler", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["error_code"], "HANDLER_THROW");

    let out = server().args(["run-handler"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}

fn service_var(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("{name} is not set: run scripts/start-test-services.sh and source target/test-services.env")
    })
}

/// Settings of a fresh db_s3 storage (its own database and S3 prefix) on the test services.
fn fresh_db_s3(label: &str) -> Vec<(String, String)> {
    let admin = service_var("LOWCODE_FAAS_TEST_POSTGRES_DSN");
    let name = format!("faas_bin_{label}_{}", std::process::id());
    let out = Command::new("psql")
        .args([
            admin.as_str(),
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &format!("CREATE DATABASE \"{name}\""),
        ])
        .output()
        .expect("psql (PostgreSQL's client)");
    assert!(
        out.status.success(),
        "creating {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
    vec![
        ("LOWCODE_FAAS_STORAGE".into(), "db_s3".into()),
        ("LOWCODE_FAAS_POSTGRES_DSN".into(), format!("{base}/{name}")),
        (
            "LOWCODE_FAAS_S3_ENDPOINT".into(),
            service_var("LOWCODE_FAAS_TEST_S3_ENDPOINT"),
        ),
        (
            "LOWCODE_FAAS_S3_BUCKET".into(),
            service_var("LOWCODE_FAAS_TEST_S3_BUCKET"),
        ),
        (
            "LOWCODE_FAAS_S3_ACCESS_KEY".into(),
            service_var("LOWCODE_FAAS_TEST_S3_ACCESS_KEY"),
        ),
        (
            "LOWCODE_FAAS_S3_SECRET_KEY".into(),
            service_var("LOWCODE_FAAS_TEST_S3_SECRET_KEY"),
        ),
        ("LOWCODE_FAAS_S3_PREFIX".into(), format!("{name}/")),
    ]
}

#[test]
fn two_dispatcher_processes_saving_concurrently_never_lose_or_duplicate_a_version() {
    let storage = fresh_db_s3("replicas");
    let vars: Vec<(&str, &str)> = storage.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let data = tempfile::tempdir().unwrap();
    let (a, addr_a) = start(data.path(), &vars);
    let (b, addr_b) = start(data.path(), &vars);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut saves = Vec::new();
        for i in 1..=40u64 {
            let addr = if i % 2 == 0 { addr_a.clone() } else { addr_b.clone() };
            let client = client.clone();
            saves.push(tokio::spawn(async move {
                let source = format!("export async function handler(){{ return {{ok:true, data:{i}}}; }}");
                let r = client
                    .post(format!("http://{addr}/functions"))
                    .json(&serde_json::json!({"name": "shared", "source_code": source}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                let body: serde_json::Value = r.json().await.unwrap();
                (body["version"].as_u64().unwrap(), i)
            }));
        }
        let mut saved = Vec::new();
        for s in saves {
            saved.push(s.await.unwrap());
        }
        let mut versions: Vec<u64> = saved.iter().map(|(v, _)| *v).collect();
        versions.sort_unstable();
        assert_eq!(versions, (1..=40).collect::<Vec<_>>(), "versions 1..40, none lost or duplicated");
        for (version, i) in &saved {
            let f: serde_json::Value = client
                .get(format!("http://{addr_a}/functions/shared?version={version}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(
                f["source_code"].as_str().unwrap().contains(&format!("data:{i}}}")),
                "v{version} holds its own source"
            );
        }

        // The cache of one process sees a save through the other at the next invoke.
        let invoke = |addr: String| {
            let client = client.clone();
            async move {
                let r: serde_json::Value = client
                    .post(format!("http://{addr}/functions/shared/invoke"))
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                r
            }
        };
        assert_eq!(invoke(addr_a.clone()).await["deployment_version"], 40);
        let r = client
            .put(format!("http://{addr_b}/functions/shared"))
            .json(&serde_json::json!({"source_code": "export async function handler(){ return {ok:true, data:'latest'}; }"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let res = invoke(addr_a.clone()).await;
        assert_eq!(res["deployment_version"], 41);
        assert_eq!(res["output"]["data"], "latest");
    });
    for child in [a, b] {
        let (code, _) = terminate(child);
        assert_eq!(code, Some(0));
    }
}

#[test]
fn help_and_version_print_and_exit_0_before_reading_settings() {
    for flag in ["--help", "-h"] {
        // An invalid setting would stop a real start: help never reads settings.
        let out = server().arg(flag).env("LOWCODE_FAAS_LISTEN", "nope").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        for want in [
            "run-handler",
            "LOWCODE_FAAS_LISTEN",
            ":8080",
            "LOWCODE_FAAS_UI",
            "LOWCODE_FAAS_RUNTIME",
        ] {
            assert!(text.contains(want), "{flag} should mention {want}: {text}");
        }
    }
    for flag in ["--version", "-V"] {
        let out = server().arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
    let out = server().args(["run-handler", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--input"));
    let out = server().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-such-flag") && err.contains("Usage"), "{err}");
}

#[test]
fn the_playground_url_is_logged_at_start_up() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = server();
    cmd.env("LOWCODE_FAAS_LISTEN", "127.0.0.1:0")
        .env("LOWCODE_FAAS_RUNTIME", "process")
        .env("LOWCODE_FAAS_DATA_DIR", data.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("dispatcher listening") {
            addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .map(|a| a.trim_matches('"').to_owned());
        }
        if line.contains("playground") {
            url = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("url="))
                .map(|a| a.trim_matches('"').to_owned());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let addr = addr.expect("the dispatcher logs its address first");
    assert_eq!(url.as_deref(), Some(format!("http://{addr}/ui/").as_str()));
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
}

/// A loopback server on a thread: records each request line and answers
/// every request with `reply` (then closes the connection).
fn recording_server(reply: String) -> (std::net::SocketAddr, std::sync::mpsc::Receiver<String>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut reader = BufReader::new(sock.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push(line.trim_end().to_owned());
            }
            let length: usize = head
                .iter()
                .find_map(|h| {
                    h.to_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let _ = tx.send(head.first().cloned().unwrap_or_default());
            let _ = sock.write_all(reply.as_bytes());
        }
    });
    (addr, rx)
}

#[test]
fn proxy_variables_of_the_process_reach_the_log_sinks_but_never_the_source_fetcher() {
    // The "proxy" answers every push itself; Loki's own address is closed,
    // so an entry is only delivered through the proxy.
    let (proxy, asked) =
        recording_server("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into());
    let loki_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = "export async function handler(){ console.log('via proxy'); return {ok:true}; }";
    let (source_addr, fetched) = recording_server(format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{source}",
        source.len()
    ));
    let data = tempfile::tempdir().unwrap();
    let proxy_url = format!("http://{proxy}");
    let loki_url = format!("http://127.0.0.1:{loki_port}");
    let (child, addr) = start(
        data.path(),
        &[
            ("HTTP_PROXY", &proxy_url),
            ("https_proxy", &proxy_url),
            ("LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE", "true"),
            ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
            ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "loki"),
            ("LOWCODE_FAAS_LOG_LOKI_URL", &loki_url),
            ("LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS", "600000"),
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = client
            .post(format!("http://{addr}/functions"))
            .json(&serde_json::json!({"name": "p", "source_url": format!("http://{source_addr}/p.mjs")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "fetched directly: {}", r.text().await.unwrap());
        let r = client
            .post(format!("http://{addr}/functions/p/invoke"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    assert_eq!(
        fetched.try_recv().unwrap(),
        "GET /p.mjs HTTP/1.1",
        "the source server got the fetch"
    );
    let lines: Vec<String> = asked.try_iter().collect();
    assert_eq!(
        lines,
        [format!("POST {loki_url}/loki/api/v1/push HTTP/1.1")],
        "only the log push went through the proxy (flushed at SIGTERM)"
    );
}

/// Starts the binary on 127.0.0.1:0 keeping all of its stderr: the child,
/// its address, and the thread that returns the stderr once the child ends.
fn start_capturing(data: &std::path::Path, extra: &[(&str, &str)]) -> (Child, String, std::thread::JoinHandle<String>) {
    let mut cmd = server();
    cmd.env("LOWCODE_FAAS_LISTEN", "127.0.0.1:0")
        .env("LOWCODE_FAAS_RUNTIME", "process")
        .env("LOWCODE_FAAS_DATA_DIR", data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("dispatcher listening") {
                let addr = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("addr="))
                    .map(|a| a.trim_matches('"').to_owned());
                let _ = tx.send(addr);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(Some(addr)) => (child, addr, reader),
        _ => {
            let _ = child.kill();
            panic!("the dispatcher did not log its address: {}", reader.join().unwrap());
        }
    }
}

/// Env values (of collections, functions and requests, valid or refused)
/// and the encryption key never reach the service log, at any level.
#[test]
fn env_values_never_reach_the_service_log_at_any_level() {
    const SECRETS: [&str; 5] = [
        "collection-secret-a81f",
        "function-secret-b92e",
        "request-secret-c03d",
        "refused-secret-d14c",
        "updated-secret-e25b",
    ];
    const KEY: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
    let data = tempfile::tempdir().unwrap();
    let (child, addr, log) = start_capturing(
        data.path(),
        &[("RUST_LOG", "trace"), ("LOWCODE_FAAS_ENV_ENCRYPTION_KEY", KEY)],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let send = |method: reqwest::Method, path: &str, body: serde_json::Value| {
            client
                .request(method, format!("http://{addr}{path}"))
                .json(&body)
                .send()
        };
        use reqwest::Method;
        let source =
            "export async function handler(){ return { ok: true, data: process.env.R === 'request-secret-c03d' }; }";
        let steps = [
            (
                Method::POST,
                "/collections",
                serde_json::json!({"path": "team", "env": {"C": SECRETS[0]}}),
                201,
            ),
            (
                Method::PUT,
                "/collections/team/env",
                serde_json::json!({"env": {"C": SECRETS[0]}}),
                200,
            ),
            (
                Method::POST,
                "/collections/team/functions",
                serde_json::json!({"name": "f", "source_code": source, "env": {"F": SECRETS[1]}}),
                201,
            ),
            (
                Method::PUT,
                "/collections/team/functions/f",
                serde_json::json!({"env": {"F": SECRETS[4]}}),
                200,
            ),
            (
                Method::PUT,
                "/collections/team/env",
                serde_json::json!({"env": {"PATH": SECRETS[3], "OK": SECRETS[3]}}),
                400,
            ),
            (
                Method::POST,
                "/collections/team/functions/f/invoke",
                serde_json::json!({"env": {"R": SECRETS[2], "NODE_OPTIONS": SECRETS[3]}}),
                400,
            ),
        ];
        for (method, path, body, status) in steps {
            let r = send(method.clone(), path, body).await.unwrap();
            assert_eq!(
                r.status().as_u16(),
                status,
                "{method} {path}: {}",
                r.text().await.unwrap()
            );
        }
        let r: serde_json::Value = send(
            Method::POST,
            "/collections/team/functions/f/invoke",
            serde_json::json!({"env": {"R": SECRETS[2]}}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(r["output"]["data"], true, "the run got the real value: {r}");
    });
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    let log = log.join().unwrap();
    // RUST_LOG=trace enables every level (nothing in the tree emits TRACE
    // events on these paths; DEBUG ones show the filter let them through).
    assert!(
        log.contains("DEBUG") && log.contains("request served"),
        "the log was captured: {log}"
    );
    for secret in SECRETS.iter().chain([&KEY]) {
        assert!(!log.contains(secret), "{secret} is in the service log");
    }
}

#[test]
fn the_dispatcher_warns_when_its_api_or_worker_hop_has_no_token() {
    let data = tempfile::tempdir().unwrap();
    // A non-loopback address nobody has (TEST-NET-1): the warning comes
    // before binding, which then fails, so nothing is ever exposed.
    let open = |extra: &[(&str, &str)]| {
        let mut cmd = server();
        cmd.env("LOWCODE_FAAS_LISTEN", "192.0.2.1:0")
            .env("LOWCODE_FAAS_RUNTIME", "process")
            .env("LOWCODE_FAAS_DATA_DIR", data.path());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = open(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(
        stderr.contains("SECURITY") && stderr.contains("without LOWCODE_FAAS_API_TOKEN"),
        "{stderr}"
    );
    let (_, stderr) = open(&[("LOWCODE_FAAS_API_TOKEN", "t")]);
    assert!(!stderr.contains("SECURITY"), "{stderr}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let worker = format!("http://{closed}");
    let (child, _, log) = start_capturing(data.path(), &[("LOWCODE_FAAS_WORKER_URL", &worker)]);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    let log = log.join().unwrap();
    assert!(
        log.contains("SECURITY") && log.contains("without LOWCODE_FAAS_WORKER_TOKEN"),
        "{log}"
    );
    assert!(!log.contains("without LOWCODE_FAAS_API_TOKEN"), "loopback API: {log}");
    let (child, _, log) = start_capturing(
        data.path(),
        &[("LOWCODE_FAAS_WORKER_URL", &worker), ("LOWCODE_FAAS_WORKER_TOKEN", "t")],
    );
    terminate(child);
    assert!(!log.join().unwrap().contains("SECURITY"));
}
