//! The embedded `js/bootstrap.mjs` that every runtime writes next to the user module.
//!
//! Protocol between a runtime and the bootstrap (all files in one workspace
//! directory, the bootstrap's own directory):
//! - in: `function.mjs` (the user module), `input.json` (the input object);
//! - out: `output.json`, one envelope: `{"type":"result","value":<handler return>}`
//!   or `{"type":"error","code":"<ERROR_CODE>","message":"…"}`;
//! - out: `logs.ndjson`, one `{"ts","level","message"}` object per `console.*` call,
//!   bounded by `LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES`.
//!
//! The process exits 0 after writing the envelope.

/// Source of `js/bootstrap.mjs`.
pub const BOOTSTRAP_MJS: &str = include_str!("../../js/bootstrap.mjs");

/// File name of the bootstrap inside a workspace.
pub const BOOTSTRAP_FILE: &str = "bootstrap.mjs";
/// File name of the user module inside a workspace.
pub const FUNCTION_FILE: &str = "function.mjs";
/// File name of the input inside a workspace.
pub const INPUT_FILE: &str = "input.json";
/// File name of the result envelope inside a workspace.
pub const OUTPUT_FILE: &str = "output.json";
/// File name of the captured logs inside a workspace.
pub const LOG_FILE: &str = "logs.ndjson";
/// Env variable carrying the log cap to the bootstrap.
pub const LOG_MAX_BYTES_ENV: &str = "LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES";
/// What V8 prints on stderr when its heap limit is hit (both runtimes read it
/// to tell `OUT_OF_MEMORY` from a plain crash).
pub const NODE_OOM_MARKERS: [&str; 2] = ["JavaScript heap out of memory", "Reached heap limit"];
