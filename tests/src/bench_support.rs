//! What the `bench` program needs in-process: a dispatcher whose runtime
//! answers at once (with the time spent in its store and its runtime
//! counted), to measure the dispatcher's own overhead; load generators that
//! keep every latency; and the reader of the runtime's phase events
//! (`Run phases.`, `Pool runner started.`, …) from a server's JSON log.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use faas_domain::Engine;
use faas_ports::{
    CollectionInfo, CollectionPath, ContainerRuntime, Deployment, EnvMap, FunctionName, FunctionSummary, NewVersion,
    PortError, Revision, RunFailure, RunJob, RunOutput, SourceStore, Version, VersionItem,
};
use faas_server::{app, Settings};
use serde_json::Value;

/// Calls and the time spent in them.
#[derive(Debug, Default)]
pub struct Timing {
    /// Calls so far.
    pub calls: AtomicU64,
    /// Nanoseconds spent in them so far.
    pub nanos: AtomicU64,
}

impl Timing {
    async fn time<T>(&self, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = work.await;
        self.nanos.fetch_add(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.calls.fetch_add(1, Ordering::Relaxed);
        out
    }

    /// (calls, nanoseconds) so far.
    pub fn read(&self) -> (u64, u64) {
        (self.calls.load(Ordering::Relaxed), self.nanos.load(Ordering::Relaxed))
    }
}

/// Where the instant dispatcher's time goes: its store (with the function
/// cache) and its runtime.
#[derive(Debug, Default)]
pub struct Timings {
    /// Every `SourceStore` call.
    pub store: Timing,
    /// Every `ContainerRuntime::run`.
    pub runtime: Timing,
}

/// A runtime that answers every run at once with `{ok:true}`.
#[derive(Debug)]
struct Instant0(Arc<Timings>);

#[async_trait]
impl ContainerRuntime for Instant0 {
    async fn run(&self, _job: RunJob) -> Result<RunOutput, RunFailure> {
        self.0
            .runtime
            .time(async {
                Ok(RunOutput {
                    output_json: br#"{"type":"result","value":{"ok":true,"data":1}}"#.to_vec(),
                    ..RunOutput::default()
                })
            })
            .await
    }

    async fn health(&self) -> Result<(), PortError> {
        Ok(())
    }
}

/// A store that counts the time spent in another.
#[derive(Debug)]
struct TimedStore(Arc<dyn SourceStore>, Arc<Timings>);

#[async_trait]
impl SourceStore for TimedStore {
    async fn create_collection(&self, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, PortError> {
        self.1.store.time(self.0.create_collection(path, env)).await
    }
    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        self.1.store.time(self.0.list_collections()).await
    }
    async fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        self.1.store.time(self.0.collection_exists(path)).await
    }
    async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        self.1.store.time(self.0.collection_env(path)).await
    }
    async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
        self.1.store.time(self.0.set_collection_env(path, env)).await
    }
    async fn delete_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        self.1.store.time(self.0.delete_collection(path)).await
    }
    async fn save_function(&self, new: &NewVersion) -> Result<Deployment, PortError> {
        self.1.store.time(self.0.save_function(new)).await
    }
    async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        version: Option<Version>,
    ) -> Result<Deployment, PortError> {
        self.1.store.time(self.0.get_function(collection, name, version)).await
    }
    async fn current_revision(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Revision, PortError> {
        self.1.store.time(self.0.current_revision(collection, name)).await
    }
    async fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError> {
        self.1.store.time(self.0.list_functions(collection)).await
    }
    async fn list_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Vec<VersionItem>, PortError> {
        self.1.store.time(self.0.list_versions(collection, name)).await
    }
    async fn delete_function(&self, collection: &CollectionPath, name: &FunctionName) -> Result<(), PortError> {
        self.1.store.time(self.0.delete_function(collection, name)).await
    }
    async fn health(&self) -> Result<(), PortError> {
        self.1.store.time(self.0.health()).await
    }
    fn history(&self) -> faas_ports::VersionHistory {
        self.0.history()
    }
}

