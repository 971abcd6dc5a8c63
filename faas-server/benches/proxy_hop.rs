//! Benchmark: the latency the dispatcher → worker hop adds to an invoke.
//!
//! Starts a worker and a proxy-mode dispatcher in this process on loopback,
//! both over one `files` data dir. The worker's runtime answers instantly
//! (no node, no container), so what is measured is HTTP + validation +
//! storage read + the extra hop, not the function. It times N sequential
//! invokes sent straight to the worker's `/v1/run` and N sent through the
//! dispatcher, and prints p50/p90/p99 of both and of the difference.
//!
//! Run: `cargo bench -p faas-worker --bench proxy_hop` (N from `BENCH_N`, default 2000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_adapters::fs::FsSourceStore;
use faas_domain::{CreateFunction, Engine, SourceSpec};
use faas_ports::{
    async_trait, CollectionPath, ContainerRuntime, EnvMap, FunctionName, Language, PortError, RunFailure, RunJob,
    RunOutput,
};
use faas_server::app;
use faas_server::Settings;
use faas_worker::Worker;

/// A runtime that returns a fixed result at once: the benchmark measures the hop, not node.
#[derive(Debug)]
struct InstantRuntime;

#[async_trait]
impl ContainerRuntime for InstantRuntime {
    async fn run(&self, _job: RunJob) -> Result<RunOutput, RunFailure> {
        Ok(RunOutput {
            output_json: br#"{"type":"result","value":{"ok":true,"data":1}}"#.to_vec(),
            ..RunOutput::default()
        })
    }
    async fn health(&self) -> Result<(), PortError> {
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn time_requests(client: &reqwest::Client, url: &str, body: &serde_json::Value, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let res = client.post(url).json(body).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await.unwrap();
        samples.push(start.elapsed());
    }
    samples.sort();
    samples
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let data = tempfile::tempdir().unwrap();
    let vars = vec![
        ("LOWCODE_FAAS_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("LOWCODE_FAAS_WORKER_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("LOWCODE_FAAS_DATA_DIR".to_owned(), data.path().display().to_string()),
    ];
    let settings = Settings::from_vars(vars.clone()).unwrap();

    let store = Arc::new(FsSourceStore::new(data.path()).unwrap());
    let worker_engine = Arc::new(Engine::builder(store, Arc::new(InstantRuntime)).build());
    worker_engine
        .create_function(CreateFunction {
            collection_path: CollectionPath::root(),
            name: FunctionName::parse("noop").unwrap(),
            language: Language::Javascript,
            source: SourceSpec::Code("export async function handler(){return {ok:true}}".into()),
            env: EnvMap::new(),
        })
        .await
        .unwrap();
    let worker = Arc::new(Worker {
        engine: worker_engine,
        settings: Arc::new(settings.clone()),
        metrics: app::new_metrics().unwrap(),
        log_buffer: None,
        cleanup: app::Cleanup::default(),
    });
    let worker_server = app::spawn_filter(
        faas_worker::routes(worker),
        settings.worker_listen,
        settings.shutdown_grace,
        settings.connection_limits,
        app::Cleanup::default(),
    )
    .await
    .unwrap();
    let worker_url = format!("http://{}", worker_server.addr);

    // A proxy-mode dispatcher over the same data dir, built as the binary
    // builds it; without the function cache, so each invoke reads storage
    // as the worker's does.
    let mut dispatcher_vars = vars.clone();
    dispatcher_vars.extend([
        ("LOWCODE_FAAS_WORKER_URL".to_owned(), worker_url.clone()),
        ("LOWCODE_FAAS_FUNCTION_CACHE".to_owned(), "false".to_owned()),
    ]);
    let dispatcher_server = app::spawn(Settings::from_vars(dispatcher_vars).unwrap()).await.unwrap();
    let dispatcher_url = format!("http://{}/functions/noop/invoke", dispatcher_server.addr);

    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let run_body = serde_json::json!({"function_name": "noop", "input": {"k": 1}});
    let invoke_body = serde_json::json!({"input": {"k": 1}});
    // Warm up connections and caches.
    time_requests(&client, &format!("{worker_url}/v1/run"), &run_body, 200).await;
    time_requests(&client, &dispatcher_url, &invoke_body, 200).await;

    // Interleave rounds so that background load hits both series alike.
    let (mut direct, mut proxied) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let round = 100.min(n.max(1));
    while direct.len() < n {
        direct.extend(time_requests(&client, &format!("{worker_url}/v1/run"), &run_body, round).await);
        proxied.extend(time_requests(&client, &dispatcher_url, &invoke_body, round).await);
    }
    direct.sort();
    proxied.sort();

    let n = direct.len();
    println!("proxy hop benchmark: {n} sequential invokes each (interleaved rounds of {round}), loopback, instant runtime, files storage");
    println!("{:<28} {:>10} {:>10} {:>10}", "", "p50", "p90", "p99");
    for (label, s) in [("worker /v1/run (direct)", &direct), ("dispatcher → worker", &proxied)] {
        println!(
            "{:<28} {:>8.3}ms {:>8.3}ms {:>8.3}ms",
            label,
            percentile(s, 0.5).as_secs_f64() * 1e3,
            percentile(s, 0.9).as_secs_f64() * 1e3,
            percentile(s, 0.99).as_secs_f64() * 1e3
        );
    }
    for (label, p) in [("added by the hop p50", 0.5), ("added by the hop p99", 0.99)] {
        let added = percentile(&proxied, p).as_secs_f64() - percentile(&direct, p).as_secs_f64();
        println!("{label:<28} {:>8.3}ms", added * 1e3);
    }
    dispatcher_server.shutdown().await;
    worker_server.shutdown().await;
}
