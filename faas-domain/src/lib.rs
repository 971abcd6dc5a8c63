//! # faas-domain
//!
//! What lowcode-faas decides, over the `faas-ports` traits:
//!
//! - collection env inheritance and env precedence (`env`): root → … →
//!   leaf collection → function → request, last wins, then the platform
//!   variables;
//! - deployments and version pinning, the create/update/pull/delete/list/
//!   versions use cases (`functions`), collections (`collections`);
//! - the invoke use case ([`Engine::invoke`]) and the judgement of what a run
//!   returned into a [`faas_ports::RunResult`] ([`run_result`]);
//! - capacity limits: at most N runs at once, a bounded queue, refusal beyond
//!   it (`capacity`);
//! - the ready-made queries for log backends, escaped per language
//!   ([`log_queries`]).
//!
//! The entry point is [`Engine`], built with [`Engine::builder`] from
//! `Arc<dyn SourceStore>` and `Arc<dyn ContainerRuntime>` (plus an optional
//! fetcher and log sink).
//!
//! Invariants: this crate never touches HTTP, SQL, Docker, S3, files,
//! processes or environment variables. Its only runtime dependency beyond
//! serde/thiserror/tracing is tokio's `sync` and `time` (a semaphore and
//! timers for the run queue), no I/O. Errors carry stable machine codes and
//! know nothing about HTTP status numbers.
#![warn(missing_docs)]

mod capacity;
mod collections;
mod engine;
mod env;
mod error;
mod functions;
mod invoke;
pub mod log_queries;
mod logs;
pub mod run_result;

pub use engine::{Engine, EngineBuilder, EngineStats, Health, Limits, StartCounts};
pub use error::DomainError;
pub use functions::{CreateFunction, SourceSpec, UpdateFunction};
pub use invoke::{InvokeRequest, RunInput};
/// The readers of a run's captured log lines, for the fuzz targets of `fuzz/`.
#[doc(hidden)]
pub use logs::{parse_captured, run_logs};
pub use logs::{RUN_LOGS_MAX_ENTRIES, RUN_LOGS_MAX_MESSAGE_BYTES};

#[cfg(test)]
mod tests;
