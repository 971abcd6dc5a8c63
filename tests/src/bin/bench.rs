//! The fast-starts benchmark: end-to-end HTTP invoke latency and throughput
//! of every execution mode of both runtimes, next to two baselines measured
//! in the same run, plus the dispatcher's own overhead, the worker hop and
//! the dispatcher's memory. Prints a Markdown table and writes it into
//! `docs/performance.md` (between the `bench:start` / `bench:end` markers).
//!
//! ```sh
//! scripts/build-node-image.sh
//! cargo build --release -p faas-server -p faas-worker
//! cargo run --release -p faas-tests --bin bench
//! ```
//!
//! Knobs: `BENCH_N` (sequential samples per series, default 40; warm series
//! take ten times as many), `BENCH_SECONDS` (length of each throughput run,
//! default 5), `BENCH_IMAGE` (default `lowcode-faas/node:local`),
//! `BENCH_ONLY` (a comma-separated subset of `baselines,docker,process,overhead,dbs3,hop`),
//! `BENCH_NO_WRITE=1` (print only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faas_tests::proc_support::Server;
use serde_json::{json, Value};

const HELLO: &str =
    "export async function handler(input) { return { ok: true, data: { hello: input.name ?? 'world' } }; }";

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

/// One row of the main table.
#[derive(Debug)]
struct Row {
    label: String,
    c1: Series,
    kinds: String,
    throughput: Option<f64>,
    note: String,
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

/// `n` invokes one at a time. With `refill`, waits for a full pool before each.
async fn sequential(server: &Server, client: &reqwest::Client, n: usize, refill: Option<u64>) -> (Series, String) {
    let url = format!("{}/functions/hello/invoke", server.base);
    let body = json!({"input": {"name": "bench"}});
    let (mut samples, mut kinds) = (Vec::new(), Vec::new());
    for _ in 0..n {
        if let Some(size) = refill {
            server.wait_pool(client, size).await;
        }
        let (d, kind) = invoke(client, &url, &body).await;
        samples.push(d);
        kinds.push(kind);
    }
    (Series::from(samples), summarise_kinds(&kinds))
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

/// `docker run --rm IMAGE node -e 0`.
fn docker_run_baseline(image: &str, n: usize) -> Series {
    run_cmd(&["docker", "run", "--rm", image, "node", "-e", "0"]);
    Series::from(
        (0..n)
            .map(|_| run_cmd(&["docker", "run", "--rm", image, "node", "-e", "0"]))
            .collect(),
    )
}

/// The earlier implementation's per-invoke docker CLI sequence: create,
/// copy the workspace in, start attached, copy the output out, remove.
fn go_sequence_baseline(image: &str, n: usize) -> Series {
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
    Series::from((0..n).map(once).collect())
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
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
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
        "{cores} cores ({cpu}), {:.1} GiB RAM, Docker Engine {}, node {} on the host and in the image, release build, loopback",
        mem_kib as f64 / 1024.0 / 1024.0,
        version(&["docker", "version", "--format", "{{.Server.Version}}"]),
        version(&["node", "--version"]),
    )
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

/// `bench --serve-instant`: serves [`faas_tests::bench_support::instant_dispatcher`]
/// and prints its base URL, until killed (the overhead measured with `wrk`
/// from another process).
async fn serve_instant(memory: bool) {
    let (base, _server, _data) = faas_tests::bench_support::instant_dispatcher(memory).await;
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
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    if wanted("baselines") {
        println!("baselines …");
        rows.push(Row {
            label: format!("`docker run --rm {image} node -e 0`"),
            c1: docker_run_baseline(&image, n),
            kinds: "–".into(),
            throughput: None,
            note: "baseline".into(),
        });
        rows.push(Row {
            label: "earlier implementation's CLI sequence (create, cp in, start -a, cp out, rm -f)".into(),
            c1: go_sequence_baseline(&image, n),
            kinds: "–".into(),
            throughput: None,
            note: "baseline".into(),
        });
    }

    for runtime in ["docker", "process"] {
        if !wanted(runtime) {
            continue;
        }
        for mode in ["cold", "prewarm", "warm"] {
            println!("{runtime} {mode} …");
            let vars = vec![
                ("LOWCODE_FAAS_RUNTIME", runtime.to_string()),
                ("LOWCODE_FAAS_EXECUTION_MODE", mode.to_string()),
                ("LOWCODE_FAAS_NODE_DOCKER_IMAGE", image.clone()),
                ("LOWCODE_FAAS_PREWARM_NODE_IMAGE", "false".into()),
                (
                    "LOWCODE_FAAS_INSTANCE_ID",
                    format!("bench-{}-{runtime}-{mode}", std::process::id()),
                ),
            ];
            let server = Server::start(
                "faas-server",
                "LOWCODE_FAAS_LISTEN",
                &vars,
                Some(tempfile::tempdir().unwrap()),
            )
            .await;
            let idle_rss = server.rss_kib();
            deploy(&client, &server.base).await;
            let samples = if mode == "warm" { n * 10 } else { n };
            // Warm-up: connections, caches, and (warm) the runner.
            sequential(&server, &client, 2, None).await;
            if mode == "prewarm" {
                let (refilled, kinds) = sequential(&server, &client, n, Some(4)).await;
                rows.push(Row {
                    label: format!("{runtime} runtime, `prewarm`, pool refilled between invokes"),
                    c1: refilled,
                    kinds,
                    throughput: None,
                    note: String::new(),
                });
            }
            let (c1, kinds) = sequential(&server, &client, samples, None).await;
            let url = format!("{}/functions/hello/invoke", server.base);
            let tput =
                faas_tests::bench_support::throughput(&url, json!({"input": {"name": "bench"}}), 8, seconds).await;
            let loaded_rss = server.rss_kib();
            rows.push(Row {
                label: format!(
                    "{runtime} runtime, `{mode}`{}",
                    if mode == "prewarm" { ", back to back" } else { "" }
                ),
                c1,
                kinds,
                throughput: Some(tput),
                note: String::new(),
            });
            if runtime == "docker" && mode == "prewarm" {
                notes.push(format!(
                    "Dispatcher RSS (Docker runtime, `prewarm`, files storage): {:.1} MB idle after start, {:.1} MB after the load above.",
                    idle_rss as f64 / 1024.0,
                    loaded_rss as f64 / 1024.0
                ));
            }
            server.stop();
        }
    }

    if wanted("overhead") {
        println!("dispatcher overhead …");
        let rate = faas_tests::bench_support::instant_runtime_overhead(64, seconds).await;
        notes.push(format!(
            "Dispatcher overhead (dispatcher with files storage and the function cache over a runtime that answers at once, 64 concurrent keep-alive clients for {seconds} s, load generator in the same process on the same 2 cores): **{rate:.0} invokes/s**."
        ));
        for store in ["files", "memory"] {
            if let Some(rate) = overhead_with_wrk(64, seconds, store) {
                notes.push(format!(
                    "The same dispatcher in its own process with {} storage, loaded by `wrk` (1 thread, 64 connections, {seconds} s) on the same 2 cores: **{rate:.0} invokes/s**.",
                    if store == "files" { "`files`" } else { "the in-memory" }
                ));
            }
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

    let docker_run_p50 = rows.first().filter(|r| r.note == "baseline").map(|r| r.c1.pct(0.5));
    let go_p50 = rows.get(1).filter(|r| r.note == "baseline").map(|r| r.c1.pct(0.5));
    let mut table = String::new();
    table.push_str(&format!("Measured {} on {}.\n\n", chrono_like_now(), machine()));
    table.push_str("| | p50 | p90 | p99 | × `docker run` p50 | start kinds (sequential) | invokes/s, 8 clients |\n|---|---|---|---|---|---|---|\n");
    for row in &rows {
        let ratio = docker_run_p50.map_or("–".to_string(), |base| format!("{:.2}×", row.c1.pct(0.5) / base));
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            row.label,
            fmt_ms(row.c1.pct(0.5)),
            fmt_ms(row.c1.pct(0.9)),
            fmt_ms(row.c1.pct(0.99)),
            ratio,
            row.kinds,
            row.throughput.map_or("–".to_string(), |t| format!("{t:.1}")),
        ));
    }
    if let (Some(go), Some(warm)) = (go_p50, rows.iter().find(|r| r.label == "docker runtime, `warm`")) {
        notes.push(format!(
            "Docker `warm` p50 is {:.0}× faster than the earlier implementation's CLI sequence.",
            go / warm.c1.pct(0.5)
        ));
    }
    table.push('\n');
    for note in &notes {
        table.push_str(&format!("- {note}\n"));
    }
    println!("\n{table}");
    if std::env::var("BENCH_NO_WRITE").is_err() {
        write_into_docs(&table);
    }
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
