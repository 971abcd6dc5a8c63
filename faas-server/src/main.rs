//! `faas-server`: the lowcode-faas dispatcher binary.

use std::process::ExitCode;

use faas_server::{app, init_tracing, Settings};

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
    match app::serve(dispatcher, shutdown_signal()).await {
        Ok((addr, run)) => {
            tracing::info!(%addr, "dispatcher listening");
            run.await;
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

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received");
}
