//! `faas run`: one handler call on this machine, without a server. It uses
//! the platform's own bootstrap (`js/bootstrap.mjs`, embedded at build
//! time) in one-shot mode: `bootstrap.mjs`, `function.mjs` and `input.json`
//! go into a fresh temp directory, `node bootstrap.mjs` runs there with a
//! cleared environment (the `--env` values plus the `LOWCODE_FAAS_*`
//! platform variables), and `output.json` / `logs.ndjson` are read back.
//!
//! Like the process runtime this is not an isolation boundary: the handler
//! runs as the current user.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::error::CliError;

/// The bootstrap the runtimes use, as built into this binary.
pub const BOOTSTRAP: &str = include_str!("../../js/bootstrap.mjs");

/// The log cap given to the bootstrap (the server's default).
pub const LOG_MAX_BYTES: u64 = 1_048_576;

/// The largest `output.json` read back.
const MAX_OUTPUT_BYTES: u64 = 64 * 1024 * 1024;

/// What a local run needs.
#[derive(Debug)]
pub struct LocalRun<'a> {
    /// The handler module's source.
    pub source: &'a str,
    /// The function name seen by the handler (`context.functionName`).
    pub name: &'a str,
    /// The handler's `input`.
    pub input: &'a Value,
    /// The `--env` values (keys already checked: no reserved ones).
    pub env: &'a Map<String, Value>,
    /// Kill the run after this long.
    pub timeout: Duration,
    /// The `node` binary (a bare name is looked up on `PATH`).
    pub node: &'a str,
}

/// A RunResult-like object for the local run: `status`, `output`,
/// `error_code`/`error_message` on failure, `duration_ms`, `start_kind`
/// (`"local"`), `run_id` and `logs` (`{ts, level, message}` entries).
pub async fn run(spec: &LocalRun<'_>) -> Result<Value, CliError> {
    let node = find_program(spec.node).ok_or_else(|| {
        CliError::Usage(format!(
            "cannot find `{}` on PATH: faas run needs Node.js 18 or newer",
            spec.node
        ))
    })?;
    let dir = tempfile::Builder::new()
        .prefix("faas-run-")
        .tempdir()
        .map_err(|e| CliError::Usage(format!("cannot create a temp directory: {e}")))?;
    let write = |file: &str, text: &str| {
        std::fs::write(dir.path().join(file), text)
            .map_err(|e| CliError::Usage(format!("cannot write {file} in the temp directory: {e}")))
    };
    write("bootstrap.mjs", BOOTSTRAP)?;
    write("function.mjs", spec.source)?;
    write("input.json", &spec.input.to_string())?;

    let run_id = local_run_id();
    let deployment_id = format!("{}@v0", spec.name);
    let mut cmd = tokio::process::Command::new(&node);
    cmd.arg(dir.path().join("bootstrap.mjs"))
        .current_dir(dir.path())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in spec.env {
        if let Some(v) = v.as_str() {
            cmd.env(k, v);
        }
    }
    cmd.env("LOWCODE_FAAS_RUN_ID", &run_id)
        .env("LOWCODE_FAAS_EXECUTION_ID", &run_id)
        .env("LOWCODE_FAAS_FUNCTION_NAME", spec.name)
        .env("LOWCODE_FAAS_COLLECTION_PATH", "")
        .env("LOWCODE_FAAS_DEPLOYMENT_ID", &deployment_id)
        .env("LOWCODE_FAAS_DEPLOYMENT_VERSION", "0")
        .env("LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES", LOG_MAX_BYTES.to_string());

    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| CliError::Usage(format!("cannot start {}: {e}", node.display())))?;
    // On timeout the future (and with it the child) is dropped: kill_on_drop
    // kills node.
    let waited = tokio::time::timeout(spec.timeout, child.wait_with_output()).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let logs = read_logs(&dir.path().join("logs.ndjson"));

    let mut result = match waited {
        Err(_) => failed(
            "TIMEOUT",
            &format!("function timed out after {} ms", spec.timeout.as_millis()),
        ),
        Ok(Err(e)) => failed("INTERNAL", &format!("waiting for node failed: {e}")),
        Ok(Ok(output)) => match read_envelope(&dir.path().join("output.json")) {
            Some(envelope) => from_envelope(&envelope),
            None => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let tail: String = {
                    let chars: Vec<char> = stderr.trim().chars().collect();
                    chars[chars.len().saturating_sub(2000)..].iter().collect()
                };
                failed(
                    "EXITED_WITHOUT_OUTPUT",
                    &format!(
                        "node exited ({}) without writing output.json{}{}",
                        output.status,
                        if tail.is_empty() { "" } else { ": " },
                        tail
                    ),
                )
            }
        },
    };
    if let Some(obj) = result.as_object_mut() {
        obj.insert("run_id".into(), json!(run_id));
        obj.insert("execution_id".into(), json!(run_id));
        obj.insert("function_id".into(), json!(spec.name));
        obj.insert("deployment_id".into(), json!(deployment_id));
        obj.insert("duration_ms".into(), json!(duration_ms));
        obj.insert("start_kind".into(), json!("local"));
        obj.insert("logs".into(), Value::Array(logs));
    }
    Ok(result)
}

