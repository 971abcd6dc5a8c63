//! # faas-handler-kit
//!
//! Test a handler without Docker or a server: [`run_handler`] runs one
//! JavaScript module once on the local `node` (the process runtime) with an
//! in-memory store, through the same engine as the servers, and returns the
//! exact [`RunResult`] an invoke would. A library of its own (domain + the
//! process runtime + the memory store; no HTTP, no database client), so a
//! handler's unit tests do not build the servers. The `faas-server
//! run-handler` command is a thin wrapper over it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), faas_domain::DomainError> {
//! let source = "export async function handler(input) { return { ok: true, data: input.n * 2 }; }";
//! let result = faas_handler_kit::run_handler(source, serde_json::json!({"n": 21})).await?;
//! assert_eq!(result.output["data"], 42);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use faas_adapters::memory::MemorySourceStore;
use faas_adapters::process::{ProcessRuntime, ProcessRuntimeConfig};
use faas_adapters::runner::{ExecutionConfig, ExecutionMode};
use faas_domain::{CreateFunction, DomainError, Engine, InvokeRequest, RunInput, SourceSpec};
use faas_ports::{Component, EnvMap, FunctionName, PortError, RunResult};

/// Options of one handler run; [`HandlerRun::default`] is an empty input,
/// no env, the default timeout, `node` from `PATH` and no logs in the result.
#[derive(Debug, Clone)]
pub struct HandlerRun {
    /// The input object.
    pub input: serde_json::Value,
    /// The run's env (validated like a request env).
    pub env: BTreeMap<String, String>,
    /// Timeout of the run (`None`: the engine's default, 120 s).
    pub timeout: Option<Duration>,
    /// The `node` binary.
    pub node_bin: PathBuf,
    /// The name the function runs under (`handler`).
    pub name: String,
    /// Return the run's `console.*` calls in [`RunResult::logs`], in the
    /// shape an invoke with `include_logs` returns (`stream`, `level`,
    /// `time`, `message`).
    pub include_logs: bool,
}

impl Default for HandlerRun {
    fn default() -> Self {
        Self {
            input: serde_json::Value::Object(serde_json::Map::new()),
            env: BTreeMap::new(),
            timeout: None,
            node_bin: PathBuf::from("node"),
            name: "handler".to_owned(),
            include_logs: false,
        }
    }
}

/// Runs `source` once with `input` and returns its RunResult.
pub async fn run_handler(source: &str, input: serde_json::Value) -> Result<RunResult, DomainError> {
    run_handler_with(
        source,
        HandlerRun {
            input,
            ..HandlerRun::default()
        },
    )
    .await
}

/// Runs `source` once with the given options.
pub async fn run_handler_with(source: &str, run: HandlerRun) -> Result<RunResult, DomainError> {
    // One run: a pool would only start processes nobody uses.
    let runtime = ProcessRuntime::new(ProcessRuntimeConfig {
        node_bin: run.node_bin,
        execution: ExecutionConfig {
            mode: ExecutionMode::Cold,
            ..ExecutionConfig::default()
        },
        ..ProcessRuntimeConfig::default()
    })
    .map_err(|e| PortError::Unavailable {
        component: Component::Runtime,
        message: e.to_string(),
        source: None,
    })?;
    let engine = Engine::builder(Arc::new(MemorySourceStore::new()), Arc::new(runtime)).build();
    let name = FunctionName::parse(&run.name)?;
    engine
        .create_function(CreateFunction::new(name.clone(), SourceSpec::Code(source.to_owned())))
        .await?;
    let mut request = InvokeRequest::new(name)
        .with_input(RunInput::parse(Some(run.input))?)
        .with_env(EnvMap::parse(run.env)?);
    request.timeout = run.timeout;
    request.include_logs = run.include_logs;
    engine.invoke(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_a_handler_once() {
        let source = "export async function handler(input, ctx) { console.log('hi'); return { ok: true, data: { twice: input.n * 2, name: ctx.functionName } }; }";
        let result = run_handler(source, serde_json::json!({"n": 21})).await.unwrap();
        assert_eq!(
            result.output,
            serde_json::json!({"ok": true, "data": {"twice": 42, "name": "handler"}})
        );
        let failed = run_handler("export const nothing = 1;", serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(failed.error_code, Some(faas_ports::ErrorCode::NoHandler));
        let bad = run_handler("x", serde_json::json!([1])).await.unwrap_err();
        assert_eq!(bad.code(), "INVALID_INPUT");
    }

    #[tokio::test]
    async fn logs_only_when_asked() {
        let source =
            "export async function handler() { console.log('one', 1); console.error('two'); return { ok: true }; }";
        let quiet = run_handler(source, serde_json::json!({})).await.unwrap();
        assert_eq!((quiet.logs, quiet.logs_truncated), (None, None));
        let run = HandlerRun {
            include_logs: true,
            ..HandlerRun::default()
        };
        let result = run_handler_with(source, run).await.unwrap();
        let logs = result.logs.unwrap();
        let lines: Vec<_> = logs.iter().map(|l| (l.stream, l.level, l.message.as_str())).collect();
        assert_eq!(
            lines,
            vec![
                (faas_ports::LogStream::Stdout, faas_ports::LogLevel::Log, "one 1"),
                (faas_ports::LogStream::Stderr, faas_ports::LogLevel::Error, "two"),
            ]
        );
        assert!(logs.iter().all(|l| !l.time.is_empty()));
        assert_eq!(result.logs_truncated, Some(false));
    }
}