/// Starts a dispatcher (files storage with the function cache, or with
/// `memory` the in-memory store; the default limits but 256 runs at once)
/// over a runtime that answers at once, with a function `noop`; its base
/// URL, the server and its data dir.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub async fn instant_dispatcher(memory: bool) -> (String, app::RunningServer, tempfile::TempDir) {
    let (base, server, data, _) = instant_dispatcher_timed(memory).await;
    (base, server, data)
}

/// [`instant_dispatcher`], with the time spent in its store and runtime.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub async fn instant_dispatcher_timed(memory: bool) -> (String, app::RunningServer, tempfile::TempDir, Arc<Timings>) {
    let timings = Arc::new(Timings::default());
    let data = tempfile::tempdir().unwrap();
    let settings = Settings::from_vars(vec![
        ("LOWCODE_FAAS_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("LOWCODE_FAAS_DATA_DIR".to_owned(), data.path().display().to_string()),
        ("LOWCODE_FAAS_MAX_CONCURRENT_RUNS".to_owned(), "256".to_owned()),
    ])
    .unwrap();
    let store: Arc<dyn faas_ports::SourceStore> = if memory {
        Arc::new(faas_adapters::memory::MemorySourceStore::new())
    } else {
        app::build_store(&settings).await.unwrap()
    };
    let store: Arc<dyn SourceStore> = Arc::new(TimedStore(store, Arc::clone(&timings)));
    let engine = Engine::builder(store, Arc::new(Instant0(Arc::clone(&timings))))
        .limits(settings.limits.clone())
        .build();
    let dispatcher = app::DispatcherBuilder::new(Arc::new(engine)).build().unwrap();
    let server = app::spawn_filter(
        app::routes(dispatcher),
        settings.listen,
        settings.shutdown_grace,
        settings.connection_limits,
        app::Cleanup::default(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{base}/functions"))
        .json(&serde_json::json!({"name": "noop", "source_code": "export async function handler() { return { ok: true }; }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    (base, server, data, timings)
}

/// Invokes per second with `clients` concurrent keep-alive clients posting
/// `body` to `url` for `seconds` (each answer must be 200).
pub async fn throughput(url: &str, body: serde_json::Value, clients: usize, seconds: f64) -> f64 {
    load(url, body, clients, seconds).await.rate
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Invokes per second over the whole run.
    pub rate: f64,
    /// Every invoke's latency, in completion order.
    pub latencies: Vec<Duration>,
    /// Every invoke's `start_kind` (`-` when the answer has none).
    pub kinds: Vec<String>,
}

/// `clients` concurrent keep-alive clients posting `body` to `url` for
/// `seconds` (each answer must be 200), keeping every latency.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub async fn load(url: &str, body: serde_json::Value, clients: usize, seconds: f64) -> Load {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (url, body) = (url.to_string(), body.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
                let (mut latencies, mut kinds) = (Vec::new(), Vec::new());
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let res = client.post(&url).json(&body).send().await.unwrap();
                    assert_eq!(res.status().as_u16(), 200);
                    let bytes = res.bytes().await.unwrap();
                    latencies.push(sent.elapsed());
                    kinds.push(start_kind(&bytes));
                }
                (latencies, kinds)
            })
        })
        .collect();
    let mut out = Load::default();
    for task in tasks {
        let (latencies, kinds) = task.await.unwrap();
        out.latencies.extend(latencies);
        out.kinds.extend(kinds);
    }
    out.rate = out.latencies.len() as f64 / started.elapsed().as_secs_f64();
    out
}

/// The `start_kind` of an invoke's answer, `-` when it has none.
pub fn start_kind(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["start_kind"].as_str().map(str::to_string))
        .unwrap_or_else(|| "-".into())
}

/// The JSON lines a server appended to its log file since the last read.
#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    offset: usize,
}

impl LogTail {
    /// Reads `path` from its current end on.
    pub fn new(path: PathBuf) -> Self {
        let offset = std::fs::read(&path).map_or(0, |b| b.len());
        Self { path, offset }
    }