/// The RunResult fields of an `output.json` envelope.
pub fn from_envelope(envelope: &Value) -> Value {
    match envelope.get("type").and_then(Value::as_str) {
        Some("result") => json!({
            "status": "success",
            "output": envelope.get("value").cloned().unwrap_or(Value::Null),
            "error_message": "",
        }),
        Some("error") => {
            let code = envelope.get("code").and_then(Value::as_str).unwrap_or("INTERNAL");
            let message = envelope.get("message").and_then(Value::as_str).unwrap_or("");
            failed(code, message)
        }
        _ => failed("BAD_RETURN", "output.json is not a valid result envelope"),
    }
}

fn failed(code: &str, message: &str) -> Value {
    json!({
        "status": "failed",
        "error_code": code,
        "error_message": message,
        "output": {"ok": false, "error": message, "code": code},
    })
}

fn read_envelope(path: &Path) -> Option<Value> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_OUTPUT_BYTES {
        return Some(json!({"type":"error","code":"OUTPUT_TOO_LARGE",
            "message": format!("output.json is larger than {MAX_OUTPUT_BYTES} bytes")}));
    }
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or(json!({"type": "invalid"})))
}

/// The `logs.ndjson` lines that parse as JSON objects (the file is bounded
/// by the bootstrap's log cap).
fn read_logs(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(Value::is_object)
                .collect()
        })
        .unwrap_or_default()
}

fn local_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("run-local-{}-{nanos}", std::process::id())
}

/// `program` itself when it contains a `/`, else the first executable file
/// of that name on `PATH`. The child's env is cleared, so the lookup is
/// done here, against this process's `PATH`.
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
    fn envelopes() {
        let ok = from_envelope(&json!({"type":"result","value":{"ok":true}}));
        assert_eq!(ok["status"], "success");
        assert_eq!(ok["output"], json!({"ok":true}));

        let err = from_envelope(&json!({"type":"error","code":"SYNTAX_ERROR","message":"SyntaxError: x"}));
        assert_eq!(err["status"], "failed");
        assert_eq!(err["error_code"], "SYNTAX_ERROR");
        assert_eq!(err["output"]["code"], "SYNTAX_ERROR");

        let bad = from_envelope(&json!({"type":"nope"}));
        assert_eq!(bad["error_code"], "BAD_RETURN");
    }

    #[test]
    fn bootstrap_is_embedded() {
        assert!(BOOTSTRAP.contains("output.json"));
    }

    #[test]
    fn missing_program_is_none() {
        assert!(find_program("/nonexistent/node").is_none());
        assert!(find_program("surely-not-a-program-faas").is_none());
    }
}
