//! The soak and fault program: mixed traffic against a dispatcher that
//! forwards to a worker, on `db_s3` storage, for a configurable time, with
//! faults injected along the way. Not a test: it prints a report and writes
//! it into `docs/reliability.md` (between the `soak:start` / `soak:end`
//! markers). It exits non-zero when a version was lost or duplicated, a
//! container or process leaked, or a 5xx (or an unexpected outcome) is not
//! explained by a fault.
//!
//! ```sh
//! scripts/soak.sh            # prepares PostgreSQL + the image, builds, runs
//! ```
//!
//! Traffic (each client loops over a weighted mix): successes, business
//! failures, throws, timeouts, out-of-memory runs, oversize outputs, bad
//! requests, unknown functions, and concurrent saves of one function by
//! several savers. A client that gets a 5xx or no answer backs off for
//! 200 ms, as a real one would. Faults, in turn, every `SOAK_FAULT_EVERY_S` seconds:
//! the worker `kill -9`ed and restarted, PostgreSQL stopped and started
//! (`SOAK_PG_STOP` / `SOAK_PG_START`, shell commands), the S3 server (an
//! `s3s-fs` this program starts) stopped and started, a run container
//! killed from outside with `docker kill`, the dispatcher `kill -9`ed and
//! restarted.
//!
//! Knobs: `SOAK_SECONDS` (600), `SOAK_CLIENTS` (4), `SOAK_SAVERS` (2),
//! `SOAK_FAULT_EVERY_S` (40), `SOAK_SETTLE_S` (how long after a fault
//! ends its effects count as explained, 15), `SOAK_RUNTIME` (`docker` or
//! `process`), `SOAK_IMAGE` (`lowcode-faas/node:local`), `SOAK_PG_DSN` (an
//! admin DSN; a fresh database is created; default
//! `LOWCODE_FAAS_TEST_POSTGRES_DSN`), `SOAK_S3FS` (the `s3s-fs` binary),
//! `SOAK_NO_WRITE=1` (print only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_tests::proc_support::{free_port, Server};
use serde_json::{json, Value};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The functions the traffic uses, with what each invoke must answer.
const FUNCTIONS: &[(&str, &str)] = &[
    (
        "ok",
        "export async function handler(input) { return { ok: true, data: { n: input.n ?? 0 } }; }",
    ),
    (
        "biz",
        "export async function handler() { return { ok: false, error: 'declined', code: 'E_DECLINED' }; }",
    ),
    ("throws", "export async function handler() { throw new Error('boom'); }"),
    ("spin", "export async function handler() { for (;;) {} }"),
    (
        "oom",
        "export async function handler() { const a = []; for (;;) { a.push(new Array(1e6).fill(Math.random())); } }",
    ),
    (
        "big",
        "export async function handler() { return { ok: true, data: 'x'.repeat(7 * 1024 * 1024) }; }",
    ),
];

/// One kind of request of the mix: its weight and what it must answer.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Ok,
    Biz,
    Throws,
    Spin,
    Oom,
    Big,
    BadJson,
    Missing,
}

const MIX: &[(Kind, u32)] = &[
    (Kind::Ok, 45),
    (Kind::Biz, 12),
    (Kind::Throws, 10),
    (Kind::Spin, 4),
    (Kind::Oom, 3),
    (Kind::Big, 3),
    (Kind::BadJson, 12),
    (Kind::Missing, 11),
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Biz => "biz",
            Kind::Throws => "throws",
            Kind::Spin => "spin",
            Kind::Oom => "oom",
            Kind::Big => "big",
            Kind::BadJson => "bad-json",
            Kind::Missing => "missing",
        }
    }

    /// The outcome label a healthy system answers (see [`label`]).
    fn expected(self) -> &'static str {
        match self {
            Kind::Ok => "200 success ok",
            Kind::Biz => "200 success declined",
            Kind::Throws => "200 failed HANDLER_THROW",
            Kind::Spin => "200 failed TIMEOUT",
            Kind::Oom => "200 failed OUT_OF_MEMORY",
            Kind::Big => "200 failed OUTPUT_TOO_LARGE",
            Kind::BadJson => "400 INVALID_JSON",
            Kind::Missing => "404 FUNCTION_NOT_FOUND",
        }
    }
}

