//! What the soak runs against and looks at: its own S3 server, a fresh
//! PostgreSQL database, readiness, containers and processes left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Creates the database `db` through the admin DSN.
pub(crate) async fn create_database(admin_dsn: &str, db: &str) {
    use sqlx::{Connection, Executor};
    let mut admin = sqlx::PgConnection::connect(admin_dsn).await.expect("PostgreSQL");
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .await
        .unwrap();
    admin.close().await.ok();
}

/// Drops the database `db` (best effort).
pub(crate) async fn drop_database(admin_dsn: &str, db: &str) {
    use sqlx::{Connection, Executor};
    if let Ok(mut admin) = sqlx::PgConnection::connect(admin_dsn).await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
            )))
            .await;
    }
}

/// The S3 server this program starts, so it can stop and start it.
pub(crate) struct S3 {
    pub(crate) bin: PathBuf,
    pub(crate) port: u16,
    pub(crate) root: tempfile::TempDir,
    pub(crate) child: Option<Child>,
}

impl S3 {
    pub(crate) const BUCKET: &'static str = "soak";
    pub(crate) const KEY: &'static str = "soak-access";
    pub(crate) const SECRET: &'static str = "soak-secret";

    pub(crate) async fn start(&mut self) {
        std::fs::create_dir_all(self.root.path().join(Self::BUCKET)).unwrap();
        let child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", Self::KEY, "--secret-key", Self::SECRET])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `SOAK_S3FS`, else the `s3s-fs` that `cargo install` put in `$CARGO_HOME/bin`, else the `PATH`'s.
pub(crate) fn s3fs_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SOAK_S3FS") {
        return PathBuf::from(p);
    }
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    let candidate = cargo_home.join("bin/s3s-fs");
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from("s3s-fs")
    }
}

/// Runs `cmd` with `sh -c`; true when it exits 0.
pub(crate) fn shell(cmd: &str) -> bool {
    Command::new("sh").args(["-c", cmd]).status().is_ok_and(|s| s.success())
}

/// Waits (bounded) until `/readyz` says ready.
pub(crate) async fn wait_ready(base: &str, within: Duration) -> bool {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await {
            if res.status().is_success() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// The ids of the containers `docker ps -a` lists with these filters.
pub(crate) fn docker_ids(filters: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("docker");
    cmd.args(["ps", "-aq"]);
    for f in filters {
        cmd.args(["--filter", f]);
    }
    let out = cmd
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split_whitespace().map(str::to_owned).collect()
}

/// Processes whose working directory is below `dir` (the process runtime's
/// run workspaces live in the worker's `TMPDIR`).
pub(crate) fn processes_under(dir: &Path) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) {
            if cwd.starts_with(dir) {
                found.push(pid);
            }
        }
    }
    found
}
