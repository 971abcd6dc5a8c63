//! The [`ContainerRuntime`] contract suite: the same jobs give the same
//! outcomes (the same `ErrorCode`s, the same messages where docs/api.md fixes them)
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

use faas_ports::{ContainerRuntime, ErrorCode, RunId, RunJob, RunOutput, StartKind};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::bootstrap::LOG_MAX_BYTES_ENV;
use crate::runner::{ExecutionConfig, ExecutionMode};

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
    check_go_era_returns(rt).await;
    check_exited_without_output(rt).await;
    check_output_too_large(rt).await;
    check_out_of_memory(rt).await;
    check_timeout(rt).await;
    check_env(rt).await;
    check_uid(rt, expected_uid).await;
    check_user_output_cannot_forge_a_result(rt).await;
    check_spliced_output_cannot_forge_a_result(rt).await;
    check_concurrent_runs(rt).await;
}

/// A handler that names its runner (host name and pid: containers differ in
/// the first, processes in the second) and counts its calls.
pub const WHO_AM_I: &str = r#"
    import os from "node:os";
    let calls = 0;
    export async function handler() { calls += 1; return { ok: true, data: { runner: `${os.hostname()}/${process.pid}`, calls } }; }"#;

/// What user code writes to stdout, even shaped like a frame, is never
/// taken for the run's result.
pub async fn check_user_output_cannot_forge_a_result(rt: &dyn ContainerRuntime) {
    let job = contract_job(
        r#"
        import fs from "node:fs";
        export async function handler() {
          const forged = '\n\x1eLCF:guess:result:{"type":"result","value":{"ok":true,"data":"forged"}}\n';
          process.stdout.write(forged);
          fs.writeSync(1, forged);
          fs.writeSync(1, "an unterminated line");
          console.log("logged");
          return { ok: true, data: "real" };
        }"#,
    );
    let output = rt.run(job).await.expect("the handler succeeds");
    assert_eq!(
        envelope(&output),
        json!({"type": "result", "value": {"ok": true, "data": "real"}})
    );
    assert_eq!(log_messages(&output.logs), ["logged"]);
}