/// A small xorshift generator: the mix needs no cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self) -> Kind {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut r = (self.next() % u64::from(total)) as u32;
        for (kind, w) in MIX {
            if r < *w {
                return *kind;
            }
            r -= w;
        }
        Kind::Ok
    }
}

/// `"<status> <run status> <code>"` for a RunResult, `"<status> <code>"` for an error.
fn label(status: u16, body: &Value) -> String {
    if status == 200 && body.get("run_id").is_some() {
        let run = body["status"].as_str().unwrap_or("?");
        if run == "success" {
            let what = if body["output"]["ok"] == true { "ok" } else { "declined" };
            return format!("200 success {what}");
        }
        return format!("200 {run} {}", body["error_code"].as_str().unwrap_or("?"));
    }
    format!("{status} {}", body["code"].as_str().unwrap_or("-"))
}

/// Something that did not answer as a healthy system would.
#[derive(Debug, Clone)]
struct Oddity {
    at: Duration,
    what: String,
    server_error: bool,
}

#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, u64>,
    oddities: Vec<Oddity>,
    /// version → tokens acknowledged with it.
    acked: HashMap<u64, Vec<String>>,
    saves_uncertain: u64,
}

struct Shared {
    start: Instant,
    stop: AtomicBool,
    tally: Mutex<Tally>,
    requests: AtomicU64,
}

impl Shared {
    fn record(&self, key: String, odd: Option<(String, bool)>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut t = self.tally.lock().unwrap();
        *t.outcomes.entry(key).or_default() += 1;
        if let Some((what, server_error)) = odd {
            t.oddities.push(Oddity {
                at: self.start.elapsed(),
                what,
                server_error,
            });
        }
    }
}

async fn client_loop(shared: Arc<Shared>, base: String, seed: u64) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut rng = Rng(seed | 1);
    while !shared.stop.load(Ordering::Relaxed) {
        let kind = rng.pick();
        let name = kind.name();
        let request = match kind {
            Kind::BadJson => client
                .post(format!("{base}/functions/ok/invoke"))
                .header("content-type", "application/json")
                .body("{\"input\": "),
            Kind::Missing => client
                .post(format!("{base}/functions/no-such-function/invoke"))
                .json(&json!({})),
            Kind::Spin => client
                .post(format!("{base}/functions/spin/invoke"))
                .json(&json!({"timeout_ms": 1500})),
            Kind::Ok => client
                .post(format!("{base}/functions/ok/invoke"))
                .json(&json!({"input": {"n": rng.next() % 1000}})),
            _ => client.post(format!("{base}/functions/{name}/invoke")).json(&json!({})),
        };
        let (got, server_error) = match request.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                (label(status, &body), status >= 500)
            }
            Err(e) => (format!("transport error ({})", transport_kind(&e)), true),
        };
        let expected = kind.expected();
        let odd = (got != expected).then(|| (format!("{name}: {got}"), server_error));
        shared.record(format!("{name}: {got}"), odd);
        if server_error {
            // As a real client would: back off instead of hammering a server
            // that is down (a refused connect fails at once).
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connect"
    } else if e.is_timeout() {
        "timeout"
    } else {
        "other"
    }
}

