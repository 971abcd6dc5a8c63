//! The `faas-worker` binary's own command line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

fn worker() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faas-worker"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    cmd
}

#[test]
fn help_and_version_print_and_exit_0_before_reading_settings() {
    for flag in ["--help", "-h"] {
        let out = worker()
            .arg(flag)
            .env("LOWCODE_FAAS_WORKER_LISTEN", "nope")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        for want in [
            "/v1/run",
            "LOWCODE_FAAS_WORKER_LISTEN",
            ":9090",
            "LOWCODE_FAAS_WORKER_TOKEN",
        ] {
            assert!(text.contains(want), "{flag} should mention {want}: {text}");
        }
    }
    for flag in ["--version", "-V"] {
        let out = worker().arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
    let out = worker().arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
    let out = worker().arg("run-handler").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "the worker has no subcommands");
}

/// The worker over a temp data dir with the process runtime; `Output` once it exits.
fn worker_at(listen: &str, data: &std::path::Path, extra: &[(&str, &str)]) -> Command {
    let mut cmd = worker();
    cmd.env("LOWCODE_FAAS_WORKER_LISTEN", listen)
        .env("LOWCODE_FAAS_RUNTIME", "process")
        .env("LOWCODE_FAAS_DATA_DIR", data);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn a_configuration_error_while_building_the_worker_exits_2() {
    // Valid as a setting, refused by the files store when it is built.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let out = worker_at("127.0.0.1:0", &file, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("LOWCODE_FAAS_DATA_DIR"), "{stderr}");
}

/// 192.0.2.1 (TEST-NET-1) is a non-loopback address no machine has: the
/// checks run before binding, and binding it then fails, so nothing is
/// ever exposed by these tests.
#[test]
fn a_worker_without_a_token_refuses_a_non_loopback_address() {
    let data = tempfile::tempdir().unwrap();
    let out = worker_at("192.0.2.1:0", data.path(), &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for want in [
        "refusing to start",
        "LOWCODE_FAAS_WORKER_LISTEN=192.0.2.1:0",
        "LOWCODE_FAAS_WORKER_TOKEN",
        "LOWCODE_FAAS_ALLOW_UNAUTHENTICATED",
    ] {
        assert!(stderr.contains(want), "stderr should name {want}: {stderr}");
    }
    assert_eq!(stderr.matches("configuration error").count(), 1, "{stderr}");

    // Allowed explicitly: a loud warning, then it goes on (to the bind).
    let out = worker_at(
        "192.0.2.1:0",
        data.path(),
        &[("LOWCODE_FAAS_ALLOW_UNAUTHENTICATED", "true")],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("SECURITY") && stderr.contains("cannot listen"),
        "{stderr}"
    );

    // With a token: no warning, it goes on to the bind.
    let out = worker_at("192.0.2.1:0", data.path(), &[("LOWCODE_FAAS_WORKER_TOKEN", "t")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("SECURITY") && stderr.contains("cannot listen"),
        "{stderr}"
    );
}

#[test]
fn a_worker_without_a_token_serves_on_loopback() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = worker_at("127.0.0.1:0", data.path(), &[])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("worker listening") {
            break;
        }
    }
    // Keep draining stderr so the worker never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    assert!(seen.contains("worker listening"), "{seen}");
    assert!(!seen.contains("SECURITY"), "{seen}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
