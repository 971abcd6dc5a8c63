//! The [`ContainerRuntime`] contract suite: the same jobs give the same
//! outcomes (the same `ErrorCode`s, the same messages where SPEC fixes them)
//! on every runtime. The process runtime and the Docker runtime both run
//! [`container_runtime_contract`], so what a function sees, and what the
//! caller gets back, does not depend on where it ran.
//!
//! The runtime under test must be built with its defaults for limits
//! (memory well above what these small handlers need). Each `check_*`
//! function can also run alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use faas_ports::{ContainerRuntime, ErrorCode, RunId, RunJob, RunOutput};
use serde_json::{json, Value};

use crate::bootstrap::LOG_MAX_BYTES_ENV;

const MIB: u64 = 1024 * 1024;

/// Variables a container image or engine may add on its own (Docker sets
/// `HOSTNAME` and `HOME`, images set `PATH`); nothing else may appear
/// besides the job's env and the log cap.
pub const ALLOWED_EXTRA_ENV: [&str; 3] = ["PATH", "HOME", "HOSTNAME"];

/// Runs every check of the contract. `expected_uid` is the user the runtime
/// runs functions as (the container user; for the process runtime, the
/// service's own user).
pub async fn container_runtime_contract(rt: &dyn ContainerRuntime, expected_uid: u32) {
    check_success(rt).await;
    check_bootstrap_errors(rt).await;
    check_exited_without_output(rt).await;
    check_output_too_large(rt).await;
    check_out_of_memory(rt).await;
    check_timeout(rt).await;
    check_env(rt).await;
    check_uid(rt, expected_uid).await;
    check_concurrent_runs(rt).await;
}

/// A handler that fills the JavaScript heap: `OUT_OF_MEMORY` on every
/// runtime (the V8 heap limit of the process runtime, the cgroup limit of a
/// container), never a timeout or a missing result.
pub async fn check_out_of_memory(rt: &dyn ContainerRuntime) {
    let mut job = contract_job(
        "export async function handler() { const keep = []; while (true) keep.push(new Array(100000).fill(0).map((_, i) => ({ i }))); }",
    );
    job.timeout = Duration::from_secs(60);
    let failure = rt.run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::OutOfMemory, "{}", failure.message);
    assert_eq!(failure.message, "function ran out of memory (memory limit 256 MB)");
}

/// The function runs as the expected user.
pub async fn check_uid(rt: &dyn ContainerRuntime, expected_uid: u32) {
    let job = contract_job("export async function handler() { return { ok: true, data: process.getuid() }; }");
    let output = rt.run(job).await.expect("the uid handler succeeds");
    assert_eq!(envelope(&output)["value"]["data"], json!(expected_uid));
}

/// A job with the platform variables of SPEC §5 and generous limits.
pub fn contract_job(source: &str) -> RunJob {
    let run_id = RunId::generate();
    let env = BTreeMap::from([
        ("LOWCODE_FAAS_RUN_ID".to_string(), run_id.to_string()),
        ("LOWCODE_FAAS_EXECUTION_ID".to_string(), run_id.to_string()),
        ("LOWCODE_FAAS_FUNCTION_NAME".to_string(), "hello".to_string()),
        ("LOWCODE_FAAS_COLLECTION_PATH".to_string(), "a/b".to_string()),
        ("LOWCODE_FAAS_DEPLOYMENT_ID".to_string(), "a/b/hello@v2".to_string()),
        ("LOWCODE_FAAS_DEPLOYMENT_VERSION".to_string(), "2".to_string()),
    ]);
    RunJob {
        run_id,
        function_id: "a/b/hello".into(),
        deployment_id: "a/b/hello@v2".into(),
        source_code: source.into(),
        input_json: b"{}".to_vec(),
        env,
        timeout: Duration::from_secs(60),
        max_output_bytes: 6 * MIB,
        max_log_bytes: MIB,
    }
}

/// The parsed `output.json` envelope of a run.
pub fn envelope(output: &RunOutput) -> Value {
    serde_json::from_slice(&output.output_json).expect("output.json is one JSON envelope")
}

/// The messages of the captured log lines, in order.
pub fn log_messages(logs: &[u8]) -> Vec<String> {
    std::str::from_utf8(logs)
        .expect("logs are UTF-8")
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).expect("each log line is a JSON object");
            entry["message"]
                .as_str()
                .expect("a log entry has a message")
                .to_string()
        })
        .collect()
}

/// A handler's result, its context and its logs (top-level ones included) come back.
pub async fn check_success(rt: &dyn ContainerRuntime) {
    let mut job = contract_job(
        r#"
        console.log("top level");
        export async function handler(input, context) {
          console.log("a", 7);
          console.warn("%s=%d", "n", 42);
          return { ok: true, data: { input, context: { ...context } } };
        }"#,
    );
    job.input_json = br#"{"name":"x"}"#.to_vec();
    let run_id = job.run_id.to_string();

    let output = rt.run(job).await.expect("a valid handler succeeds");

    assert_eq!(
        envelope(&output),
        json!({"type": "result", "value": {"ok": true, "data": {
            "input": {"name": "x"},
            "context": {
                "runId": run_id, "executionId": run_id, "functionName": "hello",
                "collectionPath": "a/b", "deploymentId": "a/b/hello@v2", "deploymentVersion": 2
            },
        }}})
    );
    assert_eq!(log_messages(&output.logs), ["top level", "a 7", "n=42"]);
}

