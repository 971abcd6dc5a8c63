//! Server binaries run as child processes on loopback, for the benchmark and
//! the soak program: start, wait until healthy, sample RSS, `kill -9`,
//! restart on the same address, stop gracefully.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Creates the function `name` at the root of the dispatcher at `base`;
/// panics unless it answers 201 (the benchmark and the soak set up with it).
pub async fn deploy(client: &reqwest::Client, base: &str, name: &str, source: &str) {
    let res = client
        .post(format!("{base}/functions"))
        .json(&json!({"name": name, "source_code": source}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        201,
        "deploy {name}: {}",
        res.text().await.unwrap_or_default()
    );
}

/// The path of a binary built next to the running one (`target/release/…`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build --release -p faas-server -p faas-worker)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server binary running as a child process on loopback.
#[derive(Debug)]
pub struct Server {
    binary: String,
    listen_var: String,
    port: u16,
    vars: Vec<(String, String)>,
    stderr: Option<PathBuf>,
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `binary` listening on a free port (`listen_var`), with a clean
    /// environment plus `PATH`, `LOWCODE_FAAS_DATA_DIR` when `data` is given
    /// and `vars`; waits until `/healthz` answers.
    pub async fn start(
        binary: &str,
        listen_var: &str,
        vars: &[(&str, String)],
        data: Option<tempfile::TempDir>,
    ) -> Self {
        Self::start_logged(binary, listen_var, vars, data, None).await
    }

    /// [`Server::start`], appending the server's stderr to `log` when given
    /// (from this first start on).
    pub async fn start_logged(
        binary: &str,
        listen_var: &str,
        vars: &[(&str, String)],
        data: Option<tempfile::TempDir>,
        log: Option<PathBuf>,
    ) -> Self {
        let mut all: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        if let Some(data) = &data {
            all.push(("LOWCODE_FAAS_DATA_DIR".into(), data.path().display().to_string()));
        }
        let mut server = Self {
            binary: binary.to_owned(),
            listen_var: listen_var.to_owned(),
            port: free_port(),
            vars: all,
            stderr: log,
            child: None,
            base: String::new(),
            _data: data,
        };
        server.base = format!("http://127.0.0.1:{}", server.port);
        server.spawn().await;
        server
    }

    /// Appends the server's stderr to `path` (from the next start on).
    pub fn log_to(&mut self, path: PathBuf) {
        self.stderr = Some(path);
    }

    /// (Re)starts the process on the same port and waits until it is healthy.
    pub async fn spawn(&mut self) {
        let mut cmd = Command::new(sibling_binary(&self.binary));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env(&self.listen_var, format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null());
        match &self.stderr {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap();
                cmd.stderr(file);
            }
            None => {
                cmd.stderr(Stdio::null());
            }
        }
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().unwrap());
        self.wait_healthy(Duration::from_secs(120)).await;
    }

    /// Waits (bounded) until `/healthz` answers 200.
    pub async fn wait_healthy(&self, within: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(res) = client.get(format!("{}/healthz", self.base)).send().await {
                if res.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{} did not start", self.binary);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id of the running child, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The resident set size in KiB (0 when not running).
    pub fn rss_kib(&self) -> u64 {
        let Some(pid) = self.pid() else { return 0 };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Waits (bounded) until the runtime's pool holds `n` idle prewarmed runners.
    pub async fn wait_pool(&self, client: &reqwest::Client, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let body: Value = match client.get(format!("{}/readyz", self.base)).send().await {
                Ok(res) => res.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if body["runtime_status"]["pool"]["prewarm_idle"].as_u64().unwrap_or(0) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`: no clean-up of any kind runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (a graceful shutdown removes the server's containers), then
    /// waits up to a minute before resorting to SIGKILL. Returns whether the
    /// process ended by itself with exit status 0.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// [`Server::terminate`], consuming the server.
    pub fn stop(mut self) {
        self.terminate();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
    }
}
