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
//!
//! The program is split by concern: `traffic` (the clients and savers),
//! `environment` (S3, PostgreSQL, containers and processes), `faults` (what
//! is injected and what it explains), `checks` (versions and leftovers at the
//! end) and `report`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod checks;
mod environment;
mod faults;
mod report;
mod traffic;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_tests::proc_support::{free_port, Server};

use environment::{s3fs_binary, wait_ready, S3};
use faults::{Faults, Window};
use report::Findings;
use traffic::{client_loop, saver_loop, Shared, Tally, FUNCTIONS};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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
    let admin_dsn = std::env::var("SOAK_PG_DSN")
        .or_else(|_| std::env::var("LOWCODE_FAAS_TEST_POSTGRES_DSN"))
        .expect("SOAK_PG_DSN (or LOWCODE_FAAS_TEST_POSTGRES_DSN) must name a PostgreSQL admin DSN");

    // Storage: a fresh database and our own S3 server.
    let db = format!("faas_soak_{}", std::process::id());
    environment::create_database(&admin_dsn, &db).await;
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
        faas_tests::proc_support::deploy(&client, &base, name, source).await;
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
    let injector = Faults {
        pg_stop: std::env::var("SOAK_PG_STOP").ok().filter(|s| !s.is_empty()),
        pg_start: std::env::var("SOAK_PG_START").ok().filter(|s| !s.is_empty()),
        instance: instance.clone(),
    };
    let fault_kinds = injector.kinds();
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
            let fault = fault_kinds[fault_no % fault_kinds.len()];
            fault_no += 1;
            let from = shared.start.elapsed();
            let note = injector.inject(fault, &mut worker, &mut dispatcher, &mut s3).await;
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
    let versions = checks::check_versions(&client, &base, &tally).await;

    // Shutdown and leaks.
    let dispatcher_clean = dispatcher.terminate();
    let worker_clean = worker.terminate();
    let (containers, processes) = checks::leftovers(&instance, &worker_tmp).await;
    s3.stop();
    environment::drop_database(&admin_dsn, &db).await;

    // Which oddities a fault explains.
    let (by_fault, unexplained) = faults::explain(&tally.oddities, &windows);

    let findings = Findings {
        clients,
        savers,
        runtime: &runtime,
        fault_every,
        skipped_pg: injector.skips_postgres(),
        elapsed,
        requests: shared.requests.load(Ordering::Relaxed),
        faults_injected: windows.len(),
        tally: &tally,
        versions: &versions,
        containers: &containers,
        processes: &processes,
        dispatcher_clean,
        worker_clean,
        unexplained: &unexplained,
        fault_notes: &fault_notes,
        by_fault: &by_fault,
        rss: &rss,
    };
    let report = report::render(&findings);
    println!("\n{report}");

    if std::env::var("SOAK_NO_WRITE").is_err() {
        report::write_into_docs(&report);
    }
    if findings.failed() {
        println!("soak: FAILED (see the report; logs in {})", work.keep().display());
        std::process::exit(1);
    }
}
