//! # faas-server
//!
//! The lowcode-faas dispatcher: the public HTTP API of docs/api.md on warp.
//! This crate is a composition root: it reads [`Settings`], builds the
//! adapters, hands them to [`faas_domain::Engine`], and maps domain errors to
//! HTTP replies (`{"error": "...", "code": "..."}`) in one place
//! ([`error::status_of`]).
//!
//! The library API is [`app`]:
//!
//! - [`app::build_dispatcher`] builds a [`app::Dispatcher`] from settings,
//!   [`app::DispatcherBuilder`] from typed values (your engine);
//! - [`app::routes`] is the warp filter of the whole API, to serve or to
//!   mount inside another warp app;
//! - [`app::spawn`] starts a dispatcher in the background (tests use it with
//!   `LOWCODE_FAAS_LISTEN=127.0.0.1:0`);
//! - [`handler_kit`] is `faas-server run-handler file.mjs --input '{…}'`, a
//!   thin wrapper over the `faas-handler-kit` library;
//! - the HTTP plumbing shared with the worker (settings, error mapping,
//!   request ids, auth, bounded bodies, metrics, serving) is the
//!   `faas-http` crate.
//!
//! Inside (private): `api` answers each route; `ui` is the embedded
//! playground served at `/ui/`; `openapi` is the OpenAPI 3.1 document
//! served at `/openapi.json`; `router` is the pure path → route table (404
//! vs 405 with `Allow`); `proxy` is proxy mode: the workers of
//! `LOWCODE_FAAS_WORKER_URL`, the rendezvous choice of one per invoke,
//! failover only when a run never left, and worker health.
//!
//! Invariants: no business rule lives here; every body is read with a cap;
//! every reply is JSON (except `/metrics`) and carries `x-request-id`.
#![warn(missing_docs)]

mod api;
pub mod app;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod handler_kit;
mod openapi;
mod proxy;
mod router;
mod ui;

pub use faas_http::{config, error, init_tracing, shutdown_signal, ApiError, ServerError, Settings};
