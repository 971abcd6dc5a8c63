//! # faas-server
//!
//! The lowcode-faas dispatcher: the public HTTP API of SPEC §4–§5 on warp.
//! This crate is a composition root: it reads [`Settings`], builds the
//! adapters, hands them to [`faas_domain::Engine`], and maps domain errors to
//! HTTP replies (`{"error": "...", "code": "..."}`) in one place
//! ([`error::status_of`]).
//!
//! - [`app::routes`] is the warp filter of the whole API, to serve or to
//!   mount inside another warp app;
//! - [`app::spawn`] starts a dispatcher in the background (tests use it with
//!   `LOWCODE_FAAS_LISTEN=127.0.0.1:0`);
//! - [`router`] is the pure path → route table (404 vs 405 with `Allow`);
//! - [`handler_kit::run_handler`] runs a handler once on the local `node`
//!   (also `faas-server run-handler file.mjs --input '{…}'`);
//! - [`http`] holds the plumbing shared with the worker: request ids,
//!   bearer auth in constant time, bounded bodies, request spans, metrics.
//!
//! Invariants: no business rule lives here; every body is read with a cap;
//! every reply is JSON (except `/metrics`) and carries `x-request-id`.

pub mod api;
pub mod app;
pub mod config;
pub mod error;
pub mod handler_kit;
pub mod http;
pub mod logs_api;
pub mod metrics;
pub mod proxy;
pub mod router;

pub use config::Settings;
pub use error::{ApiError, ServerError};

/// Initialises tracing to stderr (`RUST_LOG`, default `info`; JSON when
/// `LOWCODE_FAAS_LOG_FORMAT=json`). Stdout stays free for function logs.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOWCODE_FAAS_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("tracing was already initialised: {e}");
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
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
