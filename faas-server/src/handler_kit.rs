//! Test a handler without Docker or a server: [`run_handler`] runs one
//! JavaScript module once on the local `node` (the process runtime) with an
//! in-memory store, through the same engine as the servers, and returns the
//! exact [`RunResult`] an invoke would. The `faas-server run-handler` command
//! is the same thing from a shell.
//!
//! ```no_run
//! # async fn demo() -> Result<(), faas_domain::DomainError> {
//! let source = "export async function handler(input) { return { ok: true, data: input.n * 2 }; }";
//! let result = faas_server::handler_kit::run_handler(source, serde_json::json!({"n": 21})).await?;
//! assert_eq!(result.output["data"], 42);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use faas_adapters::memory::MemorySourceStore;
use faas_adapters::process::{ProcessRuntime, ProcessRuntimeConfig};
use faas_adapters::runner::{ExecutionConfig, ExecutionMode};
use faas_domain::{CreateFunction, DomainError, Engine, InvokeRequest, RunInput, SourceSpec};
use faas_ports::{CollectionPath, Component, EnvMap, FunctionName, Language, PortError, RunResult};

/// Options of one handler run; [`HandlerRun::default`] is an empty input,
/// no env, the default timeout and `node` from `PATH`.
#[derive(Debug, Clone)]
pub struct HandlerRun {
    /// The input object.
    pub input: serde_json::Value,
    /// The run's env (validated like a request env).
    pub env: BTreeMap<String, String>,
    /// Timeout in ms (`None`: 120 s).
    pub timeout_ms: Option<i64>,
    /// The `node` binary.
    pub node_bin: PathBuf,
    /// The name the function runs under (`handler`).
    pub name: String,
}

impl Default for HandlerRun {
    fn default() -> Self {
        Self {
            input: serde_json::Value::Object(serde_json::Map::new()),
            env: BTreeMap::new(),
            timeout_ms: None,
            node_bin: PathBuf::from("node"),
            name: "handler".to_owned(),
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
        .create_function(CreateFunction {
            collection_path: CollectionPath::root(),
            name: name.clone(),
            language: Language::Javascript,
            source: SourceSpec::Code(source.to_owned()),
            env: EnvMap::new(),
        })
        .await?;
    engine
        .invoke(InvokeRequest {
            collection_path: CollectionPath::root(),
            name,
            input: RunInput::parse(Some(run.input))?,
            timeout_ms: run.timeout_ms,
            env: EnvMap::parse(run.env)?,
            version: None,
        })
        .await
}

/// `faas-server run-handler <file.mjs> [--input JSON] [--env KEY=VALUE]... [--timeout-ms N] [--node BIN]`:
/// parses the arguments after `run-handler`.
pub fn parse_args(args: &[String]) -> Result<(PathBuf, HandlerRun), String> {
    let mut path = None;
    let mut run = HandlerRun::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--input" => {
                let raw = value("--input")?;
                run.input = serde_json::from_str(&raw).map_err(|e| format!("--input is not JSON: {e}"))?;
            }
            "--env" => {
                let raw = value("--env")?;
                let (k, v) = raw.split_once('=').ok_or("--env takes KEY=VALUE")?;
                run.env.insert(k.to_owned(), v.to_owned());
            }
            "--timeout-ms" => {
                let raw = value("--timeout-ms")?;
                run.timeout_ms = Some(raw.parse().map_err(|_| "--timeout-ms takes an integer")?);
            }
            "--node" => run.node_bin = PathBuf::from(value("--node")?),
            "--name" => run.name = value("--name")?,
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other if path.is_none() => path = Some(PathBuf::from(other)),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok((path.ok_or("the handler file is required")?, run))
}

/// Usage text of `run-handler`.
pub const USAGE: &str = "usage: faas-server run-handler <handler.mjs> [--input JSON] [--env KEY=VALUE]... [--timeout-ms N] [--node BIN] [--name NAME]";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_arguments() {
        let (path, run) = parse_args(&args(&[
            "h.mjs",
            "--input",
            r#"{"a":1}"#,
            "--env",
            "K=v=w",
            "--timeout-ms",
            "500",
        ]))
        .unwrap();
        assert_eq!(path, PathBuf::from("h.mjs"));
        assert_eq!(run.input, serde_json::json!({"a": 1}));
        assert_eq!(run.env["K"], "v=w");
        assert_eq!(run.timeout_ms, Some(500));
        assert!(parse_args(&args(&[])).is_err());
        assert!(parse_args(&args(&["h.mjs", "--input"])).is_err());
        assert!(parse_args(&args(&["h.mjs", "--input", "{"])).is_err());
        assert!(parse_args(&args(&["h.mjs", "--bogus"])).is_err());
    }

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
}
