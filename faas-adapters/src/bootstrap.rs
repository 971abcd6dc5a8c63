//! The embedded `js/bootstrap.mjs` that both runtimes start as a runner
//! (`bootstrap.mjs --serve`, speaking the stdio protocol of
//! `runner::protocol`), and what the runtimes read from it. Its one-shot
//! file mode (`function.mjs`, `input.json`, `output.json`, `logs.ndjson`)
//! is described in `js/bootstrap.mjs` itself; no Rust code uses it.

/// Source of `js/bootstrap.mjs`.
pub const BOOTSTRAP_MJS: &str = include_str!("../../js/bootstrap.mjs");

/// File name of the bootstrap inside a process runner's workspace.
#[cfg(feature = "process")]
pub const BOOTSTRAP_FILE: &str = "bootstrap.mjs";
/// Env variable carrying the log cap to the bootstrap.
pub const LOG_MAX_BYTES_ENV: &str = "LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES";
/// What V8 prints on stderr when its heap limit is hit (both runtimes read it
/// to tell `OUT_OF_MEMORY` from a plain crash).
pub const NODE_OOM_MARKERS: [&str; 2] = ["JavaScript heap out of memory", "Reached heap limit"];
