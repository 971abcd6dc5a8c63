//! The fast-starts benchmark: end-to-end HTTP invoke latency (p50/p90/p99)
//! and throughput at 1 and at 8 concurrent clients for every execution mode
//! of both runtimes, next to baselines measured in the same run (`docker run`,
//! the earlier implementation's CLI sequence, and the cold path through the
//! archive endpoints against the attached stdin, both through bollard in
//! this process), where the time goes per phase (the runtime's own debug
//! events: pool take, job sent, started frame, verdict, clean-up, pool
//! refills, container create/attach/start, node ready), how fast this
//! machine starts runners at 1, 2 and 4 at a time, and the dispatcher's own
//! overhead (store, runtime, JSON, the rest) over a runtime that answers at
//! once, the worker hop and the dispatcher's memory. Prints Markdown and
//! writes it into `docs/performance.md` (between the `bench:start` /
//! `bench:end` markers), with the targets met or missed and by how much.
//!
//! ```sh
//! scripts/build-node-image.sh
//! cargo build --release -p faas-server -p faas-worker -p faas-tests --bins
//! target/release/bench
//! ```
//!
//! Knobs: `BENCH_N` (sequential samples per series, default 40; warm series
//! take ten times as many), `BENCH_SECONDS` (length of each 8-client run
//! and of each start-rate run, default 5), `BENCH_IMAGE` (default
//! `lowcode-faas/node:local`), `BENCH_ONLY` (a comma-separated subset of
//! `baselines,starts,docker,process,overhead,dbs3,hop`), `BENCH_NO_WRITE=1`
//! (print only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_ports::ContainerRuntime;
use faas_tests::bench_support::{self, phases, Load, LogTail, Phases};
use faas_tests::proc_support::Server;
use serde_json::{json, Value};

const HELLO: &str =
    "export async function handler(input) { return { ok: true, data: { hello: input.name ?? 'world' } }; }";

/// The pool size the servers run with (the default).
const POOL: u64 = 4;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn wanted(section: &str) -> bool {
    match std::env::var("BENCH_ONLY") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|s| s.trim() == section),
        _ => true,
    }
}

/// Latency samples of one series, sorted.
#[derive(Debug, Clone, Default)]
struct Series {
    samples: Vec<Duration>,
}

impl Series {
    fn from(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self { samples }
    }

    fn pct(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples[i.min(self.samples.len() - 1)].as_secs_f64() * 1e3
    }
}

/// One concurrency level of a row: latencies, invokes/s, start kinds.
#[derive(Debug, Clone, Default)]
struct Level {
    latency: Series,
    rate: f64,
    kinds: String,
}

impl Level {
    fn of(load: Load) -> Self {
        Self {
            latency: Series::from(load.latencies),
            rate: load.rate,
            kinds: summarise_kinds(&load.kinds),
        }
    }
}

/// One row of the main table.
#[derive(Debug)]
struct Row {
    label: String,
    c1: Level,
    c8: Option<Level>,
    baseline: bool,
}

/// The phase medians of one series.
#[derive(Debug)]
struct PhaseRow {
    label: String,
    client_p50: f64,
    phases: Phases,
}

