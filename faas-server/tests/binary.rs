//! The `faas-server` binary itself: configuration errors stop it before it
//! binds, and SIGTERM shuts it down gracefully with exit code 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faas-server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    cmd
}

#[test]
fn invalid_settings_exit_non_zero_naming_the_variable() {
    for (key, value) in [
        ("LOWCODE_FAAS_FUNCTION_LOGS", "maybe"),
        ("LOWCODE_FAAS_LISTEN", "not-an-address"),
        ("LOWCODE_FAAS_STORAGE", "mongo"),
    ] {
        let out = server().env(key, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "stderr should name {key}: {stderr}");
        assert!(out.stdout.is_empty(), "stdout stays free for function logs");
    }
    let out = server()
        .env("LOWCODE_FAAS_STORAGE", "db_s3")
        .env("LOWCODE_FAAS_S3_BUCKET", "b")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LOWCODE_FAAS_POSTGRES_DSN"));
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let data = tempfile::tempdir().unwrap();
    let mut child = server()
        .env("LOWCODE_FAAS_LISTEN", "127.0.0.1:0")
        .env("LOWCODE_FAAS_RUNTIME", "process")
        .env("LOWCODE_FAAS_DATA_DIR", data.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut lines = stderr.lines();
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
    let addr = addr.expect("the dispatcher logs its address");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async { reqwest::get(format!("http://{addr}/healthz")).await.unwrap().status() });
    assert_eq!(status, 200);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Drain stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");
}