    /// The JSON lines written since the last call (others are skipped). A
    /// file shorter than what was read (truncated or rotated) is read from
    /// its start.
    pub fn take(&mut self) -> Vec<Value> {
        let bytes = std::fs::read(&self.path).unwrap_or_default();
        if bytes.len() < self.offset {
            self.offset = 0;
        }
        // Only complete lines; a line being written is read next time.
        let end = bytes[self.offset..]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(self.offset, |i| self.offset + i + 1);
        let fresh = &bytes[self.offset..end];
        self.offset = end;
        fresh
            .split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect()
    }
}

/// Medians (ms) of the runtime's phase events over one series, from its
/// debug log (`RUST_LOG=faas_adapters::runner=debug,faas_adapters::docker=debug`,
/// `LOWCODE_FAAS_LOG_FORMAT=json`). `NaN` where no event had the phase.
#[derive(Debug, Clone, Default)]
pub struct Phases {
    /// `Run phases.` events.
    pub runs: usize,
    /// Runs that started their own runner (cold).
    pub cold: usize,
    /// Taking a runner from the pool (with its liveness check).
    pub take: f64,
    /// Starting a runner, for runs that found none (cold starts only).
    pub launch: f64,
    /// From the job's start to the job line written.
    pub send: f64,
    /// From the job's start to the runner's started frame.
    pub started: f64,
    /// From the job's start to its verdict.
    pub serve: f64,
    /// The clean-up after the verdict, before the run answers.
    pub end_job: f64,
    /// Pool runners being started when a run ended (mean).
    pub launching: f64,
    /// Pool runners started during the series.
    pub pool_launches: usize,
    /// Their start, from launch to ready.
    pub pool_launch: f64,
    /// Container create / attach / start, and node's start to the ready
    /// frame, over every start of the series (pool or cold).
    pub create: f64,
    /// See [`Phases::create`].
    pub attach: f64,
    /// See [`Phases::create`].
    pub start: f64,
    /// See [`Phases::create`].
    pub ready: f64,
}

impl Phases {
    /// The runtime's own part of a run (take + cold start + job + clean-up).
    pub fn server(&self) -> f64 {
        let launch = if self.launch.is_nan() { 0.0 } else { self.launch };
        self.take + launch + self.serve + self.end_job
    }
}

/// Reads the phase events of one series (see [`Phases`]).
pub fn phases(events: &[Value]) -> Phases {
    fn median(mut v: Vec<f64>) -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    let field = |e: &Value, name: &str| e["fields"][name].as_f64();
    let of = |message: &'static str| events.iter().filter(move |e| e["fields"]["message"] == message);
    let runs: Vec<&Value> = of("Run phases.").collect();
    let us = |name: &str, only_cold: bool| {
        median(
            runs.iter()
                .filter(|e| !only_cold || e["fields"]["start_kind"] == "cold")
                .filter_map(|e| field(e, name))
                .map(|v| v / 1000.0)
                .collect(),
        )
    };
    let ms = |message: &'static str, name: &str| median(of(message).filter_map(|e| field(e, name)).collect());
    let launching: Vec<f64> = runs.iter().filter_map(|e| field(e, "launching")).collect();
    Phases {
        runs: runs.len(),
        cold: runs.iter().filter(|e| e["fields"]["start_kind"] == "cold").count(),
        take: us("take_us", false),
        launch: us("launch_us", true),
        send: us("send_us", false),
        started: us("started_us", false),
        serve: us("serve_us", false),
        end_job: us("end_job_us", false),
        launching: if launching.is_empty() {
            f64::NAN
        } else {
            launching.iter().sum::<f64>() / launching.len() as f64
        },
        pool_launches: of("Pool runner started.").count(),
        pool_launch: median(
            of("Pool runner started.")
                .filter_map(|e| field(e, "launch_us"))
                .map(|v| v / 1000.0)
                .collect(),
        ),
        create: ms("Runner container started.", "create_ms"),
        attach: ms("Runner container started.", "attach_ms"),
        start: ms("Runner container started.", "start_ms"),
        ready: ms("Runner ready.", "ready_ms"),
    }
}