async fn deploy(client: &reqwest::Client, base: &str) {
    let res = client
        .post(format!("{base}/functions"))
        .json(&json!({"name": "hello", "source_code": HELLO}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        201,
        "deploy: {}",
        res.text().await.unwrap_or_default()
    );
}

/// One invoke; its latency and start kind.
async fn invoke(client: &reqwest::Client, url: &str, body: &Value) -> (Duration, String) {
    let started = Instant::now();
    let res = client.post(url).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    let value: Value = res.json().await.unwrap_or(Value::Null);
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{value}");
    assert_eq!(value["status"], "success", "{value}");
    (elapsed, value["start_kind"].as_str().unwrap_or("-").to_string())
}

fn summarise_kinds(kinds: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for kind in kinds {
        match counts.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind.clone(), 1)),
        }
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n` invokes one at a time (so invokes/s at one client = `n` / the wall
/// time). With `refill`, waits for that many idle pool runners before each
/// (the wait counts in the rate, not in the latency).
async fn sequential(server: &Server, client: &reqwest::Client, n: usize, refill: Option<u64>) -> Level {
    let url = format!("{}/functions/hello/invoke", server.base);
    let body = json!({"input": {"name": "bench"}});
    let (mut samples, mut kinds) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for _ in 0..n {
        if let Some(size) = refill {
            server.wait_pool(client, size).await;
        }
        let (d, kind) = invoke(client, &url, &body).await;
        samples.push(d);
        kinds.push(kind);
    }
    Level {
        rate: n as f64 / started.elapsed().as_secs_f64(),
        latency: Series::from(samples),
        kinds: summarise_kinds(&kinds),
    }
}

/// `clients` concurrent clients for `seconds`, each waiting for an idle pool
/// runner before every invoke (the wait counts in the rate, not in the
/// latency): what the pool's refills sustain.
async fn refilled_load(server: &Server, clients: usize, seconds: f64) -> Load {
    let url = format!("{}/functions/hello/invoke", server.base);
    let body = json!({"input": {"name": "bench"}});
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let per_client = (0..clients).map(|_| {
        let (url, body) = (url.clone(), body.clone());
        async move {
            let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
            let (mut latencies, mut kinds) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                server.wait_pool(&client, 1).await;
                let (d, kind) = invoke(&client, &url, &body).await;
                latencies.push(d);
                kinds.push(kind);
            }
            (latencies, kinds)
        }
    });
    let mut out = Load::default();
    for (latencies, kinds) in futures_util::future::join_all(per_client).await {
        out.latencies.extend(latencies);
        out.kinds.extend(kinds);
    }
    out.rate = out.latencies.len() as f64 / started.elapsed().as_secs_f64();
    out
}

fn run_cmd(args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{args:?} failed");
    started.elapsed()
}

/// A baseline row from sequential samples (invokes/s = 1 / mean).
fn baseline(label: String, samples: Vec<Duration>) -> Row {
    let total: f64 = samples.iter().map(Duration::as_secs_f64).sum();
    let n = samples.len();
    Row {
        label,
        c1: Level {
            latency: Series::from(samples),
            rate: n as f64 / total,
            kinds: "–".into(),
        },
        c8: None,
        baseline: true,
    }
}

/// `docker run --rm IMAGE node -e 0`.
fn docker_run_baseline(image: &str, n: usize) -> Vec<Duration> {
    run_cmd(&["docker", "run", "--rm", image, "node", "-e", "0"]);
    (0..n)
        .map(|_| run_cmd(&["docker", "run", "--rm", image, "node", "-e", "0"]))
        .collect()
}

/// The earlier implementation's per-invoke docker CLI sequence: create,
/// copy the workspace in, start attached, copy the output out, remove.
fn go_sequence_baseline(image: &str, n: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("workspace");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(ws.join("bootstrap.mjs"), include_str!("../../../js/bootstrap.mjs")).unwrap();
    std::fs::write(ws.join("function.mjs"), HELLO).unwrap();
    std::fs::write(ws.join("input.json"), r#"{"name":"bench"}"#).unwrap();
    let out = dir.path().join("output.json");
    let once = |i: usize| {
        let name = format!("lowcode-faas-bench-go-{}-{i}", std::process::id());
        let started = Instant::now();
        run_cmd(&[
            "docker",
            "create",
            "--name",
            &name,
            "-w",
            "/workspace",
            image,
            "node",
            "/workspace/bootstrap.mjs",
        ]);
        run_cmd(&[
            "docker",
            "cp",
            &format!("{}/.", ws.display()),
            &format!("{name}:/workspace"),
        ]);
        run_cmd(&["docker", "start", "-a", &name]);
        run_cmd(&[
            "docker",
            "cp",
            &format!("{name}:/workspace/output.json"),
            &out.display().to_string(),
        ]);
        run_cmd(&["docker", "rm", "-f", &name]);
        started.elapsed()
    };
    once(usize::MAX);
    (0..n).map(once).collect()
}

/// The cold path of earlier versions through the Engine API (bollard), in
/// this process: create, upload the workspace as an archive (bootstrap,
/// function, input), start, wait, download `output.json` as an archive.
/// The removal happens after the clock stops, as the runtime removes off
/// the request path.
async fn archive_path_baseline(image: &str, n: usize) -> Vec<Duration> {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{
        CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, RemoveContainerOptionsBuilder,
        StartContainerOptions, UploadToContainerOptionsBuilder, WaitContainerOptions,
    };
    use futures_util::StreamExt;
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let mut archive = tar::Builder::new(Vec::new());
    for (name, text) in [
        ("bootstrap.mjs", include_str!("../../../js/bootstrap.mjs")),
        ("function.mjs", HELLO),
        ("input.json", r#"{"name":"bench"}"#),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, text.as_bytes()).unwrap();
    }
    let archive = bytes::Bytes::from(archive.into_inner().unwrap());
    let mut samples = Vec::new();
    for i in 0..=n {
        let name = format!("lowcode-faas-bench-archive-{}-{i}", std::process::id());
        let started = Instant::now();
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["node".into(), "/workspace/bootstrap.mjs".into()]),
            working_dir: Some("/workspace".into()),
            ..ContainerCreateBody::default()
        };
        docker
            .create_container(Some(CreateContainerOptionsBuilder::default().name(&name).build()), body)
            .await
            .unwrap();
        docker
            .upload_to_container(
                &name,
                Some(UploadToContainerOptionsBuilder::default().path("/workspace").build()),
                bollard::body_full(archive.clone()),
            )
            .await
            .unwrap();
        docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .unwrap();
        let mut wait = docker.wait_container(&name, None::<WaitContainerOptions>);
        while wait.next().await.is_some() {}
        let mut output = Vec::new();
        let mut download = docker.download_from_container(
            &name,
            Some(
                DownloadFromContainerOptionsBuilder::default()
                    .path("/workspace/output.json")
                    .build(),
            ),
        );
        while let Some(chunk) = download.next().await {
            output.extend_from_slice(&chunk.unwrap());
        }
        let elapsed = started.elapsed();
        let text = String::from_utf8_lossy(&output);
        assert!(text.contains(r#""ok":true"#), "the archive path gave no result");
        docker
            .remove_container(
                &name,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .unwrap();
        if i > 0 {
            samples.push(elapsed);
        }
    }
    samples
}

/// A job of the hello function, as the engine makes them.
fn hello_job() -> faas_ports::RunJob {
    let run_id = faas_ports::RunId::generate();
    faas_ports::RunJob {
        env: [
            ("LOWCODE_FAAS_RUN_ID".to_string(), run_id.to_string()),
            ("LOWCODE_FAAS_DEPLOYMENT_ID".to_string(), "hello@v1".to_string()),
        ]
        .into(),
        run_id,
        function_id: "hello".into(),
        deployment_id: "hello@v1".into(),
        source_code: HELLO.into(),
        input_json: br#"{"name":"bench"}"#.to_vec(),
        timeout: Duration::from_secs(60),
        max_output_bytes: 6 * 1024 * 1024,
        max_log_bytes: 1024 * 1024,
    }
}

fn cold() -> faas_adapters::runner::ExecutionConfig {
    faas_adapters::runner::ExecutionConfig {
        mode: faas_adapters::runner::ExecutionMode::Cold,
        prewarm_pool_size: 0,
        ..faas_adapters::runner::ExecutionConfig::default()
    }
}

/// A runtime in `cold` mode, in this process.
enum ColdRuntime {
    Docker(Arc<faas_adapters::docker::DockerRuntime>),
    Process(Arc<faas_adapters::process::ProcessRuntime>),
}

impl ColdRuntime {
    fn new(docker: bool, image: &str, tag: &str) -> Self {
        if docker {
            Self::Docker(Arc::new(
                faas_adapters::docker::DockerRuntime::new(faas_adapters::docker::DockerConfig {
                    image: image.to_string(),
                    instance_id: format!("bench-{tag}-{}", std::process::id()),
                    prewarm_image: false,
                    execution: cold(),
                    ..faas_adapters::docker::DockerConfig::default()
                })
                .unwrap(),
            ))
        } else {
            Self::Process(Arc::new(
                faas_adapters::process::ProcessRuntime::new(faas_adapters::process::ProcessRuntimeConfig {
                    execution: cold(),
                    ..faas_adapters::process::ProcessRuntimeConfig::default()
                })
                .unwrap(),
            ))
        }
    }

    fn runtime(&self) -> Arc<dyn ContainerRuntime> {
        match self {
            Self::Docker(rt) => Arc::clone(rt) as Arc<dyn ContainerRuntime>,
            Self::Process(rt) => Arc::clone(rt) as Arc<dyn ContainerRuntime>,
        }
    }

    /// Waits for the removals under way and removes what is left.
    async fn close(self) {
        match self {
            Self::Docker(rt) => {
                rt.shutdown().await;
                rt.remove_owned_containers().await.unwrap();
            }
            Self::Process(rt) => rt.shutdown().await,
        }
    }
}

/// The cold path of today through the Engine API, in this process: the
/// Docker runtime in `cold` mode (create, attach, start, key and job over
/// the attached stdin, result over stdout; removal off the clock).
async fn attached_path_baseline(image: &str, n: usize) -> Vec<Duration> {
    let cold = ColdRuntime::new(true, image, "attached");
    let rt = cold.runtime();
    let mut samples = Vec::new();
    for i in 0..=n {
        let started = Instant::now();
        let output = rt.run(hello_job()).await.unwrap();
        if i > 0 {
            samples.push(started.elapsed());
        }
        assert!(String::from_utf8_lossy(&output.output_json).contains(r#""ok":true"#));
    }
    cold.close().await;
    samples
}

/// Cold runs per second with `parallel` of them at a time for `seconds`
/// (a fresh runtime in this process; its removals are waited for after).
async fn start_rate(docker: bool, image: &str, parallel: usize, seconds: f64) -> f64 {
    let cold = ColdRuntime::new(docker, image, &format!("starts{parallel}"));
    let rt = cold.runtime();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let workers = (0..parallel).map(|_| {
        let rt = Arc::clone(&rt);
        async move {
            let mut done = 0usize;
            while Instant::now() < deadline {
                rt.run(hello_job()).await.unwrap();
                done += 1;
            }
            done
        }
    });
    let done: usize = futures_util::future::join_all(workers).await.into_iter().sum();
    let rate = done as f64 / started.elapsed().as_secs_f64();
    // The removals of this level finish before the next one starts.
    cold.close().await;
    rate
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let version = |cmd: &[&str]| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "{} cores ({cpu}), {:.1} GiB RAM, Docker Engine {}, node {} on the host and in the image, release build, loopback",
        cores(),
        mem_kib as f64 / 1024.0 / 1024.0,
        version(&["docker", "version", "--format", "{{.Server.Version}}"]),
        version(&["node", "--version"]),
    )
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

fn fmt_rate(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// `met`, or `missed by N %` (relative to the target) for a value that
/// must stay at most (`at_most`) or at least the target.
fn verdict(value: f64, target: f64, at_most: bool) -> String {
    if value.is_nan() {
        return "not measured".into();
    }
    let met = if at_most { value <= target } else { value >= target };
    if met {
        "met".into()
    } else {
        format!("missed by {:.0} %", ((value - target).abs() / target) * 100.0)
    }
}

/// `bench --serve-instant`: serves [`faas_tests::bench_support::instant_dispatcher`]
/// and prints its base URL, until killed (the overhead measured with `wrk`
/// from another process).
async fn serve_instant(memory: bool) {
    let (base, _server, _data) = bench_support::instant_dispatcher(memory).await;
    println!("{base}");
    std::future::pending::<()>().await;
}

/// Invokes/s of the instant dispatcher in a child process, loaded by `wrk`
/// (one thread, `connections` keep-alive connections): a load generator far
/// lighter than this program's own client. `None` when `wrk` is missing.
fn overhead_with_wrk(connections: usize, seconds: f64, store: &str) -> Option<f64> {
    use std::io::BufRead;
    if Command::new("wrk").arg("--version").output().is_err() {
        return None;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve-instant")
        .arg(store)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut base = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut base)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        "wrk.method = \"POST\"\nwrk.body = '{\"input\":{\"k\":1}}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .unwrap();
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{}s", seconds.ceil() as u64),
        ])
        .arg("-s")
        .arg(&script)
        .arg(format!("{}/functions/noop/invoke", base.trim()))
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Where an instant invoke's time goes, with `files` or the in-memory store.
#[derive(Debug)]
struct Overhead {
    store: &'static str,
    /// Sequential invokes from a client in this process.
    c1: Series,
    store_calls: f64,
    store_us: f64,
    runtime_us: f64,
    json_us: f64,
    /// 64 concurrent clients in this process.
    c64_rate: f64,
    c64_store_us: f64,
    /// `wrk` (its own process) at 64 connections.
    wrk: Option<f64>,
}

impl Overhead {
    /// What is left of the c=1 median after the measured parts: hyper,
    /// routing, the engine's bookkeeping, the client.
    fn rest_us(&self) -> f64 {
        self.c1.pct(0.5) * 1e3 - self.store_us - self.runtime_us - self.json_us
    }
}

/// Microseconds to parse a request body and the answer, and serialise the
/// answer again: the JSON an invoke costs the dispatcher, roughly.
fn json_cost_us(request: &[u8], answer: &[u8]) -> f64 {
    let rounds = 20_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let req: Value = serde_json::from_slice(std::hint::black_box(request)).unwrap();
        let ans: Value = serde_json::from_slice(std::hint::black_box(answer)).unwrap();
        std::hint::black_box(serde_json::to_vec(&ans).unwrap());
        std::hint::black_box(req);
    }
    started.elapsed().as_secs_f64() * 1e6 / rounds as f64
}

async fn overhead(memory: bool, n: usize, seconds: f64) -> Overhead {
    let (base, server, _data, timings) = bench_support::instant_dispatcher_timed(memory).await;
    let url = format!("{base}/functions/noop/invoke");
    let body = json!({"input": {"k": 1}});
    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let mut answer = Vec::new();
    for _ in 0..200 {
        answer = client
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
    }
    let (store0, runtime0) = (timings.store.read(), timings.runtime.read());
    let mut samples = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let res = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let _ = res.bytes().await.unwrap();
        samples.push(started.elapsed());
    }
    let (store1, runtime1) = (timings.store.read(), timings.runtime.read());
    let per = |a: (u64, u64), b: (u64, u64)| ((b.0 - a.0) as f64 / n as f64, (b.1 - a.1) as f64 / 1e3 / n as f64);
    let (store_calls, store_us) = per(store0, store1);
    let (_, runtime_us) = per(runtime0, runtime1);
    let json_us = json_cost_us(&serde_json::to_vec(&body).unwrap(), &answer);
    let before = timings.store.read();
    let loaded = bench_support::load(&url, body, 64, seconds).await;
    let after = timings.store.read();
    let invokes = loaded.latencies.len().max(1) as f64;
    server.shutdown().await;
    let store = if memory { "in-memory" } else { "`files`" };
    Overhead {
        store,
        c1: Series::from(samples),
        store_calls,
        store_us,
        runtime_us,
        json_us,
        c64_rate: loaded.rate,
        c64_store_us: (after.1 - before.1) as f64 / 1e3 / invokes,
        wrk: overhead_with_wrk(64, seconds, if memory { "memory" } else { "files" }),
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--serve-instant") {
        serve_instant(std::env::args().any(|a| a == "memory")).await;
        return;
    }
    let n: usize = env_or("BENCH_N", 40);
    let seconds: f64 = env_or("BENCH_SECONDS", 5.0);
    let image = std::env::var("BENCH_IMAGE").unwrap_or_else(|_| "lowcode-faas/node:local".into());
    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut rows: Vec<Row> = Vec::new();
    let mut phase_rows: Vec<PhaseRow> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut gaps: Vec<String> = Vec::new();
    let mut idle_rss_mb = f64::NAN;
    // Cold runs/s at 1, 2 and 4 at a time, per runtime.
    let mut starts: Vec<(&str, Vec<(usize, f64)>)> = Vec::new();

    if wanted("baselines") {
        println!("baselines …");
        rows.push(baseline(
            format!("`docker run --rm {image} node -e 0`"),
            docker_run_baseline(&image, n),
        ));
        rows.push(baseline(GO_SEQUENCE.into(), go_sequence_baseline(&image, n)));
        rows.push(baseline(ARCHIVE_PATH.into(), archive_path_baseline(&image, n).await));
        rows.push(baseline(ATTACHED_PATH.into(), attached_path_baseline(&image, n).await));
    }

    if wanted("starts") {
        for (runtime, docker) in [("docker", true), ("process", false)] {
            println!("{runtime} start rate …");
            let mut levels = Vec::new();
            for parallel in [1, 2, 4] {
                levels.push((parallel, start_rate(docker, &image, parallel, seconds).await));
            }
            starts.push((runtime, levels));
        }
    }

    for runtime in ["docker", "process"] {
        if !wanted(runtime) {
            continue;
        }
        for mode in ["cold", "prewarm", "warm"] {
            println!("{runtime} {mode} …");
            let log = logs.path().join(format!("{runtime}-{mode}.log"));
            let vars = vec![
                ("LOWCODE_FAAS_RUNTIME", runtime.to_string()),
                ("LOWCODE_FAAS_EXECUTION_MODE", mode.to_string()),
                ("LOWCODE_FAAS_PREWARM_POOL_SIZE", POOL.to_string()),
                ("LOWCODE_FAAS_NODE_DOCKER_IMAGE", image.clone()),
                ("LOWCODE_FAAS_PREWARM_NODE_IMAGE", "false".into()),
                (
                    "LOWCODE_FAAS_INSTANCE_ID",
                    format!("bench-{}-{runtime}-{mode}", std::process::id()),
                ),
                // The runtime's phase events, one JSON line per run.
                (
                    "RUST_LOG",
                    "warn,faas_adapters::runner=debug,faas_adapters::docker::launcher=debug".into(),
                ),
                ("LOWCODE_FAAS_LOG_FORMAT", "json".into()),
            ];
            let server = Server::start_logged(
                "faas-server",
                "LOWCODE_FAAS_LISTEN",
                &vars,
                Some(tempfile::tempdir().unwrap()),
                Some(log.clone()),
            )
            .await;
            let idle_rss = server.rss_kib();
            deploy(&client, &server.base).await;
            let samples = if mode == "warm" { n * 10 } else { n };
            // Warm-up: connections, caches, and (warm) the runner.
            sequential(&server, &client, 2, None).await;
            let mut tail = LogTail::new(log.clone());
            let label = format!("{runtime} runtime, `{mode}`");
            if mode == "prewarm" {
                let refilled = format!("{label}, pool refilled between invokes");
                let c1 = sequential(&server, &client, n, Some(POOL)).await;
                phase_rows.push(PhaseRow {
                    label: format!("{refilled}, 1 client"),
                    client_p50: c1.latency.pct(0.5),
                    phases: phases(&tail.take()),
                });
                let c8 = Level::of(refilled_load(&server, 8, seconds).await);
                phase_rows.push(PhaseRow {
                    label: format!("{refilled}, 8 clients (each waits for an idle runner)"),
                    client_p50: c8.latency.pct(0.5),
                    phases: phases(&tail.take()),
                });
                rows.push(Row {
                    label: refilled,
                    c1,
                    c8: Some(c8),
                    baseline: false,
                });
            }
            let label = if mode == "prewarm" {
                format!("{label}, back to back")
            } else {
                label
            };
            if mode != "cold" {
                server.wait_pool(&client, POOL).await;
                tail.take();
            }
            let c1 = sequential(&server, &client, samples, None).await;
            phase_rows.push(PhaseRow {
                label: format!("{label}, 1 client"),
                client_p50: c1.latency.pct(0.5),
                phases: phases(&tail.take()),
            });
            if mode != "cold" {
                server.wait_pool(&client, POOL).await;
                tail.take();
            }
            let url = format!("{}/functions/hello/invoke", server.base);
            let c8 = Level::of(bench_support::load(&url, json!({"input": {"name": "bench"}}), 8, seconds).await);
            phase_rows.push(PhaseRow {
                label: format!("{label}, 8 clients"),
                client_p50: c8.latency.pct(0.5),
                phases: phases(&tail.take()),
            });
            let loaded_rss = server.rss_kib();
            rows.push(Row {
                label,
                c1,
                c8: Some(c8),
                baseline: false,
            });
            if runtime == "docker" && mode == "prewarm" {
                idle_rss_mb = idle_rss as f64 / 1024.0;
                notes.push(format!(
                    "Dispatcher RSS (Docker runtime, `prewarm`, files storage): {idle_rss_mb:.1} MB idle after start, {:.1} MB after the load above.",
                    loaded_rss as f64 / 1024.0
                ));
            }
            server.stop();
        }
    }

    let mut overheads: Vec<Overhead> = Vec::new();
    if wanted("overhead") {
        println!("dispatcher overhead …");
        for memory in [false, true] {
            overheads.push(overhead(memory, n * 50, seconds).await);
        }
    }

    if wanted("dbs3") {
        match std::env::var("LOWCODE_FAAS_TEST_POSTGRES_DSN") {
            Err(_) => notes.push(
                "PostgreSQL queries per invoke: not measured in this run (start scripts/start-test-services.sh and source its env file).".into(),
            ),
            Ok(_) => {
                println!("db_s3 queries per invoke …");
                let c = db_s3_costs(&client, n * 5, seconds).await;
                notes.push(format!(
                    "`db_s3` per invoke (process runtime, `warm`, a function in a collection {} levels deep; PostgreSQL transactions counted in `pg_stat_database`, S3 GETs by a counting proxy): function cache hit, {} invokes: **{:.2}** queries, **{:.2}** S3 GETs; cache miss (first invoke of {} functions): **{:.2}** queries, **{:.2}** S3 GETs. The revision query on its own connection while 8 clients invoke ({:.0} invokes/s): p50 {}, p99 {} ({} samples).",
                    c.depth, c.invokes, c.hit_queries, c.hit_gets, c.misses, c.miss_queries, c.miss_gets,
                    c.revision_load, fmt_ms(c.revision.pct(0.5)), fmt_ms(c.revision.pct(0.99)), c.revision.samples.len()
                ));
            }
        }
    }

    if wanted("hop") {
        println!("worker hop …");
        let data = tempfile::tempdir().unwrap();
        let token = "bench-token".to_string();
        let worker_vars = vec![
            ("LOWCODE_FAAS_RUNTIME", "process".to_string()),
            ("LOWCODE_FAAS_EXECUTION_MODE", "warm".to_string()),
            ("LOWCODE_FAAS_WORKER_TOKEN", token.clone()),
            ("LOWCODE_FAAS_DATA_DIR", data.path().display().to_string()),
        ];
        let worker = Server::start("faas-worker", "LOWCODE_FAAS_WORKER_LISTEN", &worker_vars, None).await;
        let dispatcher_vars = vec![
            ("LOWCODE_FAAS_WORKER_URL", worker.base.clone()),
            ("LOWCODE_FAAS_WORKER_TOKEN", token.clone()),
            ("LOWCODE_FAAS_DATA_DIR", data.path().display().to_string()),
        ];
        let dispatcher = Server::start("faas-server", "LOWCODE_FAAS_LISTEN", &dispatcher_vars, None).await;
        deploy(&client, &dispatcher.base).await;
        let via = format!("{}/functions/hello/invoke", dispatcher.base);
        let direct = format!("{}/v1/run", worker.base);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let run_body = json!({"function_name": "hello", "input": {"name": "bench"}});
        let invoke_body = json!({"input": {"name": "bench"}});
        for round in 0..(n * 10 / 20).max(1) + 1 {
            for _ in 0..20 {
                let started = Instant::now();
                let res = client
                    .post(&direct)
                    .bearer_auth(&token)
                    .json(&run_body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status().as_u16(), 200);
                let _ = res.bytes().await.unwrap();
                if round > 0 {
                    a.push(started.elapsed());
                }
                let (d, _) = invoke(&client, &via, &invoke_body).await;
                if round > 0 {
                    b.push(d);
                }
            }
        }
        let (a, b) = (Series::from(a), Series::from(b));
        notes.push(format!(
            "Worker hop (process runtime, `warm`, {} interleaved invokes each): worker `/v1/run` direct p50 {}, through the dispatcher p50 {}: the hop adds {} at p50, {} at p99.",
            a.samples.len(),
            fmt_ms(a.pct(0.5)),
            fmt_ms(b.pct(0.5)),
            fmt_ms(b.pct(0.5) - a.pct(0.5)),
            fmt_ms(b.pct(0.99) - a.pct(0.99)),
        ));
        dispatcher.stop();
        worker.stop();
    }

    let find = |label: &str| rows.iter().find(|r| r.label == label);
    let docker_run_p50 = rows
        .iter()
        .find(|r| r.baseline && r.label.starts_with("`docker run"))
        .map(|r| r.c1.latency.pct(0.5));
    let go_p50 = find(GO_SEQUENCE).map(|r| r.c1.latency.pct(0.5));
    if let (Some(archive), Some(attached)) = (find(ARCHIVE_PATH), find(ATTACHED_PATH)) {
        notes.push(format!(
            "Cold through the Engine API in this process: over the archive endpoints p50 {}, over the attached stdin p50 {} ({:.2}× the archive path).",
            fmt_ms(archive.c1.latency.pct(0.5)),
            fmt_ms(attached.c1.latency.pct(0.5)),
            attached.c1.latency.pct(0.5) / archive.c1.latency.pct(0.5),
        ));
    }
    if let (Some(go), Some(warm)) = (go_p50, find("docker runtime, `warm`")) {
        notes.push(format!(
            "Docker `warm` p50 is {:.0}× faster than the earlier implementation's CLI sequence.",
            go / warm.c1.latency.pct(0.5)
        ));
    }

    let mut table = String::new();
    table.push_str(&format!("Measured {} on {}.\n\n", chrono_like_now(), machine()));
    table.push_str(
        "| | 1 client: p50 | p90 | p99 | invokes/s | 8 clients: p50 | p90 | p99 | invokes/s | × `docker run` p50 | start kinds (1 client; 8 clients) |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in &rows {
        let ratio = docker_run_p50.map_or("–".to_string(), |base| {
            format!("{:.2}×", row.c1.latency.pct(0.5) / base)
        });
        let (p50, p90, p99, rate, kinds8) = match &row.c8 {
            Some(c8) => (
                fmt_ms(c8.latency.pct(0.5)),
                fmt_ms(c8.latency.pct(0.9)),
                fmt_ms(c8.latency.pct(0.99)),
                fmt_rate(c8.rate),
                format!("; {}", c8.kinds),
            ),
            None => ("–".into(), "–".into(), "–".into(), "–".into(), String::new()),
        };
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {p50} | {p90} | {p99} | {rate} | {ratio} | {}{kinds8} |\n",
            row.label,
            fmt_ms(row.c1.latency.pct(0.5)),
            fmt_ms(row.c1.latency.pct(0.9)),
            fmt_ms(row.c1.latency.pct(0.99)),
            fmt_rate(row.c1.rate),
            row.c1.kinds,
        ));
    }
    table.push('\n');
    for note in &notes {
        table.push_str(&format!("- {note}\n"));
    }

    if !starts.is_empty() {
        table.push_str("\n**Cold starts per second** (the runtime in `cold` mode in this process, hello world, runs started back to back by 1, 2 or 4 workers):\n\n| runtime | 1 at a time | 2 at a time | 4 at a time |\n|---|---|---|---|\n");
        for (runtime, levels) in &starts {
            let cell = |k: usize| {
                levels
                    .iter()
                    .find(|(p, _)| *p == k)
                    .map_or("–".into(), |(_, r)| fmt_rate(*r))
            };
            table.push_str(&format!("| {runtime} | {} | {} | {} |\n", cell(1), cell(2), cell(4)));
        }
    }

    if !phase_rows.is_empty() {
        table.push_str("\n**Where the time goes per run** (medians in ms of the runtime's debug events `Run phases.`, `Pool runner started.`, `Runner container started.`, `Runner ready.` in the same run; *runtime* = take + own start + job + clean-up, *HTTP + dispatcher* ≈ client p50 − runtime):\n\n| series | runs (cold) | client p50 | runtime | HTTP + dispatcher | take | own start (cold runs) | job sent | started frame | verdict | clean-up | refills in flight | pool starts | pool start | create | attach | start | node ready |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for row in &phase_rows {
            let p = &row.phases;
            let num = |v: f64| if v.is_nan() { "–".into() } else { format!("{v:.2}") };
            table.push_str(&format!(
                "| {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                row.label,
                p.runs,
                p.cold,
                num(row.client_p50),
                num(p.server()),
                num(row.client_p50 - p.server()),
                num(p.take),
                num(p.launch),
                num(p.send),
                num(p.started),
                num(p.serve),
                num(p.end_job),
                num(p.launching),
                p.pool_launches,
                num(p.pool_launch),
                num(p.create),
                num(p.attach),
                num(p.start),
                num(p.ready),
            ));
        }
    }

    if !overheads.is_empty() {
        table.push_str(&format!(
            "\n**Dispatcher overhead** (the real dispatcher over a runtime that answers at once; µs per invoke; 1 client: {} sequential invokes from this process; 64 clients: {seconds} s from this process, and from `wrk` in its own process, 1 thread, 64 connections, on the same {} cores):\n\n| store | 1 client p50 | store calls | store | runtime | JSON (request + answer) | rest: HTTP, routing, engine, client | 64 clients, invokes/s | store at 64 clients | `wrk`, invokes/s |\n|---|---|---|---|---|---|---|---|---|---|\n",
            n * 50,
            cores(),
        ));
        for o in &overheads {
            table.push_str(&format!(
                "| {} | {:.0} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {} |\n",
                o.store,
                o.c1.pct(0.5) * 1e3,
                o.store_calls,
                o.store_us,
                o.runtime_us,
                o.json_us,
                o.rest_us(),
                o.c64_rate,
                o.c64_store_us,
                o.wrk.map_or("not installed".into(), |r| format!("{r:.0}")),
            ));
        }
    }

    // The targets of issue #11, met or missed.
    let mut targets: Vec<(String, String, String)> = Vec::new();
    if let (Some(base), Some(cold)) = (docker_run_p50, find("docker runtime, `cold`")) {
        let ratio = cold.c1.latency.pct(0.5) / base;
        targets.push((
            "`cold` p50 ≤ 1.0× `docker run`".into(),
            format!("{} = {ratio:.2}× ({})", fmt_ms(cold.c1.latency.pct(0.5)), fmt_ms(base)),
            verdict(ratio, 1.0, true),
        ));
    }
    if let Some(b2b) = find("docker runtime, `prewarm`, back to back") {
        let p = b2b.c1.latency.pct(0.5);
        let refilled = find("docker runtime, `prewarm`, pool refilled between invokes").map_or(String::new(), |r| {
            format!(
                " ({} with the pool refilled between invokes)",
                fmt_ms(r.c1.latency.pct(0.5))
            )
        });
        targets.push((
            "`prewarm` p50 ≤ 30 ms (back to back, 1 client)".into(),
            format!("{}{refilled}", fmt_ms(p)),
            verdict(p, 30.0, true),
        ));
        if p > 30.0 {
            gaps.push(prewarm_gap("docker", &rows, &phase_rows, &starts));
        }
    }
    if let Some(warm) = find("docker runtime, `warm`") {
        let p = warm.c1.latency.pct(0.5);
        targets.push(("`warm` p50 ≤ 3 ms".into(), fmt_ms(p), verdict(p, 3.0, true)));
        if let Some(c8) = &warm.c8 {
            targets.push((
                "`warm` ≥ 1 000 invokes/s at 8 clients".into(),
                fmt_rate(c8.rate),
                verdict(c8.rate, 1000.0, false),
            ));
        }
        if let Some(go) = go_p50 {
            targets.push((
                "`warm` ≥ 100× faster than the earlier CLI sequence".into(),
                format!("{:.0}× ({} against {})", go / p, fmt_ms(p), fmt_ms(go)),
                verdict(go / p, 100.0, false),
            ));
        }
    }
    if let Some(warm) = find("process runtime, `warm`") {
        let p = warm.c1.latency.pct(0.5);
        targets.push((
            "process runtime `warm` p50 ≤ 2 ms".into(),
            fmt_ms(p),
            verdict(p, 2.0, true),
        ));
    }
    for o in &overheads {
        let rate = o.wrk.unwrap_or(o.c64_rate);
        let how = if o.wrk.is_some() {
            "`wrk`"
        } else {
            "clients in this process"
        };
        targets.push((
            format!("dispatcher overhead ≥ 20 000 invokes/s ({} store)", o.store),
            format!("{rate:.0} ({how}; {:.0} with clients in this process)", o.c64_rate),
            verdict(rate, 20_000.0, false),
        ));
    }
    if let Some(o) = overheads.iter().find(|o| o.store == "`files`") {
        if o.wrk.unwrap_or(o.c64_rate) < 20_000.0 {
            gaps.push(overhead_gap(&overheads));
        }
    }
    if !idle_rss_mb.is_nan() {
        targets.push((
            "dispatcher idle RSS ≤ 25 MB".into(),
            format!("{idle_rss_mb:.1} MB"),
            verdict(idle_rss_mb, 25.0, true),
        ));
    }
    if !targets.is_empty() {
        table.push_str("\n**Against the targets** (issue #11; this run):\n\n| target | measured | |\n|---|---|---|\n");
        for (target, measured, verdict) in &targets {
            table.push_str(&format!("| {target} | {measured} | {verdict} |\n"));
        }
    }
    for gap in &gaps {
        table.push_str(&format!("\n{gap}\n"));
    }
    println!("\n{table}");
    if std::env::var("BENCH_NO_WRITE").is_err() {
        write_into_docs(&table);
    }
}

