//! # faas-adapters
//!
//! Implementations of the `faas-ports` traits, each behind its own cargo feature:
//!
//! | feature | module | port |
//! |---|---|---|
//! | `fs` | [`fs`] | `SourceStore` over the `files` data layout (docs/api.md) |
//! | `process` | [`process`] | `ContainerRuntime` running `node` processes (development) |
//! | `docker` | `docker` | `ContainerRuntime` running containers through the Engine API |
//! | `process` or `docker` | [`runner`] | what both runtimes share: the stdio protocol, execution modes, the pool |
//! | `http-fetch` | [`fetch`] | `SourceFetcher` with SSRF protection (docs/api.md) |
//! | `memory` | [`memory`] | `SourceStore` in memory with full history (tests, examples) |
//! | `logs` | [`logs`] | `LogSink`s: stdout lines, docker_json lines, the in-memory buffer, fan-out |
//! | `loki` | [`loki`] | `LogSink` pushing batches to Grafana Loki |
//! | `elasticsearch` | [`elasticsearch`] | `LogSink` pushing bulk batches to Elasticsearch |
//! | `webhook` | [`webhook`] | `LogSink` posting each entry to an HTTP endpoint |
//! | `outbound-proxy` | [`outbound`] | `HTTP(S)_PROXY` / `NO_PROXY` for clients of our own infrastructure |
//! | `postgres` + `s3` | `db_s3` | `SourceStore` over PostgreSQL metadata and S3 sources (docs/api.md) |
//! | `encryption` | [`encryption`] | `SourceStore` decorator: env values encrypted at rest (docs/api.md) |
//! | (none) | [`cache`] | `SourceStore` decorator: the bounded function cache (docs/api.md) |
//! | `testkit` | `testkit` | the `SourceStore` contract suite every backend runs |
//! | `fuzzing` | `fuzzing` (hidden) | entry points into the private parsers for the fuzz targets of `fuzz/` |
//!
//! Invariants: adapters translate backend errors into `PortError`s by meaning
//! (one `map_error` per backend) and never let a backend type escape through a
//! port; every read and wait is bounded; blocking file work runs on
//! `spawn_blocking` or tokio's fs.
#![warn(missing_docs)]

// The embedded `js/bootstrap.mjs`: only the runtimes use it.
#[cfg(any(feature = "process", feature = "docker"))]
mod bootstrap;
pub mod cache;
mod error;
pub mod unavailable;

pub use error::AdapterError;

#[cfg(feature = "fs")]
pub mod fs;

#[cfg(feature = "encryption")]
pub mod encryption;

#[cfg(any(feature = "process", feature = "docker"))]
pub mod runner;

#[cfg(feature = "process")]
pub mod process;

#[cfg(feature = "docker")]
pub mod docker;

#[cfg(feature = "http-fetch")]
pub mod fetch;

// Also under `cfg(test)`: its contract suite runs under plain `cargo test -p faas-adapters`.
#[cfg(any(test, feature = "memory"))]
pub mod memory;

#[cfg(feature = "logs")]
pub mod logs;

#[cfg(feature = "loki")]
pub mod loki;

#[cfg(feature = "elasticsearch")]
pub mod elasticsearch;

#[cfg(feature = "webhook")]
pub mod webhook;

#[cfg(feature = "outbound-proxy")]
pub mod outbound;

#[cfg(all(feature = "postgres", feature = "s3"))]
pub mod db_s3;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(all(any(test, feature = "testkit"), any(feature = "process", feature = "docker")))]
pub mod runtime_contract;