/// Every code the bootstrap decides arrives as an error envelope.
pub async fn check_bootstrap_errors(rt: &dyn ContainerRuntime) {
    let valid = "export async function handler() { return { ok: true }; }";
    let cases: [(&str, &[u8], &str, &str); 5] = [
        (
            "export async function handler() { throw new Error('boom'); }",
            b"{}",
            "HANDLER_THROW",
            "boom",
        ),
        (
            "export async function handler() { return { ok: 'yes' }; }",
            b"{}",
            "BAD_RETURN",
            "boolean \"ok\"",
        ),
        ("export const other = 1;", b"{}", "NO_HANDLER", "no \"handler\" export"),
        ("export async function handler( {", b"{}", "SYNTAX_ERROR", "SyntaxError"),
        (valid, b"{not json\xff", "BAD_INPUT", "input.json"),
    ];
    for (source, input, code, message) in cases {
        let mut job = contract_job(source);
        job.input_json = input.to_vec();
        let output = rt.run(job).await.expect("bootstrap errors are envelopes, not failures");
        let env = envelope(&output);
        assert_eq!(env["type"], "error", "{code}: {env}");
        assert_eq!(env["code"], code, "{env}");
        let text = env["message"].as_str().expect("an error envelope has a message");
        assert!(text.contains(message), "{code}: {text}");
    }
}

/// A process that ends without an envelope: `EXITED_WITHOUT_OUTPUT` with its
/// exit status, the end of its stderr, and the logs it wrote.
pub async fn check_exited_without_output(rt: &dyn ContainerRuntime) {
    let job = contract_job(
        "export async function handler() { console.log('before exit'); process.stderr.write('bye\\n'); process.exit(3); }",
    );
    let failure = rt.run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::ExitedWithoutOutput, "{}", failure.message);
    assert_eq!(
        failure.message,
        "function exited without writing a result (exit status: 3); stderr: bye"
    );
    assert_eq!(log_messages(&failure.logs), ["before exit"]);
}

/// An envelope above `max_output_bytes`: `OUTPUT_TOO_LARGE` with its size.
pub async fn check_output_too_large(rt: &dyn ContainerRuntime) {
    let mut job = contract_job("export async function handler() { return { ok: true, data: 'x'.repeat(200000) }; }");
    job.max_output_bytes = 1024;
    let failure = rt.run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::OutputTooLarge, "{}", failure.message);
    assert_eq!(
        failure.message,
        "function output (200047 bytes) is larger than the limit of 1024 bytes"
    );
}

/// A handler that never ends: `TIMEOUT` naming the limit, with the logs so far.
pub async fn check_timeout(rt: &dyn ContainerRuntime) {
    let mut job = contract_job("export async function handler() { console.log('spinning'); while (true) {} }");
    job.timeout = Duration::from_secs(1);
    let failure = rt.run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::Timeout, "{}", failure.message);
    assert_eq!(failure.message, "function timed out after 1000 ms");
    assert_eq!(log_messages(&failure.logs), ["spinning"]);
}

/// The run sees the job's env and the log cap, and nothing of the host
/// beyond [`ALLOWED_EXTRA_ENV`].
pub async fn check_env(rt: &dyn ContainerRuntime) {
    let mut job = contract_job("export async function handler() { return { ok: true, data: process.env }; }");
    job.env.insert("USER_VAR".into(), "1 = two".into());
    let expected = job.env.clone();
    let max_log_bytes = job.max_log_bytes;

    let output = rt.run(job).await.expect("the env handler succeeds");

    let env: BTreeMap<String, String> =
        serde_json::from_value(envelope(&output)["value"]["data"].clone()).expect("process.env is a string map");
    for (key, value) in &expected {
        assert_eq!(env.get(key), Some(value), "{key}");
    }
    assert_eq!(env.get(LOG_MAX_BYTES_ENV), Some(&max_log_bytes.to_string()));
    let extra: BTreeSet<&str> = env
        .keys()
        .map(String::as_str)
        .filter(|k| !expected.contains_key(*k) && *k != LOG_MAX_BYTES_ENV)
        .collect();
    for key in extra {
        assert!(
            ALLOWED_EXTRA_ENV.contains(&key),
            "variable {key} reached the run from outside the job"
        );
    }
}

/// Eight runs at once all succeed, each with its own input and logs.
pub async fn check_concurrent_runs(rt: &dyn ContainerRuntime) {
    let runs = (0..8).map(|i| {
        let mut job = contract_job(
            "export async function handler(input) { console.log('run', input.i); return { ok: true, data: input.i }; }",
        );
        job.input_json = format!(r#"{{"i":{i}}}"#).into_bytes();
        async move { (i, rt.run(job).await) }
    });
    for (i, outcome) in futures_util::future::join_all(runs).await {
        let output = outcome.unwrap_or_else(|f| panic!("run {i} failed: {f:?}"));
        assert_eq!(
            envelope(&output),
            json!({"type": "result", "value": {"ok": true, "data": i}})
        );
        assert_eq!(log_messages(&output.logs), [format!("run {i}")]);
    }
}