const GO_SEQUENCE: &str = "earlier implementation's CLI sequence (create, cp in, start -a, cp out, rm -f)";
const ARCHIVE_PATH: &str = "cold over the archive endpoints (bollard: create, put archive, start, wait, get archive)";
const ATTACHED_PATH: &str = "cold over the attached stdin (bollard: create, attach, start, key + job in, result out)";

/// Where back-to-back `prewarm` invokes of `runtime` lose their time, and
/// what would close the gap to 30 ms, from this run's numbers.
fn prewarm_gap(runtime: &str, rows: &[Row], phase_rows: &[PhaseRow], starts: &[(&str, Vec<(usize, f64)>)]) -> String {
    let row = |label: String| rows.iter().find(|r| r.label == label);
    let phase = |label: String| phase_rows.iter().find(|r| r.label == label).map(|r| &r.phases);
    let base = format!("{runtime} runtime, `prewarm`");
    let (Some(b2b), Some(p)) = (
        row(format!("{base}, back to back")),
        phase(format!("{base}, back to back, 1 client")),
    ) else {
        return String::new();
    };
    let refilled = phase(format!("{base}, pool refilled between invokes, 1 client"));
    let p50 = b2b.c1.latency.pct(0.5);
    let mut text = format!(
        "**`prewarm` back to back, {runtime} runtime: p50 {} against 30 ms.** Of {} runs at one client, {} found the pool empty and started their own runner (own start p50 {}: create {}, attach {}, start {}, node ready {}). Runs the pool served spent {} taking the runner, {} to the verdict of their job and {} cleaning up",
        fmt_ms(p50),
        p.runs,
        p.cold,
        fmt_ms(p.launch),
        fmt_ms(p.create),
        fmt_ms(p.attach),
        fmt_ms(p.start),
        fmt_ms(p.ready),
        fmt_ms(p.take),
        fmt_ms(p.serve),
        fmt_ms(p.end_job),
    );
    if let Some(r) = refilled {
        text.push_str(&format!(
            ", against {} to the verdict with the pool refilled between invokes",
            fmt_ms(r.serve)
        ));
    }
    let refill_rate = if p.pool_launch > 0.0 {
        2000.0 / p.pool_launch
    } else {
        f64::NAN
    };
    text.push_str(&format!(
        ". While runs ended, {:.1} pool runners were being started on average; a pool start took {} (launch to ready), so two at a time refill at most {} runners/s, while one client invoked {} times a second back to back.",
        p.launching,
        fmt_ms(p.pool_launch),
        fmt_rate(refill_rate),
        fmt_rate(b2b.c1.rate),
    ));
    if let Some((_, levels)) = starts.iter().find(|(r, _)| *r == runtime) {
        let at = |k: usize| levels.iter().find(|(p, _)| *p == k).map_or(f64::NAN, |(_, r)| *r);
        let (one, two, four) = (at(1), at(2), at(4));
        text.push_str(&format!(
            " This machine completes {} / {} / {} cold runs a second with 1 / 2 / 4 at a time: ",
            fmt_rate(one),
            fmt_rate(two),
            fmt_rate(four)
        ));
        if four > two * 1.2 {
            text.push_str(&format!(
                "starting more at once does raise the rate ({:.0} % from 2 to 4), so a refill parallelism above the fixed 2 (`MAX_PARALLEL_LAUNCHES` in faas-adapters/src/runner/pool.rs, a setting to add) would shorten the drain.",
                (four / two - 1.0) * 100.0
            ));
        } else {
            text.push_str("starting more at once does not raise the rate, so the refill parallelism (2) is not the limit: the host's start rate is.");
        }
    }
    text.push_str("\n\n*What would close it:* ");
    if p.cold > 0 && b2b.c1.rate > refill_rate {
        text.push_str("back to back, one client asks for runners faster than the pool refills, so the pool drains and the later invokes start cold; the p50 follows the share of cold starts. A bigger pool only delays the drain; closing it needs runner starts as fast as the invokes (the machine's start rate above is the ceiling), or `warm` for repeated invokes of one function. ");
    }
    if let Some(r) = refilled {
        if p.serve > 1.5 * r.serve {
            text.push_str(&format!(
                "Runs served by a started runner wait {} for their verdict instead of {} when the pool was refilled first: the refills running beside them take the CPU ({} cores), not the pool's bookkeeping (take {}). Deferring refills while runs are in flight, or fewer concurrent launches, would trade pool depth for that time.",
                fmt_ms(p.serve),
                fmt_ms(r.serve),
                cores(),
                fmt_ms(p.take)
            ));
        }
    }
    text
}

