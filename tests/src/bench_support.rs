//! What the `bench` program needs in-process: a dispatcher whose runtime
//! answers at once, to measure the dispatcher's own overhead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use faas_domain::Engine;
use faas_ports::{ContainerRuntime, PortError, RunFailure, RunJob, RunOutput};
use faas_server::{app, Settings};

/// A runtime that answers every run at once with `{ok:true}`.
#[derive(Debug)]
struct Instant0;

#[async_trait]
impl ContainerRuntime for Instant0 {
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

/// Starts a dispatcher (files storage with the function cache, or with
/// `memory` the in-memory store; the default limits but 256 runs at once)
/// over a runtime that answers at once, with a function `noop`; its base
/// URL, the server and its data dir.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub async fn instant_dispatcher(memory: bool) -> (String, app::RunningServer, tempfile::TempDir) {
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
    let engine = Engine::builder(store, Arc::new(Instant0))
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
    (base, server, data)
}

/// Invokes per second of [`instant_dispatcher`] with `clients` concurrent
/// keep-alive clients in this process for `seconds`.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub async fn instant_runtime_overhead(clients: usize, seconds: f64) -> f64 {
    let (base, server, _data) = instant_dispatcher(false).await;
    let url = format!("{base}/functions/noop/invoke");
    let rate = throughput(&url, serde_json::json!({"input": {"k": 1}}), clients, seconds).await;
    server.shutdown().await;
    rate
}

/// Invokes per second with `clients` concurrent keep-alive clients posting
/// `body` to `url` for `seconds` (each answer must be 200).
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub async fn throughput(url: &str, body: serde_json::Value, clients: usize, seconds: f64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (done, url, body) = (Arc::clone(&done), url.to_string(), body.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
                while Instant::now() < deadline {
                    let res = client.post(&url).json(&body).send().await.unwrap();
                    assert_eq!(res.status().as_u16(), 200);
                    let _ = res.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
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
