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

mod baselines;
mod dbs3;
mod load;
mod overhead;
mod report;
mod stats;

use baselines::*;
use dbs3::*;
use load::*;
use overhead::*;
use report::*;
use stats::*;

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