/// Where the dispatcher's own time goes and what would close the gap to
/// 20 000 invokes/s, from this run's numbers.
fn overhead_gap(overheads: &[Overhead]) -> String {
    let budget = cores() as f64 * 1e6 / 20_000.0;
    let mut text = format!(
        "**Dispatcher overhead below 20 000 invokes/s.** At that rate {} cores leave {budget:.0} µs of CPU per invoke for the dispatcher and the load generator together. Per invoke at one client:",
        cores()
    );
    for o in overheads {
        text.push_str(&format!(
            " with the {} store, p50 {:.0} µs end to end, of which the store {:.0} µs in {:.1} calls (at 64 clients {:.0} µs), the runtime {:.1} µs, JSON about {:.1} µs, and the rest (hyper, routing, the engine, the client) {:.0} µs;",
            o.store,
            o.c1.pct(0.5) * 1e3,
            o.store_us,
            o.store_calls,
            o.c64_store_us,
            o.runtime_us,
            o.json_us,
            o.rest_us(),
        ));
    }
    let files = overheads.iter().find(|o| o.store == "`files`");
    let memory = overheads.iter().find(|o| o.store == "in-memory");
    text.push_str("\n\n*What would close it:* ");
    match (files, memory) {
        (Some(f), Some(m)) if m.wrk.unwrap_or(m.c64_rate) >= 20_000.0 => text.push_str(&format!(
            "the dispatcher itself meets the target with the in-memory store ({:.0}/s); with `files` the store's {:.0} µs per invoke ({:.1} calls: the function cache's revalidation of the current revision, a `stat` of the source, env and meta files, and the collection env of every level of the path, each a hop onto tokio's blocking pool) is the gap. Revalidating a cached function at most every *T* ms (a bounded-staleness setting), one blocking call per invoke instead of several, or file-change notifications (inotify) that invalidate the cache instead of a `stat` per invoke, with collection envs cached under the same revision, would remove most of it.",
            m.wrk.unwrap_or(m.c64_rate),
            f.store_us,
            f.store_calls,
        )),
        _ => text.push_str(
            "even without storage work the dispatcher misses the target, so the per-request path itself (the rest above: hyper, routing, the engine's bookkeeping) has to get cheaper: fewer allocations and copies per request (the answer's JSON is built as a `Value` and serialised), and a load generator that does not share the cores.",
        ),
    }
    text
}

