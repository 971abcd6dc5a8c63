//! `faas-server`: the lowcode-faas dispatcher binary.

use std::process::ExitCode;

use faas_server::{app, init_tracing, shutdown_signal, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            eprintln!("faas-server: {e}");
            return ExitCode::from(2);
        }
    };
    let dispatcher = match app::build_dispatcher(settings).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            eprintln!("faas-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cleanup = dispatcher.cleanup.clone();
    match app::serve(dispatcher, shutdown_signal()).await {
        Ok((addr, run)) => {
            tracing::info!(%addr, "dispatcher listening");
            run.await;
            cleanup.run().await;
            tracing::info!("dispatcher stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot serve");
            eprintln!("faas-server: {e}");
            ExitCode::FAILURE
        }
    }
}
