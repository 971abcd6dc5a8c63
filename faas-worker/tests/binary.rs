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
