//! # faas-http
//!
//! The HTTP edge that the dispatcher (`faas-server`) and the worker
//! (`faas-worker`) share, so that neither binary depends on the other:
//!
//! - [`Settings`]: defaults < TOML file < `LOWCODE_FAAS_*` variables, one key table;
//! - [`ApiError`] and [`error::status_of`]: the one exhaustive mapping of
//!   domain errors to HTTP statuses and `{"error", "code"}` bodies;
//! - [`http`]: the warp filter every request goes through (request ids,
//!   constant-time bearer auth, bounded bodies, per-request span, request
//!   metrics) around a [`http::Service`];
//! - [`browser`]: the cross-site rule, CORS and the JSON media type;
//! - [`exposure`]: the worker's refusal to listen beyond loopback without a
//!   token, and the dispatcher's warnings;
//! - [`router`]: 404 vs 405 with `Allow` over a binary's own route table;
//! - [`replies`]: `/healthz`, `/readyz`, `/metrics` and a validated in-process run;
//! - [`logs_api`]: `GET …/function-logs` and the query hints;
//! - [`serve`]: serving with connection bounds and graceful shutdown;
//! - [`engine`]: building the engine (storage, runtime, log sinks, metrics) from settings.
//!
//! Invariants: no route of either binary lives here (each binary owns its
//! route enum and handlers); no business rule; no source fetcher (only the
//! dispatcher fetches, and hands its fetcher to [`engine::build_engine`]).
#![warn(missing_docs)]

pub mod browser;
pub mod config;
pub mod engine;
pub mod error;
pub mod exposure;
pub mod http;
pub mod logs_api;
pub mod metrics;
pub mod replies;
pub mod router;
pub mod serve;
pub mod usage;

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
///
/// The handlers are installed when this function is called, not when the
/// future is first polled: a signal that arrives between "listening" and the
/// first poll of the serving future is not lost (and does not kill the
/// process with the default action).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for {name}");
            None
        }
    };
    let term = install(SignalKind::terminate(), "SIGTERM");
    let int = install(SignalKind::interrupt(), "SIGINT");
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term) => {}
            _ = wait(int) => {}
        }
        tracing::info!("shutdown signal received");
    }
}