/// A loopback TCP proxy in front of `upstream` that counts the HTTP/1.1
/// `GET` requests passing through it (a request line starting a read or
/// following a line feed), for measuring S3 reads per invoke. Bytes pass
/// unchanged, so signed requests stay valid (the `Host` header names the
/// proxy, which is the address the client signed for).
pub async fn counting_get_proxy(upstream: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gets = Arc::new(AtomicU64::new(0));
    let counter = gets.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut ri, mut wi) = inbound.split();
                let (mut ro, mut wo) = outbound.split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut last = b'\n';
                    loop {
                        let n = match ri.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let mut prev = last;
                        for i in 0..n {
                            if prev == b'\n' && buf[i..n].starts_with(b"GET /") {
                                counter.fetch_add(1, Ordering::Relaxed);
                            }
                            prev = buf[i];
                        }
                        last = buf[n - 1];
                        if wo.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = wo.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut ro, &mut wi).await;
                    let _ = wi.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (addr, gets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_reads_new_lines_and_survives_a_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        std::fs::write(&path, "{\"a\":1}\n").unwrap();
        let mut tail = LogTail::new(path.clone());
        assert!(tail.take().is_empty());
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        assert_eq!(tail.take(), vec![serde_json::json!({"a": 2})]);
        // Rotated: a shorter file is read from its start.
        std::fs::write(&path, "{\"b\":1}\n").unwrap();
        assert_eq!(tail.take(), vec![serde_json::json!({"b": 1})]);
        std::fs::write(&path, "").unwrap();
        assert!(tail.take().is_empty());
    }

    #[test]
    fn phase_events_are_read_from_the_json_log() {
        let lines = [
            r#"{"timestamp":"t","level":"DEBUG","fields":{"message":"Run phases.","start_kind":"prewarm","take_us":20,"launch_us":0,"send_us":100,"started_us":900,"serve_us":4000,"end_job_us":30,"launching":2},"target":"faas_adapters::runner::pool"}"#,
            r#"{"timestamp":"t","level":"DEBUG","fields":{"message":"Run phases.","start_kind":"cold","take_us":10,"launch_us":300000,"send_us":200,"started_us":1100,"serve_us":6000,"end_job_us":50,"launching":0},"target":"faas_adapters::runner::pool"}"#,
            r#"{"timestamp":"t","level":"DEBUG","fields":{"message":"Pool runner started.","launch_us":250000},"target":"faas_adapters::runner::pool"}"#,
            r#"{"timestamp":"t","level":"DEBUG","fields":{"message":"Runner container started.","container":"x","create_ms":40.0,"attach_ms":1.0,"start_ms":200.0},"target":"faas_adapters::docker::launcher"}"#,
            r#"{"timestamp":"t","level":"DEBUG","fields":{"message":"Runner ready.","ready_ms":80.5},"target":"faas_adapters::runner"}"#,
            "not json",
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "old line\n").unwrap();
        let mut tail = LogTail::new(path.clone());
        let mut text = lines.join("\n");
        text.push_str("\n{\"partial\":");
        std::fs::write(&path, format!("old line\n{text}")).unwrap();
        let events = tail.take();
        assert_eq!(events.len(), 5, "complete JSON lines only");
        let p = phases(&events);
        assert_eq!((p.runs, p.cold, p.pool_launches), (2, 1, 1));
        assert_eq!(p.launch, 300.0, "cold starts only");
        assert_eq!((p.take, p.serve), (0.02, 6.0));
        assert_eq!(p.launching, 1.0);
        assert_eq!((p.pool_launch, p.create, p.ready), (250.0, 40.0, 80.5));
        assert!(tail.take().is_empty());
        assert!(phases(&[]).serve.is_nan());
        assert_eq!(start_kind(br#"{"start_kind":"warm"}"#), "warm");
        assert_eq!(start_kind(b"nope"), "-");
    }
}