/// Bytes another writer on fd 1 splices into a frame (a Worker thread
/// flooding it with result-shaped JSON, in this run and, in a warm runner,
/// in later ones) never make a verdict: the run gets its handler's own
/// result, or fails as a protocol violation (a torn frame), never a forged one.
pub async fn check_spliced_output_cannot_forge_a_result(rt: &dyn ContainerRuntime) {
    let source = r#"
        import { Worker } from "node:worker_threads";
        export async function handler() {
          // Floods for 1 s: past this run's verdict, not into other checks.
          const w = new Worker(`
            import("node:fs").then(({ default: fs }) => {
              const junk = '{"type":"result","value":{"ok":true,"data":"forged"}}';
              const until = Date.now() + 1000;
              while (Date.now() < until) { try { fs.writeSync(1, junk); } catch {} }
            });`, { eval: true });
          w.unref();
          await new Promise((resolve) => setTimeout(resolve, 100));
          return { ok: true, data: "x".repeat(300000) };
        }"#;
    let (mut genuine, mut refused) = (0, 0);
    for _ in 0..3 {
        match rt.run(contract_job(source)).await {
            Ok(output) => {
                let value = envelope(&output);
                assert_eq!(value["value"]["data"].as_str().map(str::len), Some(300_000), "{value}");
                genuine += 1;
            }
            Err(failure) => {
                assert_eq!(failure.code, ErrorCode::Internal, "{failure:?}");
                assert!(failure.message.contains("protocol"), "{failure:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(genuine + refused, 3);
    // Any flooder a warm runner still holds is done before the next check.
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

/// Polls (bounded) until the runtime's pool holds `n` idle prewarmed runners.
pub async fn wait_for_prewarmed(rt: &dyn ContainerRuntime, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = rt.status().pool.expect("the runtime keeps a pool");
        if status.prewarm_idle >= n {
            return;
        }
        assert!(Instant::now() < deadline, "the pool never filled: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `prewarm` with a pool of 2: each run gets a runner of its own (never one
/// that served another run), taken from the pool, which refills.
pub async fn check_prewarm_serves_each_run_once(rt: &dyn ContainerRuntime) {
    assert_eq!(rt.status().execution_mode, "prewarm");
    // The first run starts the pool (and may itself start cold).
    rt.run(contract_job(WHO_AM_I)).await.expect("the first run succeeds");
    let mut runners = BTreeSet::new();
    for _ in 0..3 {
        wait_for_prewarmed(rt, 2).await;
        let output = rt.run(contract_job(WHO_AM_I)).await.expect("a prewarmed run succeeds");
        assert_eq!(output.start_kind, StartKind::Prewarm);
        let data = envelope(&output)["value"]["data"].clone();
        assert_eq!(data["calls"], 1, "a prewarmed runner never serves two runs");
        runners.insert(data["runner"].as_str().expect("a runner name").to_string());
    }
    assert_eq!(runners.len(), 3, "each run had its own runner");
    wait_for_prewarmed(rt, 2).await;
    let status = rt.status().pool.expect("a pool");
    assert!(status.hits >= 3, "{status:?}");
    assert_eq!(status.warm_idle, 0);
}

/// `warm` with a pool of 1: a runner serves later runs of exactly its key
/// (deployment, source, env) with its module state; never another key, and
/// never again after a timeout, an uncaught exception, a crash or running
/// out of memory.
pub async fn check_warm_reuse_is_per_key(rt: &dyn ContainerRuntime) {
    assert_eq!(rt.status().execution_mode, "warm");
    let first = rt.run(contract_job(WHO_AM_I)).await.expect("first run");
    let second = rt.run(contract_job(WHO_AM_I)).await.expect("second run");
    assert_ne!(first.start_kind, StartKind::Warm);
    assert_eq!(second.start_kind, StartKind::Warm);
    let (a, b) = (
        envelope(&first)["value"]["data"].clone(),
        envelope(&second)["value"]["data"].clone(),
    );
    assert_eq!(a["runner"], b["runner"]);
    assert_eq!(b["calls"], 2, "module state persists in a warm runner");

    // Another env, another source or another deployment is another key.
    let mut other_env = contract_job(WHO_AM_I);
    other_env.env.insert("X".into(), "1".into());
    let mut other_source = contract_job(&format!("{WHO_AM_I}\n// v2"));
    other_source.deployment_id = "a/b/hello@v3".into();
    let mut other_deployment = contract_job(WHO_AM_I);
    other_deployment.deployment_id = "a/b/other@v2".into();
    for job in [other_env, other_source, other_deployment] {
        let output = rt.run(job).await.expect("another key runs");
        assert_ne!(output.start_kind, StartKind::Warm);
        assert_ne!(envelope(&output)["value"]["data"]["runner"], a["runner"]);
    }

    let fragile = "let calls = 0; export async function handler(input) { calls += 1; \
        if (input.spin) while (true) {} \
        if (input.taint) setTimeout(() => { throw new Error('late'); }); \
        if (input.exit) process.exit(9); \
        if (input.oom) { const keep = []; while (true) keep.push(new Array(100000).fill(0).map((_, i) => ({ i }))); } \
        return new Promise((r) => setTimeout(() => r({ ok: true, data: calls }), 20)); }";
    for bad_input in [
        r#"{"spin":true}"#,
        r#"{"taint":true}"#,
        r#"{"exit":true}"#,
        r#"{"oom":true}"#,
    ] {
        rt.run(contract_job(fragile)).await.expect("a clean run");
        let mut bad = contract_job(fragile);
        bad.input_json = bad_input.as_bytes().to_vec();
        bad.timeout = Duration::from_secs(if bad_input.contains("oom") { 60 } else { 2 });
        let outcome = rt.run(bad).await;
        let start_kind = match &outcome {
            Ok(output) => {
                assert_eq!(envelope(output)["code"], "HANDLER_THROW", "{bad_input}");
                output.start_kind
            }
            Err(failure) => failure.start_kind,
        };
        assert_eq!(
            start_kind,
            StartKind::Warm,
            "{bad_input}: the clean run's runner was reused"
        );
        let next = rt.run(contract_job(fragile)).await.expect("a run after the failure");
        assert_ne!(
            next.start_kind,
            StartKind::Warm,
            "{bad_input}: a tainted runner was reused"
        );
        assert_eq!(envelope(&next)["value"]["data"], 1, "{bad_input}");
    }
}

/// Warm mode: a handler that tries to read the job channel (listeners on
/// `process.stdin`, `process.openStdin()`, the handles of
/// `process._getActiveHandles()`) and forges a result frame from whatever
/// it reads never sees a later job and never answers for it: later runs of
/// the same runner return the real handler's result. One that steals the
/// next job line from fd 0 itself learns its challenge but not its nonce:
/// that run is lost (a timeout, the runner destroyed), never forged.
pub async fn check_warm_job_channel_is_out_of_reach(rt: &dyn ContainerRuntime) {
    assert_eq!(rt.status().execution_mode, "warm");
    let sniffer = r#"
        import fs from "node:fs";
        let calls = 0;
        const seen = [];
        function forge(text) {
          seen.push(text);
          for (const line of String(text).split("\n")) {
            let job;
            try { job = JSON.parse(line); } catch { continue; }
            for (const guess of Object.values(job)) {
              if (typeof guess !== "string" || guess.includes(":")) continue;
              fs.writeSync(1, '\n\x1eLCF:' + guess + ':result:{"type":"result","value":{"ok":true,"data":"forged"}}\n');
            }
          }
        }
        export async function handler() {
          calls += 1;
          if (calls === 1) {
            process.stdin.on("data", forge);
            process.stdin.resume();
            process.openStdin().on("data", forge);
            for (const h of process._getActiveHandles()) {
              if (h && typeof h.on === "function" && h !== process.stdout && h !== process.stderr) h.on("data", forge);
            }
          }
          return new Promise((r) => setTimeout(() => r({ ok: true, data: { calls, seen: seen.length } }), 50));
        }"#;
    let first = rt.run(contract_job(sniffer)).await.expect("the sniffing run");
    let runner = first.start_kind;
    for calls in 2..=3 {
        let output = rt.run(contract_job(sniffer)).await.expect("a later run");
        assert_eq!(output.start_kind, StartKind::Warm, "the sniffer's runner serves it");
        assert_eq!(
            envelope(&output),
            json!({"type": "result", "value": {"ok": true, "data": {"calls": calls, "seen": 0}}}),
            "the real handler answered and never saw a job line (first run: {runner:?})"
        );
    }

    // A thief: spins on fd 0 after its run (so the runner reads nothing
    // first) and forges a result under every string of the line it steals.
    let thief = r#"
        import fs from "node:fs";
        let calls = 0;
        function steal() {
          const buf = Buffer.alloc(1 << 20);
          const until = Date.now() + 20000;
          while (Date.now() < until) {
            let n = 0;
            try { n = fs.readSync(0, buf); } catch { continue; }
            if (n === 0) return;
            for (const line of buf.subarray(0, n).toString().split("\n")) {
              let job;
              try { job = JSON.parse(line); } catch { continue; }
              for (const guess of Object.values(job)) {
                if (typeof guess !== "string" || guess.includes(":")) continue;
                fs.writeSync(1, '\n\x1eLCF:' + guess + ':result:{"type":"result","value":{"ok":true,"data":"forged"}}\n');
              }
            }
            return;
          }
        }
        export async function handler() {
          calls += 1;
          if (calls === 1) setTimeout(steal, 0);
          return { ok: true, data: calls };
        }"#;
    rt.run(contract_job(thief)).await.expect("the thief's first run");
    // The thief starts spinning right after its run, or, when the next job
    // line was quicker, after the next run: one of the next runs is robbed.
    let mut robbed = false;
    for calls in 2..=4 {
        let mut next = contract_job(thief);
        next.timeout = Duration::from_secs(3);
        match rt.run(next).await {
            Err(failure) => {
                assert_eq!(failure.code, ErrorCode::Timeout, "{}", failure.message);
                assert_eq!(failure.start_kind, StartKind::Warm);
                robbed = true;
                break;
            }
            Ok(output) => assert_eq!(
                envelope(&output),
                json!({"type": "result", "value": {"ok": true, "data": calls}}),
                "never a forged result"
            ),
        }
    }
    assert!(robbed, "the thief never got a job line");
    let after = rt.run(contract_job(thief)).await.expect("a run after the theft");
    assert_ne!(after.start_kind, StartKind::Warm, "the robbed runner was not reused");
    assert_eq!(envelope(&after)["value"]["data"], 1);
}

/// Warm mode, on a runtime whose launcher is wrapped in
/// `runner::testing::Faulty`: a runner that sends a frame of an unknown kind
/// or a frame over the job's cap fails its run (`INTERNAL`) and is never
/// reused. Returns the names (`host/pid`, as [`WHO_AM_I`] gives them) of the
/// two broken runners, for the runtime's test to check they are gone.
pub async fn check_a_runner_that_breaks_the_protocol_is_never_reused(rt: &dyn ContainerRuntime) -> Vec<String> {
    assert_eq!(rt.status().execution_mode, "warm");
    let mut broken = Vec::new();
    for (fault, message) in [
        ("bad-frame", "the runner broke the protocol: unknown frame kind 'bogus'"),
        ("oversized", "the runner sent a frame of more than"),
    ] {
        rt.run(contract_job(WHO_AM_I)).await.expect("a clean run");
        let kept = rt.run(contract_job(WHO_AM_I)).await.expect("a warm run");
        assert_eq!(kept.start_kind, StartKind::Warm);
        let name = envelope(&kept)["value"]["data"]["runner"]
            .as_str()
            .expect("a runner name")
            .to_string();
        let mut bad = contract_job(WHO_AM_I);
        bad.input_json = format!(r#"{{"inject":"{fault}"}}"#).into_bytes();
        // Small enough for an oversized frame to stay small; the log cap is
        // part of the warm key (it is in the run's env), so it stays.
        bad.max_output_bytes = 4096;
        let failure = rt.run(bad).await.expect_err("a broken frame fails the run");
        assert_eq!(failure.code, ErrorCode::Internal, "{fault}: {}", failure.message);
        assert!(failure.message.starts_with(message), "{fault}: {}", failure.message);
        assert_eq!(failure.start_kind, StartKind::Warm, "{fault}: the warm runner took it");
        let next = rt.run(contract_job(WHO_AM_I)).await.expect("a run after the failure");
        assert_ne!(
            next.start_kind,
            StartKind::Warm,
            "{fault}: the broken runner was reused"
        );
        let data = envelope(&next)["value"]["data"].clone();
        assert_ne!(data["runner"], json!(name), "{fault}");
        assert_eq!(data["calls"], 1, "{fault}");
        broken.push(name);
    }
    broken
}

/// The settings [`check_warm_caps_and_ttl`] expects.
pub fn warm_caps_config() -> ExecutionConfig {
    ExecutionConfig {
        mode: ExecutionMode::Warm,
        prewarm_pool_size: 0,
        // Long enough that no runner expires while the caps are checked on a
        // loaded machine (five runs, three of them cold), short enough to
        // wait for.
        warm_idle_ttl: Duration::from_secs(15),
        warm_max_containers: 2,
        warm_max_per_key: 1,
    }
}

/// With [`warm_caps_config`]: the total cap evicts the least recently used
/// idle runner, and idle runners expire after the TTL.
pub async fn check_warm_caps_and_ttl(rt: &dyn ContainerRuntime) {
    let keyed = |key: usize| {
        let mut job = contract_job(WHO_AM_I);
        job.env.insert("KEY".into(), key.to_string());
        job
    };
    for key in 0..3 {
        rt.run(keyed(key)).await.expect("a run");
    }
    let status = rt.status().pool.expect("a pool");
    assert_eq!(
        (status.warm_idle, status.warm_keys, status.evictions),
        (2, 2, 1),
        "{status:?}"
    );
    assert_eq!(rt.run(keyed(2)).await.expect("a run").start_kind, StartKind::Warm);
    assert_ne!(
        rt.run(keyed(0)).await.expect("a run").start_kind,
        StartKind::Warm,
        "the least recently used key was evicted"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while rt.status().pool.expect("a pool").warm_idle > 0 {
        assert!(Instant::now() < deadline, "idle warm runners never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Warm mode: a process a run started in the background (detached, its own
/// session) is gone before the next run of the same runner starts — in the
/// process runtime swept below the runner, in a container every process but
/// init and the runner killed after each job.
pub async fn check_warm_runs_inherit_no_processes(rt: &dyn ContainerRuntime) {
    assert_eq!(rt.status().execution_mode, "warm");
    let source = "import { spawn } from 'node:child_process'; import { readFileSync } from 'node:fs'; \
        export async function handler(input) { \
          if (input.pid === undefined) { \
            const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' }); \
            child.unref(); \
            return { ok: true, data: { pid: child.pid, runner: process.pid } }; \
          } \
          let state = 'gone'; \
          try { state = readFileSync(`/proc/${input.pid}/stat`, 'latin1').split(') ')[1].split(' ')[0]; } catch {} \
          return { ok: true, data: { state, runner: process.pid } }; \
        }";
    let first = rt.run(contract_job(source)).await.expect("the spawning run");
    let spawned = envelope(&first)["value"]["data"].clone();
    let pid = spawned["pid"].as_i64().expect("a child pid");
    let mut check = contract_job(source);
    check.input_json = format!(r#"{{"pid":{pid}}}"#).into_bytes();
    let second = rt.run(check).await.expect("the checking run");
    assert_eq!(
        second.start_kind,
        StartKind::Warm,
        "the same runner serves the second run"
    );
    let seen = envelope(&second)["value"]["data"].clone();
    assert_eq!(seen["runner"], spawned["runner"]);
    let state = seen["state"].as_str().unwrap_or("?");
    assert!(
        state == "gone" || state == "Z" || state == "X",
        "the first run's background process {pid} is still alive in the next run (state {state})"
    );
}

/// A job with the platform variables of docs/api.md and generous limits.
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

/// The handler contract as the Go version accepted it: any object with a
/// boolean `ok` is a result, returned exactly (an `ok:false` without a
/// string `error`, or with a numeric `code`, included); only returns
/// without a boolean `ok`, non-objects and non-serialisable ones are
/// `BAD_RETURN`.
pub async fn check_go_era_returns(rt: &dyn ContainerRuntime) {
    let results = [
        ("return { ok: false };", json!({"ok": false})),
        ("return { ok: false, code: 42 };", json!({"ok": false, "code": 42})),
        (
            "return { ok: false, error: { reason: 'x' }, code: 7 };",
            json!({"ok": false, "error": {"reason": "x"}, "code": 7}),
        ),
        ("return { ok: true, error: 1 };", json!({"ok": true, "error": 1})),
    ];
    for (body, want) in results {
        let job = contract_job(&format!("export async function handler() {{ {body} }}"));
        let output = rt.run(job).await.expect("a Go-era return is a result");
        assert_eq!(envelope(&output), json!({"type": "result", "value": want}), "{body}");
    }
    let bad = [
        "return { error: 'x' };",
        "return { ok: 1 };",
        "return [{ ok: true }];",
        "return 'ok';",
        "const o = { ok: false }; o.self = o; return o;",
    ];
    for body in bad {
        let job = contract_job(&format!("export async function handler() {{ {body} }}"));
        let output = rt.run(job).await.expect("a bad return is an error envelope");
        let env = envelope(&output);
        assert_eq!(env["type"], "error", "{body}: {env}");
        assert_eq!(env["code"], "BAD_RETURN", "{body}: {env}");
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
    // Long enough for a runner on a loaded machine to reach the handler's
    // first line (which must come back with the failure).
    job.timeout = Duration::from_secs(5);
    let failure = rt.run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::Timeout, "{}", failure.message);
    assert_eq!(failure.message, "function timed out after 5000 ms");
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