async fn saver_loop(shared: Arc<Shared>, base: String, saver: usize) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        seq += 1;
        let token = format!("saver-{saver}-{seq}");
        let source =
            format!("// {token}\nexport async function handler() {{ return {{ ok: true, data: '{token}' }}; }}");
        let res = client
            .post(format!("{base}/functions"))
            .json(&json!({"name": "counter", "source_code": source}))
            .send()
            .await;
        let (got, server_error, version) = match res {
            Ok(res) => {
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                let version = (status == 201).then(|| body["version"].as_u64()).flatten();
                (
                    format!("{status} {}", body["code"].as_str().unwrap_or("-")),
                    status >= 500,
                    version,
                )
            }
            Err(e) => (format!("transport error ({})", transport_kind(&e)), true, None),
        };
        let key = format!("save: {got}");
        match version {
            Some(v) => {
                shared.tally.lock().unwrap().acked.entry(v).or_default().push(token);
                shared.record(key, None);
            }
            None => {
                shared.tally.lock().unwrap().saves_uncertain += 1;
                shared.record(key.clone(), Some((key, server_error)));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The S3 server this program starts, so it can stop and start it.
struct S3 {
    bin: PathBuf,
    port: u16,
    root: tempfile::TempDir,
    child: Option<Child>,
}

impl S3 {
    const BUCKET: &'static str = "soak";
    const KEY: &'static str = "soak-access";
    const SECRET: &'static str = "soak-secret";

    async fn start(&mut self) {
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

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn s3fs_binary() -> PathBuf {
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

fn shell(cmd: &str) -> bool {
    Command::new("sh").args(["-c", cmd]).status().is_ok_and(|s| s.success())
}

/// Waits (bounded) until `/readyz` says ready.
async fn wait_ready(base: &str, within: Duration) -> bool {
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

fn docker_ids(filters: &[&str]) -> Vec<String> {
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
fn processes_under(dir: &Path) -> Vec<u32> {
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

struct Window {
    fault: &'static str,
    from: Duration,
    to: Duration,
}

#[tokio::main]
async fn main() {
    let seconds: u64 = env_or("SOAK_SECONDS", 600);
    let clients: usize = env_or("SOAK_CLIENTS", 4);
    let savers: usize = env_or("SOAK_SAVERS", 2);
    let fault_every = Duration::from_secs(env_or("SOAK_FAULT_EVERY_S", 40));
    let settle = Duration::from_secs(env_or("SOAK_SETTLE_S", 15));
    let runtime: String = env_or("SOAK_RUNTIME", "docker".to_string());
    let image: String = env_or("SOAK_IMAGE", "lowcode-faas/node:local".to_string());
    let pg_stop = std::env::var("SOAK_PG_STOP").ok().filter(|s| !s.is_empty());
    let pg_start = std::env::var("SOAK_PG_START").ok().filter(|s| !s.is_empty());
    let admin_dsn = std::env::var("SOAK_PG_DSN")
        .or_else(|_| std::env::var("LOWCODE_FAAS_TEST_POSTGRES_DSN"))
        .expect("SOAK_PG_DSN (or LOWCODE_FAAS_TEST_POSTGRES_DSN) must name a PostgreSQL admin DSN");

    // Storage: a fresh database and our own S3 server.
    let db = format!("faas_soak_{}", std::process::id());
    {
        use sqlx::{Connection, Executor};
        let mut admin = sqlx::PgConnection::connect(&admin_dsn).await.expect("PostgreSQL");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
            .await
            .unwrap();
        admin.close().await.ok();
    }
    let dsn = format!(
        "{}/{db}",
        admin_dsn.rsplit_once('/').map_or(admin_dsn.as_str(), |(b, _)| b)
    );
    let mut s3 = S3 {
        bin: s3fs_binary(),
        port: free_port(),
        root: tempfile::tempdir().unwrap(),
        child: None,
    };
    s3.start().await;

    let work = tempfile::tempdir().unwrap();
    let worker_tmp = work.path().join("worker-tmp");
    std::fs::create_dir_all(&worker_tmp).unwrap();
    let instance = format!("soak-{}", std::process::id());
    // The worker reads the same storage as the dispatcher (it never writes it).
    let storage: Vec<(&str, String)> = vec![
        ("LOWCODE_FAAS_STORAGE", "db_s3".into()),
        ("LOWCODE_FAAS_POSTGRES_DSN", dsn.clone()),
        ("LOWCODE_FAAS_S3_ENDPOINT", format!("http://127.0.0.1:{}", s3.port)),
        ("LOWCODE_FAAS_S3_BUCKET", S3::BUCKET.into()),
        ("LOWCODE_FAAS_S3_ACCESS_KEY", S3::KEY.into()),
        ("LOWCODE_FAAS_S3_SECRET_KEY", S3::SECRET.into()),
        ("LOWCODE_FAAS_FUNCTION_LOGS", "false".into()),
    ];
    let mut worker_vars = storage.clone();
    worker_vars.extend([
        ("LOWCODE_FAAS_RUNTIME", runtime.clone()),
        ("LOWCODE_FAAS_NODE_DOCKER_IMAGE", image.clone()),
        ("LOWCODE_FAAS_INSTANCE_ID", instance.clone()),
        ("LOWCODE_FAAS_CONTAINER_MEMORY_MB", "128".into()),
        ("TMPDIR", worker_tmp.display().to_string()),
    ]);
    let mut worker = Server::start("faas-worker", "LOWCODE_FAAS_WORKER_LISTEN", &worker_vars, None).await;
    worker.log_to(work.path().join("worker.log"));
    let mut dispatcher_vars = storage.clone();
    dispatcher_vars.extend([
        ("LOWCODE_FAAS_WORKER_URL", worker.base.clone()),
        ("LOWCODE_FAAS_INSTANCE_ID", format!("{instance}-dispatcher")),
    ]);
    let mut dispatcher = Server::start("faas-server", "LOWCODE_FAAS_LISTEN", &dispatcher_vars, None).await;
    dispatcher.log_to(work.path().join("dispatcher.log"));
    let base = dispatcher.base.clone();
    let client = reqwest::Client::new();
    for (name, source) in FUNCTIONS {
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
    println!(
        "soak: {seconds} s, {clients} clients + {savers} savers, runtime {runtime}, a fault every {} s",
        fault_every.as_secs()
    );

    let shared = Arc::new(Shared {
        start: Instant::now(),
        stop: AtomicBool::new(false),
        tally: Mutex::new(Tally::default()),
        requests: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    for i in 0..clients {
        tasks.push(tokio::spawn(client_loop(
            shared.clone(),
            base.clone(),
            0x9E37_79B9 + i as u64 * 7919,
        )));
    }
    for i in 0..savers {
        tasks.push(tokio::spawn(saver_loop(shared.clone(), base.clone(), i)));
    }

    // Faults in turn, and RSS samples, until the time is up.
    let faults: Vec<&'static str> = [
        "worker kill -9",
        "postgres stop",
        "s3 stop",
        "container kill",
        "dispatcher kill -9",
    ]
    .into_iter()
    .filter(|f| *f != "postgres stop" || (pg_stop.is_some() && pg_start.is_some()))
    .collect();
    let skipped_pg = pg_stop.is_none() || pg_start.is_none();
    let total = Duration::from_secs(seconds);
    let mut windows: Vec<Window> = Vec::new();
    let mut rss: Vec<(u64, u64, u64)> = Vec::new();
    let mut next_fault = fault_every;
    let mut next_sample = Duration::ZERO;
    let mut fault_no = 0usize;
    let mut fault_notes: Vec<String> = Vec::new();
    while shared.start.elapsed() < total {
        let now = shared.start.elapsed();
        if now >= next_sample {
            rss.push((now.as_secs(), dispatcher.rss_kib(), worker.rss_kib()));
            next_sample += Duration::from_secs(15);
        }
        if now >= next_fault && now + Duration::from_secs(30) < total {
            let fault = faults[fault_no % faults.len()];
            fault_no += 1;
            let from = shared.start.elapsed();
            let note = match fault {
                "worker kill -9" => {
                    worker.kill9();
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    worker.spawn().await;
                    "worker restarted".to_string()
                }
                "dispatcher kill -9" => {
                    dispatcher.kill9();
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    dispatcher.spawn().await;
                    "dispatcher restarted".to_string()
                }
                "postgres stop" => {
                    let stopped = shell(pg_stop.as_deref().unwrap_or("false"));
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let started = shell(pg_start.as_deref().unwrap_or("false"));
                    format!("stop ok: {stopped}, start ok: {started}")
                }
                "s3 stop" => {
                    s3.stop();
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    s3.start().await;
                    "s3s-fs restarted".to_string()
                }
                _ => {
                    let busy = docker_ids(&[
                        &format!("label=lowcode-faas.owner={instance}"),
                        "label=lowcode-faas.run_id",
                        "status=running",
                    ]);
                    let any = docker_ids(&[&format!("label=lowcode-faas.owner={instance}"), "status=running"]);
                    match busy.first().or(any.first()) {
                        Some(id) => {
                            let ok = Command::new("docker")
                                .args(["kill", id])
                                .stdout(Stdio::null())
                                .status()
                                .is_ok_and(|s| s.success());
                            format!(
                                "docker kill {} ({}): {ok}",
                                &id[..12.min(id.len())],
                                if busy.is_empty() { "idle" } else { "busy" }
                            )
                        }
                        None => "no running container to kill".to_string(),
                    }
                }
            };
            let ready = wait_ready(&base, Duration::from_secs(90)).await;
            let to = shared.start.elapsed();
            println!(
                "  t={:>4}s fault: {fault} ({note}); ready again after {:.1} s: {ready}",
                from.as_secs(),
                (to - from).as_secs_f64()
            );
            fault_notes.push(format!(
                "{fault}: {note}, ready again after {:.1} s",
                (to - from).as_secs_f64()
            ));
            windows.push(Window {
                fault,
                from: from.saturating_sub(Duration::from_secs(1)),
                to: to + settle,
            });
            next_fault = shared.start.elapsed() + fault_every;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = shared.start.elapsed();
    rss.push((elapsed.as_secs(), dispatcher.rss_kib(), worker.rss_kib()));

    // Saved versions: every acknowledged save is there, with its source, once.
    let tally = std::mem::take(&mut *shared.tally.lock().unwrap());
    let mut lost = Vec::new();
    let mut duplicated = Vec::new();
    for (version, tokens) in &tally.acked {
        if tokens.len() > 1 {
            duplicated.push(format!("version {version} acknowledged to {tokens:?}"));
        }
        let res = client
            .get(format!("{base}/functions/counter?version={version}"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let source = body["source_code"].as_str().unwrap_or("");
        if status != 200 || !tokens.iter().any(|t| source.contains(&format!("// {t}\n"))) {
            lost.push(format!(
                "version {version} ({tokens:?}): {status} {}",
                &source[..source.len().min(40)]
            ));
        }
    }
    let listed: Vec<u64> = client
        .get(format!("{base}/functions/counter/versions"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap_or(Value::Null)
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["version"].as_u64()).collect())
        .unwrap_or_default();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != listed.len() {
        duplicated.push(format!(
            "the versions listing repeats a number ({} listed, {} distinct)",
            listed.len(),
            sorted.len()
        ));
    }
    let unacked = listed.iter().filter(|v| !tally.acked.contains_key(v)).count();

    // Shutdown and leaks.
    let dispatcher_clean = dispatcher.terminate();
    let worker_clean = worker.terminate();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut containers, mut processes);
    loop {
        containers = docker_ids(&[&format!("label=lowcode-faas.owner={instance}")]);
        processes = processes_under(&worker_tmp);
        if (containers.is_empty() && processes.is_empty()) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    s3.stop();
    {
        use sqlx::{Connection, Executor};
        if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_dsn).await {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
                )))
                .await;
        }
    }

    // Which oddities a fault explains.
    let explained = |o: &Oddity| windows.iter().find(|w| o.at >= w.from && o.at <= w.to).map(|w| w.fault);
    let mut by_fault: BTreeMap<&str, u64> = BTreeMap::new();
    let mut unexplained: Vec<&Oddity> = Vec::new();
    for o in &tally.oddities {
        match explained(o) {
            Some(f) => *by_fault.entry(f).or_default() += 1,
            None => unexplained.push(o),
        }
    }
    let unexplained_5xx = unexplained.iter().filter(|o| o.server_error).count();

    let mut report = String::new();
    let requests = shared.requests.load(Ordering::Relaxed);
    let _ = writeln!(
        report,
        "Run of `scripts/soak.sh` on {} ({} s, {clients} clients + {savers} savers, runtime `{runtime}`, storage `db_s3`, dispatcher → worker; a fault every {} s{}).\n",
        std::env::var("SOAK_MACHINE").unwrap_or_else(|_| "this project's machine (2 cores)".into()),
        elapsed.as_secs(),
        fault_every.as_secs(),
        if skipped_pg { "; PostgreSQL fault skipped: SOAK_PG_STOP/START not set" } else { "" }
    );
    let _ = writeln!(report, "| Result | Value |\n|---|---|");
    let _ = writeln!(
        report,
        "| requests | {requests} ({:.1}/s) |",
        requests as f64 / elapsed.as_secs_f64()
    );
    let _ = writeln!(report, "| faults injected | {} |", windows.len());
    let _ = writeln!(
        report,
        "| acknowledged saves | {} |",
        tally.acked.values().map(Vec::len).sum::<usize>()
    );
    let _ = writeln!(
        report,
        "| saves without an answer (fault windows) | {} |",
        tally.saves_uncertain
    );
    let _ = writeln!(
        report,
        "| versions listed / of them never acknowledged | {} / {unacked} |",
        listed.len()
    );
    let _ = writeln!(report, "| **lost versions** | **{}** |", lost.len());
    let _ = writeln!(report, "| **duplicated versions** | **{}** |", duplicated.len());
    let _ = writeln!(report, "| **leaked containers** | **{}** |", containers.len());
    let _ = writeln!(report, "| **leaked processes** | **{}** |", processes.len());
    let _ = writeln!(
        report,
        "| graceful exit at the end (dispatcher, worker) | {dispatcher_clean}, {worker_clean} |"
    );
    let _ = writeln!(
        report,
        "| unexpected answers explained by a fault | {} |",
        tally.oddities.len() - unexplained.len()
    );
    let _ = writeln!(
        report,
        "| **5xx / transport errors not explained by a fault** | **{unexplained_5xx}** |"
    );
    let _ = writeln!(
        report,
        "| other unexpected answers not explained by a fault | {} |",
        unexplained.len() - unexplained_5xx
    );
    let _ = writeln!(
        report,
        "\nRequests by outcome (`<kind>: <HTTP status> <run status> <code>`):\n"
    );
    let _ = writeln!(report, "| Outcome | Count |\n|---|---|");
    for (k, v) in &tally.outcomes {
        let _ = writeln!(report, "| `{k}` | {v} |");
    }
    let _ = writeln!(report, "\nFaults, in order:\n");
    for (i, n) in fault_notes.iter().enumerate() {
        let _ = writeln!(report, "{}. {n}", i + 1);
    }
    let _ = writeln!(report, "\nUnexpected answers per fault window: {by_fault:?}\n");
    let _ = writeln!(
        report,
        "RSS over time (MiB):\n\n| t (s) | dispatcher | worker |\n|---|---|---|"
    );
    let step = (rss.len() / 12).max(1);
    for (i, (t, d, w)) in rss.iter().enumerate() {
        if i % step == 0 || i + 1 == rss.len() {
            let _ = writeln!(
                report,
                "| {t} | {:.1} | {:.1} |",
                *d as f64 / 1024.0,
                *w as f64 / 1024.0
            );
        }
    }
    for o in unexplained.iter().take(20) {
        let _ = writeln!(report, "\n- unexplained at {:.1} s: {}", o.at.as_secs_f64(), o.what);
    }
    for l in lost.iter().chain(&duplicated).take(20) {
        let _ = writeln!(report, "\n- {l}");
    }
    if !containers.is_empty() || !processes.is_empty() {
        let _ = writeln!(report, "\n- leaked: containers {containers:?}, processes {processes:?}");
    }
    println!("\n{report}");

    if std::env::var("SOAK_NO_WRITE").is_err() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reliability.md");
        let doc = std::fs::read_to_string(&path).expect("docs/reliability.md");
        let (start, end) = ("<!-- soak:start -->", "<!-- soak:end -->");
        let (Some(a), Some(b)) = (doc.find(start), doc.find(end)) else {
            panic!("docs/reliability.md lacks the soak markers")
        };
        let updated = format!("{}{start}\n{report}{}", &doc[..a], &doc[b..]);
        std::fs::write(&path, updated).unwrap();
        println!("wrote {}", path.display());
    }
    let failed = !lost.is_empty()
        || !duplicated.is_empty()
        || !containers.is_empty()
        || !processes.is_empty()
        || unexplained_5xx > 0
        || !unexplained.is_empty();
    if failed {
        println!("soak: FAILED (see the report; logs in {})", work.keep().display());
        std::process::exit(1);
    }
}
