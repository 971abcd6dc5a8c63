//! The black-box suite: one test binary, the real dispatcher and worker
//! started on `127.0.0.1:0` over temp data directories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod connections;
mod dispatcher;
mod docker;
mod go_clients;
mod go_compat;
mod isolation;
mod log_sinks;
mod multi_worker;
mod openapi;
mod secrets;
mod worker;