/// What `db_s3` costs per invoke, measured against a real PostgreSQL and S3.
#[derive(Debug)]
struct DbS3Costs {
    depth: usize,
    invokes: usize,
    hit_queries: f64,
    hit_gets: f64,
    miss_queries: f64,
    miss_gets: f64,
    misses: usize,
    revision: Series,
    revision_load: f64,
}

/// PostgreSQL transactions (every query of ours is its own autocommit
/// transaction) and S3 GETs (counted by a proxy in front of the S3 server)
/// per invoke, with the function cache hit and missed; and the revision
/// query's latency while 8 clients invoke.
async fn db_s3_costs(client: &reqwest::Client, invokes: usize, seconds: f64) -> DbS3Costs {
    use sqlx::{Connection, Row};
    // A fresh database and S3 prefix, as the black-box suite makes them.
    std::env::set_var("FAAS_TESTS_STORAGE", "db_s3");
    let storage = faas_tests::storage_vars().await;
    let var = |name: &str| storage.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    let dsn = var("LOWCODE_FAAS_POSTGRES_DSN");
    let s3: std::net::SocketAddr = var("LOWCODE_FAAS_S3_ENDPOINT")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let (proxy, gets) = faas_tests::bench_support::counting_get_proxy(s3).await;
    let mut vars: Vec<(&str, String)> = storage
        .iter()
        .filter(|(k, _)| k != "LOWCODE_FAAS_S3_ENDPOINT")
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    vars.push(("LOWCODE_FAAS_S3_ENDPOINT", format!("http://{proxy}")));
    vars.push(("LOWCODE_FAAS_RUNTIME", "process".into()));
    vars.push(("LOWCODE_FAAS_EXECUTION_MODE", "warm".into()));
    let mut server = Server::start("faas-server", "LOWCODE_FAAS_LISTEN", &vars, None).await;
    let res = client
        .post(format!("{}/collections", server.base))
        .json(&json!({"path": "a/b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let misses = 20;
    for i in 0..=misses {
        let name = if i == 0 {
            "hello".to_string()
        } else {
            format!("miss{i}")
        };
        let res = client
            .post(format!("{}/collections/a/b/functions", server.base))
            .json(&json!({"name": name, "source_code": HELLO}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
    }
    let url = format!("{}/collections/a/b/functions/hello/invoke", server.base);
    let body = json!({"input": {"name": "bench"}});
    for _ in 0..5 {
        invoke(client, &url, &body).await;
    }
    let mut db = sqlx::PgConnection::connect(&dsn).await.unwrap();
    let count = |row: sqlx::postgres::PgRow| row.get::<i64, _>(0);
    let query = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()";
    // Busy backends flush their counters after a second, idle ones within
    // ten (PostgreSQL 15): wait for both flushes around each series.
    let flush = || tokio::time::sleep(Duration::from_millis(11_000));
    let mut measure = async |urls: Vec<String>| {
        flush().await;
        let before = count(sqlx::query(query).fetch_one(&mut db).await.unwrap());
        let gets_before = gets.load(std::sync::atomic::Ordering::Relaxed);
        for url in &urls {
            invoke(client, url, &body).await;
        }
        let gets_after = gets.load(std::sync::atomic::Ordering::Relaxed);
        flush().await;
        let after = count(sqlx::query(query).fetch_one(&mut db).await.unwrap());
        // Our own first read is one transaction of the difference.
        (
            (after - before - 1) as f64 / urls.len() as f64,
            (gets_after - gets_before) as f64 / urls.len() as f64,
        )
    };
    let (hit_queries, hit_gets) = measure(vec![url.clone(); invokes]).await;
    // A save fills the function cache: restart the dispatcher so that the
    // first invoke of each other function is a real miss.
    server.terminate();
    server.spawn().await;
    let miss_urls = (1..=misses)
        .map(|i| format!("{}/collections/a/b/functions/miss{i}/invoke", server.base))
        .collect();
    let (miss_queries, miss_gets) = measure(miss_urls).await;

    // The revision query, timed on its own connection while 8 clients invoke.
    let revision_sql = "SELECT version, id FROM function_versions WHERE collection_path = $1 AND function_name = $2 ORDER BY version DESC LIMIT 1";
    let load = tokio::spawn({
        let url = url.clone();
        async move { faas_tests::bench_support::throughput(&url, json!({"input": {"name": "bench"}}), 8, seconds).await }
    });
    let mut samples = Vec::new();
    while !load.is_finished() {
        let started = Instant::now();
        sqlx::query(revision_sql)
            .bind("a/b")
            .bind("hello")
            .fetch_optional(&mut db)
            .await
            .unwrap();
        samples.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let revision_load = load.await.unwrap();
    server.stop();
    DbS3Costs {
        depth: 2,
        invokes,
        hit_queries,
        hit_gets,
        miss_queries,
        miss_gets,
        misses,
        revision: Series::from(samples),
        revision_load,
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
fn chrono_like_now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn write_into_docs(table: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/performance.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = ("<!-- bench:start -->", "<!-- bench:end -->");
    let block = format!("{start}\n{table}{end}");
    let updated = match (text.find(start), text.find(end)) {
        (Some(a), Some(b)) if a < b => format!("{}{}{}", &text[..a], block, &text[b + end.len()..]),
        _ => format!("{text}\n{block}\n"),
    };
    std::fs::write(&path, updated).unwrap();
    println!("wrote {}", path.display());
}
