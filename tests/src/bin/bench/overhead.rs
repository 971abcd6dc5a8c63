//! The dispatcher's own overhead over a runtime that answers at once.

use super::*;

/// `bench --serve-instant`: serves [`faas_tests::bench_support::instant_dispatcher`]
/// and prints its base URL, until killed (the overhead measured with `wrk`
/// from another process).
pub(crate) async fn serve_instant(memory: bool) {
    let (base, _server, _data) = bench_support::instant_dispatcher(memory).await;
    println!("{base}");
    std::future::pending::<()>().await;
}

/// Invokes/s of the instant dispatcher in a child process, loaded by `wrk`
/// (one thread, `connections` keep-alive connections): a load generator far
/// lighter than this program's own client. `None` when `wrk` is missing.
pub(crate) fn overhead_with_wrk(connections: usize, seconds: f64, store: &str) -> Option<f64> {
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
pub(crate) struct Overhead {
    pub(crate) store: &'static str,
    /// Sequential invokes from a client in this process.
    pub(crate) c1: Series,
    pub(crate) store_calls: f64,
    pub(crate) store_us: f64,
    pub(crate) runtime_us: f64,
    pub(crate) json_us: f64,
    /// 64 concurrent clients in this process.
    pub(crate) c64_rate: f64,
    pub(crate) c64_store_us: f64,
    /// `wrk` (its own process) at 64 connections.
    pub(crate) wrk: Option<f64>,
}

impl Overhead {
    /// What is left of the c=1 median after the measured parts: hyper,
    /// routing, the engine's bookkeeping, the client.
    pub(crate) fn rest_us(&self) -> f64 {
        self.c1.pct(0.5) * 1e3 - self.store_us - self.runtime_us - self.json_us
    }
}

/// Microseconds to parse a request body and the answer, and serialise the
/// answer again: the JSON an invoke costs the dispatcher, roughly.
pub(crate) fn json_cost_us(request: &[u8], answer: &[u8]) -> f64 {
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

pub(crate) async fn overhead(memory: bool, n: usize, seconds: f64) -> Overhead {
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

/// Where the dispatcher's own time goes and what would close the gap to
/// 20 000 invokes/s, from this run's numbers.
pub(crate) fn overhead_gap(overheads: &[Overhead]) -> String {
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
