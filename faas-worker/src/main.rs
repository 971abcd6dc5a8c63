//! `faas-worker`: the lowcode-faas worker binary.

use std::process::ExitCode;

use faas_http::serve::serve_filter;
use faas_http::{init_tracing, shutdown_signal, Settings};
use faas_ports::report::Report;

/// The lowcode-faas worker: runs invocations forwarded by the dispatcher
/// (POST /v1/run). It serves until SIGTERM/SIGINT.
#[derive(Debug, clap::Parser)]
#[command(name = "faas-worker", version, after_help = faas_http::usage::settings_help())]
struct Cli {}

#[tokio::main]
async fn main() -> ExitCode {
    // --help / --version / a bad flag: answered before any setting is read.
    if let Err(e) = <Cli as clap::Parser>::try_parse() {
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
    }
    init_tracing();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("faas-worker: {}", Report(&e));
            return ExitCode::from(2);
        }
    };
    let worker = match faas_worker::build_worker(settings).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("faas-worker: {}", Report(&e));
            return ExitCode::from(e.exit_code());
        }
    };
    let addr = worker.settings.worker_listen;
    let grace = worker.settings.shutdown_grace;
    let limits = worker.settings.connection_limits;
    let cleanup = worker.cleanup.clone();
    match serve_filter(
        faas_worker::routes(worker),
        addr,
        grace,
        limits,
        cleanup,
        shutdown_signal(),
    )
    .await
    {
        Ok((addr, run)) => {
            tracing::info!(%addr, "worker listening");
            run.await;
            tracing::info!("worker stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faas-worker: {}", Report(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
