//! `faas run`: one handler call on this machine, without a server, through
//! the handler kit ([`faas_handler_kit`]): the servers' own engine with the
//! process runtime and an in-memory store. The result is the RunResult an
//! invoke of the deployed function would return, logs included (asked for
//! as with `include_logs`, so they have the invoke's `stream`, `level`,
//! `time`, `message` shape).
//!
//! Like the process runtime this is not an isolation boundary: the handler
//! runs as the current user, with a cleared environment (the `--env`
//! values plus the `LOWCODE_FAAS_*` platform variables).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use faas_handler_kit::{run_handler_with, HandlerRun};
use faas_ports::report::Report;
use serde_json::Value;

use crate::error::CliError;

/// The function name a local run uses when the file's stem is not a valid
/// one (the kit's default).
pub const DEFAULT_NAME: &str = "handler";

/// What a local run needs.
#[derive(Debug)]
pub struct LocalRun<'a> {
    /// The handler module's source.
    pub source: &'a str,
    /// The function name seen by the handler (`context.functionName`).
    pub name: &'a str,
    /// The handler's `input` (a JSON object).
    pub input: Value,
    /// The `--env` values (keys already checked: no reserved ones).
    pub env: BTreeMap<String, String>,
    /// Kill the run after this long.
    pub timeout: Duration,
    /// The `node` binary (a bare name is looked up on `PATH`).
    pub node: &'a str,
}

/// Runs the handler once and returns its RunResult as JSON, with `logs`.
///
/// What the kit refuses before running (an empty source, an env value or
/// a timeout the API would refuse too) is a [`CliError::Usage`] naming the
/// API's code; a missing `node` is one too.
pub async fn run(spec: LocalRun<'_>) -> Result<Value, CliError> {
    let node = find_program(spec.node).ok_or_else(|| {
        CliError::Usage(format!(
            "cannot find `{}` on PATH: faas run needs Node.js 18 or newer",
            spec.node
        ))
    })?;
    let run = HandlerRun {
        input: spec.input,
        env: spec.env,
        timeout: Some(spec.timeout),
        node_bin: node,
        name: spec.name.to_owned(),
        include_logs: true,
    };
    let result = run_handler_with(spec.source, run)
        .await
        .map_err(|e| CliError::Usage(format!("{}: {}", e.code(), Report(&e))))?;
    serde_json::to_value(&result).map_err(|e| CliError::Usage(format!("cannot show the run's result: {e}")))
}

/// `program` itself when it contains a `/`, else the first file of that
/// name on `PATH`: checked here so that a missing `node` is a usage error
/// with a hint rather than a failed run.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_is_none() {
        assert!(find_program("/nonexistent/node").is_none());
        assert!(find_program("surely-not-a-program-faas").is_none());
    }

    #[tokio::test]
    async fn a_missing_node_is_a_usage_error() {
        let err = run(LocalRun {
            source: "export function handler() { return { ok: true }; }",
            name: "h",
            input: serde_json::json!({}),
            env: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            node: "/nonexistent/node",
        })
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("Node.js"), "{err}");
    }

    #[tokio::test]
    async fn what_the_kit_refuses_is_a_usage_error_with_its_code() {
        let err = run(LocalRun {
            source: "   ",
            name: "h",
            input: serde_json::json!({}),
            env: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            node: "node",
        })
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().starts_with("EMPTY_SOURCE: "), "{err}");
    }
}
