//! Benchmark: invoke latency through the dispatcher with the Docker runtime,
//! next to `docker run --rm <image> node -e 0` measured in the same run.
//!
//! Starts a dispatcher in this process on loopback (files storage in a temp
//! dir, Docker runtime, image from `LOWCODE_FAAS_NODE_DOCKER_IMAGE`, default
//! `lowcode-faas/node:local`), creates a trivial function, then alternates
//! one invoke and one `docker run` N times and prints median and p99 of
//! each. Run: `cargo bench -p faas-server --bench docker_latency`
//! (N from `BENCH_N`, default 40).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::Command;
use std::time::{Duration, Instant};

use faas_server::{app, Settings};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let image = std::env::var("LOWCODE_FAAS_NODE_DOCKER_IMAGE").unwrap_or_else(|_| "lowcode-faas/node:local".into());
    let data = tempfile::tempdir().unwrap();
    let settings = Settings::from_vars(vec![
        ("LOWCODE_FAAS_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("LOWCODE_FAAS_DATA_DIR".to_owned(), data.path().display().to_string()),
        ("LOWCODE_FAAS_RUNTIME".to_owned(), "docker".to_owned()),
        ("LOWCODE_FAAS_NODE_DOCKER_IMAGE".to_owned(), image.clone()),
        ("LOWCODE_FAAS_PREWARM_NODE_IMAGE".to_owned(), "false".to_owned()),
        (
            "LOWCODE_FAAS_INSTANCE_ID".to_owned(),
            format!("bench-{}", std::process::id()),
        ),
    ])
    .unwrap();
    let server = app::spawn(settings).await.unwrap();
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/functions"))
        .json(
            &serde_json::json!({"name": "noop", "source_code": "export async function handler(){ return {ok:true}; }"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let invoke = || async {
        let start = Instant::now();
        let res: serde_json::Value = client
            .post(format!("{base}/functions/noop/invoke"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(res["status"], "success", "{res}");
        start.elapsed()
    };
    let run_image = image.clone();
    let docker_run = move || {
        let start = Instant::now();
        let status = Command::new("docker")
            .args(["run", "--rm", &run_image, "node", "-e", "0"])
            .status()
            .unwrap();
        assert!(status.success());
        start.elapsed()
    };
    // Warm-up: page cache, image layers, connection pool.
    invoke().await;
    docker_run();

    let (mut invokes, mut runs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        invokes.push(invoke().await);
        let run = docker_run.clone();
        runs.push(tokio::task::spawn_blocking(run).await.unwrap());
    }
    invokes.sort();
    runs.sort();

    // How long past its deadline a timed-out run answers (kill + removal included).
    let r = client
        .post(format!("{base}/functions"))
        .json(&serde_json::json!({"name": "spin", "source_code": "export async function handler(){ while (true) {} }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let timeout_ms = 1000u64;
    let mut overshoot = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let res: serde_json::Value = client
            .post(format!("{base}/functions/spin/invoke"))
            .json(&serde_json::json!({"timeout_ms": timeout_ms}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(res["error_code"], "TIMEOUT", "{res}");
        overshoot.push(start.elapsed().saturating_sub(Duration::from_millis(timeout_ms)));
    }
    overshoot.sort();
    println!("docker latency benchmark: {n} sequential runs each, interleaved, image {image}");
    println!("{:<44} {:>10} {:>10}", "", "median", "p99");
    for (label, s) in [
        ("dispatcher invoke (Docker runtime)", &invokes),
        ("docker run --rm <image> node -e 0", &runs),
    ] {
        println!(
            "{label:<44} {:>8.1}ms {:>8.1}ms",
            ms(percentile(s, 0.5)),
            ms(percentile(s, 0.99))
        );
    }
    println!(
        "timeout {timeout_ms} ms, answered after the deadline by: median {:.1}ms, max {:.1}ms (5 runs; kill + removal)",
        ms(percentile(&overshoot, 0.5)),
        ms(overshoot[overshoot.len() - 1])
    );
    server.shutdown().await;
}
