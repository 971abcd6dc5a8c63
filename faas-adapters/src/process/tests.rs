#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use faas_ports::{ContainerRuntime, ErrorCode, RunId, StartKind};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::*;
use crate::bootstrap::LOG_MAX_BYTES_ENV;
use crate::runner::ExecutionMode;
use crate::runtime_contract::{contract_job as job, envelope, log_messages};

fn runtime_in(mode: ExecutionMode, pool: usize) -> ProcessRuntime {
    ProcessRuntime::new(ProcessRuntimeConfig {
        execution: ExecutionConfig {
            mode,
            prewarm_pool_size: pool,
            ..ExecutionConfig::default()
        },
        ..ProcessRuntimeConfig::default()
    })
    .unwrap()
}

fn runtime() -> ProcessRuntime {
    runtime_in(ExecutionMode::Cold, 0)
}

/// Waits (bounded) until `pid` no longer runs: gone, or a zombie nobody
/// reaps. SIGKILL takes effect asynchronously, so this polls /proc.
async fn assert_dead(pid: i64) {
    let stat = format!("/proc/{pid}/stat");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let state = match std::fs::read_to_string(&stat) {
            Err(_) => return,
            Ok(text) => text.rsplit(')').next().unwrap_or("").trim().chars().next(),
        };
        if matches!(state, Some('Z' | 'X')) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "process {pid} still alive (state {state:?})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until `path` is gone: runners are removed off the
/// request path.
async fn assert_removed(path: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while Path::new(path).exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "workspace {path} was not removed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_run_has_its_own_workspace_removed_after_it() {
    let job = job("export async function handler() { return { ok: true, data: process.cwd() }; }");
    let output = runtime().run(job).await.unwrap();
    assert_eq!(output.start_kind, StartKind::Cold);
    let cwd = envelope(&output)["value"]["data"].as_str().unwrap().to_string();
    assert!(
        cwd.contains(&format!("lowcode-faas-w{}-run-", std::process::id())),
        "{cwd}"
    );
    assert_removed(&cwd).await;
}

#[tokio::test]
async fn the_environment_is_exactly_the_job_env() {
    for mode in [ExecutionMode::Cold, ExecutionMode::Prewarm] {
        let mut job =
            job("export async function handler() { return { ok: true, data: Object.keys(process.env).sort() }; }");
        job.env.insert("USER_VAR".into(), "1".into());
        let mut expected: Vec<String> = job.env.keys().cloned().collect();
        expected.push(LOG_MAX_BYTES_ENV.to_string());
        expected.sort();

        let rt = runtime_in(mode, 1);
        let output = rt.run(job).await.unwrap();

        let keys: Vec<String> = serde_json::from_value(envelope(&output)["value"]["data"].clone()).unwrap();
        assert_eq!(keys, expected, "{mode:?}");
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn the_job_env_may_set_the_log_cap_itself() {
    let mut job = job("export async function handler() { return { ok: true, data: process.env.LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES }; }");
    job.env.insert(LOG_MAX_BYTES_ENV.into(), "777".into());
    let output = runtime().run(job).await.unwrap();
    assert_eq!(envelope(&output)["value"]["data"], "777");
}

#[tokio::test]
async fn heap_exhaustion_is_out_of_memory() {
    let rt = ProcessRuntime::new(ProcessRuntimeConfig {
        memory_mb: 32,
        ..ProcessRuntimeConfig::default()
    })
    .unwrap();
    let job = job(r#"
        export async function handler() {
          console.log("allocating");
          const keep = [];
          while (true) keep.push(new Array(100000).fill(1.5));
        }"#);
    let failure = rt.run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::OutOfMemory, "{}", failure.message);
    assert_eq!(failure.message, "function ran out of memory (memory limit 32 MB)");
    assert_eq!(log_messages(&failure.logs), ["allocating"]);
    rt.shutdown().await;
}

/// The grandchild is spawned at module load, before the handler spins;
/// the deadline leaves node ample time to get there.
#[tokio::test]
async fn a_timeout_kills_the_whole_process_group_and_removes_the_workspace() {
    for mode in [ExecutionMode::Cold, ExecutionMode::Warm] {
        let mut job = job(r#"
            import { spawn } from "node:child_process";
            const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
            console.log(JSON.stringify({ pid: process.pid, child: child.pid, cwd: process.cwd() }));
            export async function handler() { while (true) {} }"#);
        job.timeout = Duration::from_secs(3);

        let rt = runtime_in(mode, 1);
        let failure = rt.run(job).await.unwrap_err();

        assert_eq!(failure.code, ErrorCode::Timeout);
        assert_eq!(failure.message, "function timed out after 3000 ms");
        let messages = log_messages(&failure.logs);
        assert_eq!(messages.len(), 1, "{messages:?}");
        let report: Value = serde_json::from_str(&messages[0]).unwrap();
        assert_dead(report["pid"].as_i64().unwrap()).await;
        assert_dead(report["child"].as_i64().unwrap()).await;
        assert_removed(report["cwd"].as_str().unwrap()).await;
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn grandchildren_do_not_survive_a_run_in_cold_or_prewarm_mode() {
    for mode in [ExecutionMode::Cold, ExecutionMode::Prewarm] {
        // stdio "inherit": the grandchild also holds the stdout and stderr pipes.
        let job = job(r#"
            import { spawn } from "node:child_process";
            export async function handler() {
              const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "inherit" });
              return { ok: true, data: child.pid };
            }"#);
        let rt = runtime_in(mode, 1);
        let output = rt.run(job).await.unwrap();
        assert_dead(envelope(&output)["value"]["data"].as_i64().unwrap()).await;
        rt.shutdown().await;
    }
}

/// A grandchild that holds the pipes does not keep an exited runner's
/// verdict waiting: the group dies with its leader.
#[tokio::test]
async fn an_exit_with_a_grandchild_holding_the_pipes_is_exited_without_output() {
    let job = job(r#"
        import { spawn } from "node:child_process";
        export async function handler() {
          spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "inherit" });
          process.exit(4);
        }"#);
    let failure = runtime().run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::ExitedWithoutOutput, "{}", failure.message);
    assert!(failure.message.contains("exit status: 4"), "{}", failure.message);
}

#[tokio::test]
async fn dropping_the_run_kills_the_group_and_removes_the_workspace() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut job = job(r#"
        import net from "node:net";
        import { spawn } from "node:child_process";
        export async function handler() {
          const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
          const report = JSON.stringify({ pid: process.pid, child: child.pid, cwd: process.cwd() });
          const socket = net.connect(Number(process.env.REPORT_PORT), "127.0.0.1", () => socket.end(report));
          return new Promise(() => setInterval(() => {}, 1000));
        }"#);
    job.env
        .insert("REPORT_PORT".into(), listener.local_addr().unwrap().port().to_string());
    let rt = runtime();
    // Boxed so that `drop` really drops the future (a pinned stack
    // future would live to the end of the scope).
    let mut run = Box::pin(rt.run(job));

    let report = tokio::select! {
        outcome = &mut run => panic!("the run ended before reporting: {outcome:?}"),
        accepted = listener.accept() => {
            let (mut socket, _) = accepted.unwrap();
            let mut text = String::new();
            socket.read_to_string(&mut text).await.unwrap();
            text
        }
    };
    drop(run);

    let report: Value = serde_json::from_str(&report).unwrap();
    assert!(!Path::new(report["cwd"].as_str().unwrap()).exists());
    assert_dead(report["pid"].as_i64().unwrap()).await;
    assert_dead(report["child"].as_i64().unwrap()).await;
}

/// Spawns a `detached` child and a `setsid` double fork, logs their pids
/// (and the parent the double-forked `sleep` was given), then ends as
/// `input.end` says: `return`, `throw` or `hang` (past the deadline).
const ESCAPING_HANDLER: &str = r#"
    import { spawn } from "node:child_process";
    import { readFileSync } from "node:fs";
    const parentOf = (pid) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(" ")[1]);
    export async function handler(input) {
      const { SLEEP, SETSID, SH } = process.env;
      const detached = spawn(SLEEP, ["1000"], { detached: true, stdio: "ignore" });
      detached.unref();
      const forker = spawn(SETSID, [SH, "-c", `${SLEEP} 1000 </dev/null >/dev/null 2>&1 & echo $!`], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      let out = "";
      forker.stdout.on("data", (d) => { out += d; });
      await new Promise((resolve) => forker.on("close", resolve));
      const forked = Number(out.trim());
      console.log(JSON.stringify({ runner: process.pid, pids: [detached.pid, forked], forkedParent: parentOf(forked) }));
      if (input.end === "throw") throw new Error("failed on purpose");
      if (input.end === "hang") await new Promise(() => setInterval(() => {}, 1000));
      return { ok: true };
    }"#;

fn escaping_job(end: &str) -> faas_ports::RunJob {
    let mut job = job(ESCAPING_HANDLER);
    for (key, program) in [("SLEEP", "sleep"), ("SETSID", "setsid"), ("SH", "sh")] {
        let path = resolve_program(Path::new(program));
        assert!(path.is_absolute(), "{program} is not installed");
        job.env.insert(key.into(), path.display().to_string());
    }
    job.input_json = serde_json::to_vec(&json!({ "end": end })).unwrap();
    job.timeout = Duration::from_secs(5);
    job
}

/// Whether `pid` runs (not gone, not a zombie).
fn is_running(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|text| text.rsplit(')').next().and_then(|rest| rest.trim().chars().next()))
        .is_some_and(|state| !matches!(state, 'Z' | 'X'))
}

/// Issue 12, item 3: a `detached` child and a `setsid` double fork used to
/// survive every run (reparented to PID 1). Now none outlives its run, in
/// either mode and whatever the run's end; the warm runner itself stays.
#[tokio::test]
async fn detached_and_setsid_processes_die_with_their_run_in_every_mode_and_end() {
    for mode in [ExecutionMode::Cold, ExecutionMode::Warm] {
        let rt = runtime_in(mode, 1);
        for end in ["return", "throw", "hang"] {
            let (logs, kept) = match rt.run(escaping_job(end)).await {
                Ok(output) => {
                    // A throw is an error envelope: the engine judges it.
                    let expected = if end == "throw" { "error" } else { "result" };
                    assert_eq!(envelope(&output)["type"], expected, "{mode:?} {end}");
                    (output.logs, mode == ExecutionMode::Warm)
                }
                Err(failure) => {
                    assert_eq!(end, "hang");
                    assert_eq!(failure.code, ErrorCode::Timeout, "{mode:?}: {}", failure.message);
                    (failure.logs, false)
                }
            };
            let messages = log_messages(&logs);
            let report: Value = serde_json::from_str(&messages[0]).expect("the handler's report");
            let runner = report["runner"].as_i64().unwrap();
            // The double-forked process was reparented to the runner (a
            // child subreaper), not to PID 1.
            assert_eq!(report["forkedParent"].as_i64(), Some(runner), "{mode:?} {end}");
            // Swept before the run answered: no waiting here.
            for pid in report["pids"].as_array().unwrap() {
                let pid = pid.as_i64().unwrap();
                assert!(!is_running(pid), "{mode:?} {end}: process {pid} outlived its run");
            }
            if kept {
                assert!(is_running(runner), "{mode:?} {end}: the warm runner was killed");
            } else {
                assert_dead(runner).await;
            }
        }
        rt.shutdown().await;
    }
}

/// A runner that exits by itself mid-run (`process.exit()` in the handler)
/// ends the processes below it first: the kernel would hand them to PID 1.
#[tokio::test]
async fn a_runner_that_exits_by_itself_takes_its_processes_along() {
    let mut job = escaping_job("return");
    job.source_code = ESCAPING_HANDLER.replace(
        r#"if (input.end === "throw")"#,
        r#"if (input.end === "exit") process.exit(3); if (input.end === "throw")"#,
    );
    job.input_json = br#"{"end":"exit"}"#.to_vec();
    let failure = runtime().run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::ExitedWithoutOutput, "{}", failure.message);
    assert!(failure.message.contains("exit status: 3"), "{}", failure.message);
    let report: Value = serde_json::from_str(&log_messages(&failure.logs)[0]).unwrap();
    for pid in report["pids"].as_array().unwrap() {
        assert_dead(pid.as_i64().unwrap()).await;
    }
}

/// A warm runner whose sweep could not end everything its run left is not
/// kept: the next run of the key does not get it.
#[tokio::test]
async fn a_warm_runner_with_processes_left_after_its_sweep_is_not_reused() {
    let config = ProcessRuntimeConfig {
        execution: ExecutionConfig {
            mode: ExecutionMode::Warm,
            prewarm_pool_size: 0,
            ..ExecutionConfig::default()
        },
        ..ProcessRuntimeConfig::default()
    };
    // A zero bound: a sweep that finds any process gives up at once.
    let rt = ProcessRuntime::build(config, Duration::ZERO).unwrap();
    let quiet = job("export async function handler() { return { ok: true, data: process.pid }; }");
    let first = rt.run(quiet.clone()).await.unwrap();
    let second = rt.run(quiet).await.unwrap();
    assert_eq!(second.start_kind, StartKind::Warm, "a clean runner is kept");
    assert_eq!(envelope(&first)["value"]["data"], envelope(&second)["value"]["data"]);

    let mut leaves = job(r#"
        import { spawn } from "node:child_process";
        export async function handler() {
          spawn(process.env.SLEEP, ["1000"], { stdio: "ignore" });
          return { ok: true, data: process.pid };
        }"#);
    let sleep = resolve_program(Path::new("sleep"));
    leaves.env.insert("SLEEP".into(), sleep.display().to_string());
    let first = rt.run(leaves.clone()).await.unwrap();
    let runner = envelope(&first)["value"]["data"].as_i64().unwrap();
    let second = rt.run(leaves).await.unwrap();
    assert_ne!(second.start_kind, StartKind::Warm);
    assert_ne!(envelope(&second)["value"]["data"].as_i64(), Some(runner));
    // Discarded: killed with its group, the sleep included.
    assert_dead(runner).await;
    rt.shutdown().await;
}

#[tokio::test]
async fn the_log_cap_follows_the_job() {
    let mut job = job("export async function handler() { for (let i = 0; i < 100; i++) console.log('entry', i); return { ok: true }; }");
    job.max_log_bytes = 400;
    let output = runtime().run(job).await.unwrap();
    let messages = log_messages(&output.logs);
    assert_eq!(
        messages.last().unwrap(),
        "[lowcode-faas] function log truncated: limit of 400 bytes reached"
    );
    assert!(messages.len() > 2 && messages.len() < 10, "{messages:?}");
}

#[tokio::test]
async fn a_missing_node_is_runtime_unavailable() {
    for mode in [ExecutionMode::Cold, ExecutionMode::Prewarm] {
        let rt = ProcessRuntime::new(ProcessRuntimeConfig {
            node_bin: PathBuf::from("/nonexistent/lowcode-faas/node"),
            execution: ExecutionConfig {
                mode,
                ..ExecutionConfig::default()
            },
            ..ProcessRuntimeConfig::default()
        })
        .unwrap();
        let failure = rt
            .run(job("export const handler = () => ({ ok: true });"))
            .await
            .unwrap_err();
        assert_eq!(failure.code, ErrorCode::RuntimeUnavailable);
        let error = rt.health().await.unwrap_err();
        assert_eq!(error.code(), "RUNTIME_UNAVAILABLE");
        rt.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_contract_holds_in_every_mode() {
    use std::os::unix::fs::MetadataExt;
    // The process runtime runs functions as the service's own user.
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    for mode in [ExecutionMode::Cold, ExecutionMode::Prewarm, ExecutionMode::Warm] {
        let rt = runtime_in(mode, 2);
        crate::runtime_contract::container_runtime_contract(&rt, uid).await;
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn execution_modes_behave_as_documented() {
    let rt = runtime_in(ExecutionMode::Prewarm, 2);
    crate::runtime_contract::check_prewarm_serves_each_run_once(&rt).await;
    rt.shutdown().await;
    let rt = runtime_in(ExecutionMode::Warm, 1);
    crate::runtime_contract::check_warm_reuse_is_per_key(&rt).await;
    rt.shutdown().await;
    let rt = runtime_in(ExecutionMode::Warm, 1);
    crate::runtime_contract::check_warm_runs_inherit_no_processes(&rt).await;
    rt.shutdown().await;
    let rt = runtime_in(ExecutionMode::Warm, 1);
    crate::runtime_contract::check_warm_job_channel_is_out_of_reach(&rt).await;
    rt.shutdown().await;
    let rt = ProcessRuntime::new(ProcessRuntimeConfig {
        execution: crate::runtime_contract::warm_caps_config(),
        ..ProcessRuntimeConfig::default()
    })
    .unwrap();
    crate::runtime_contract::check_warm_caps_and_ttl(&rt).await;
    rt.shutdown().await;
}

/// The runtime over a launcher that injects protocol violations
/// ([`crate::runner::testing::Faulty`]).
fn faulty(mode: ExecutionMode, pool: usize) -> ProcessRuntime {
    let rt = runtime_in(mode, pool);
    let launcher = Arc::clone(&rt.launcher);
    let execution = ExecutionConfig {
        mode,
        prewarm_pool_size: pool,
        ..ExecutionConfig::default()
    };
    let faulty = crate::runner::testing::Faulty(Arc::clone(&launcher) as Arc<dyn Launcher>);
    ProcessRuntime {
        launcher,
        pool: Pool::new(Arc::new(faulty), execution),
    }
}

/// The pid in a `host/pid` runner name.
fn pid_of(runner: &str) -> i64 {
    runner.rsplit('/').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_runner_that_breaks_the_protocol_is_destroyed_and_never_reused() {
    let rt = faulty(ExecutionMode::Warm, 0);
    for runner in crate::runtime_contract::check_a_runner_that_breaks_the_protocol_is_never_reused(&rt).await {
        assert_dead(pid_of(&runner)).await;
    }
    rt.shutdown().await;
}

/// Pids of the live runner processes started with `--max-idle-ms=<max_idle>`.
fn runners_with_max_idle(max_idle: Duration) -> Vec<u32> {
    let mark = format!("--max-idle-ms={}", max_idle.as_millis());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let live = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                !matches!(
                    stat.rsplit(')').next().unwrap_or("").trim().chars().next(),
                    Some('Z' | 'X')
                )
            })
            .unwrap_or(false);
        if live && args.contains(&b"--serve".as_slice()) && args.contains(&mark.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// Under concurrent load, the runner processes that really run never pass
/// the warm cap + the prewarm pool + the runs in flight (+ removals under
/// way), and the pool's own counts never pass the caps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caps_hold_under_load_counting_real_processes() {
    let execution = ExecutionConfig {
        mode: ExecutionMode::Warm,
        prewarm_pool_size: 2,
        // An idle TTL no other test uses: it names this test's runners
        // (their --max-idle-ms).
        warm_idle_ttl: Duration::from_millis(15 * 60 * 1000 + 4321),
        warm_max_containers: 3,
        warm_max_per_key: 2,
    };
    let max_idle = execution.runner_max_idle();
    let rt = Arc::new(
        ProcessRuntime::new(ProcessRuntimeConfig {
            execution: execution.clone(),
            ..ProcessRuntimeConfig::default()
        })
        .unwrap(),
    );
    let clients = 4;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (rt, done, execution) = (Arc::clone(&rt), Arc::clone(&done), execution.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let before = rt.pool.counts();
                let real = runners_with_max_idle(max_idle).len();
                let after = rt.pool.counts();
                let since = after.removals_started - before.removals_started;
                crate::runner::testing::check_caps(before, real, since, &execution, clients);
                // The caps hold at the second instant too (no runner count to bound there).
                crate::runner::testing::check_caps(after, 0, 0, &execution, clients);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            samples
        })
    };
    let runs = (0..clients).map(|client| {
        let rt = Arc::clone(&rt);
        tokio::spawn(async move {
            for i in 0..8 {
                let mut j = job(crate::runtime_contract::WHO_AM_I);
                j.env.insert("K".into(), ((client + i) % 5).to_string());
                rt.run(j).await.unwrap();
            }
        })
    });
    for run in futures_util::future::join_all(runs).await {
        run.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(sampler.await.unwrap() > 0);
    let status = rt.status().pool.unwrap();
    assert_eq!(status.hits + status.misses, 32);
    assert!(status.hits > 0, "{status:?}");
    rt.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !runners_with_max_idle(max_idle).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "runners left after shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An idle runner killed from outside (warm or prewarmed) is detected,
/// discarded and replaced, never handed a job.
#[tokio::test]
async fn a_killed_idle_runner_is_replaced_never_handed_a_job() {
    let kill = |pid: i64| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    };
    let who = |output: &faas_ports::RunOutput| {
        envelope(output)["value"]["data"]["runner"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Warm, no pool: the next run after the kill is a miss, not a hit.
    let rt = runtime_in(ExecutionMode::Warm, 0);
    let first = rt.run(job(crate::runtime_contract::WHO_AM_I)).await.unwrap();
    kill(pid_of(&who(&first)));
    assert_dead(pid_of(&who(&first))).await;
    // The maintenance pass finds it ended and discards it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rt.status().pool.unwrap().warm_idle > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the dead warm runner was kept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hits = rt.status().pool.unwrap().hits;
    let next = rt.run(job(crate::runtime_contract::WHO_AM_I)).await.unwrap();
    assert_eq!(next.start_kind, StartKind::Cold);
    assert_eq!(envelope(&next)["value"]["data"]["calls"], 1);
    assert_eq!(
        rt.status().pool.unwrap().hits,
        hits,
        "the dead runner was not handed the job"
    );
    rt.shutdown().await;
    // Prewarm: the maintenance pass replaces the dead runner. An idle TTL
    // no other test uses names this runtime's processes.
    let execution = ExecutionConfig {
        mode: ExecutionMode::Prewarm,
        prewarm_pool_size: 1,
        warm_idle_ttl: Duration::from_millis(15 * 60 * 1000 + 7777),
        ..ExecutionConfig::default()
    };
    let max_idle = execution.runner_max_idle();
    let rt = ProcessRuntime::new(ProcessRuntimeConfig {
        execution,
        ..ProcessRuntimeConfig::default()
    })
    .unwrap();
    rt.start_pool();
    crate::runtime_contract::wait_for_prewarmed(&rt, 1).await;
    let victims = runners_with_max_idle(max_idle);
    assert_eq!(victims.len(), 1);
    kill(i64::from(victims[0]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let replacement = loop {
        let now = runners_with_max_idle(max_idle);
        if rt.status().pool.unwrap().prewarm_idle == 1 && now.len() == 1 && now[0] != victims[0] {
            break now[0];
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead runner was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let output = rt.run(job(crate::runtime_contract::WHO_AM_I)).await.unwrap();
    assert_eq!(output.start_kind, StartKind::Prewarm);
    assert_eq!(pid_of(&who(&output)), i64::from(replacement));
    rt.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_the_pool() {
    let rt = runtime_in(ExecutionMode::Warm, 2);
    let output = rt
        .run(job(
            "export async function handler() { return { ok: true, data: process.pid }; }",
        ))
        .await
        .unwrap();
    let warm_pid = envelope(&output)["value"]["data"].as_i64().unwrap();
    crate::runtime_contract::wait_for_prewarmed(&rt, 2).await;
    assert_eq!(rt.status().pool.unwrap().warm_idle, 1);
    rt.shutdown().await;
    let status = rt.status().pool.unwrap();
    assert_eq!((status.prewarm_idle, status.warm_idle, status.launching), (0, 0, 0));
    assert_dead(warm_pid).await;
}

#[tokio::test]
async fn health_answers_when_node_runs() {
    runtime().health().await.unwrap();
}

#[test]
fn config_defaults_and_validation() {
    let config: ProcessRuntimeConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(config.node_bin, PathBuf::from("node"));
    assert_eq!(config.memory_mb, 256);
    assert_eq!(config.execution.mode, ExecutionMode::Prewarm);
    let config: ProcessRuntimeConfig =
        serde_json::from_value(json!({"memory_mb": 64, "execution": {"mode": "warm"}})).unwrap();
    assert_eq!(config.memory_mb, 64);
    assert_eq!(config.execution.mode, ExecutionMode::Warm);
    let zero = ProcessRuntimeConfig {
        memory_mb: 0,
        ..ProcessRuntimeConfig::default()
    };
    assert!(matches!(ProcessRuntime::new(zero), Err(AdapterError::Config(_))));
    let empty = ProcessRuntimeConfig {
        node_bin: PathBuf::new(),
        ..ProcessRuntimeConfig::default()
    };
    assert!(matches!(ProcessRuntime::new(empty), Err(AdapterError::Config(_))));
}

#[test]
fn a_bare_program_name_is_resolved_on_the_host_path() {
    let resolved = resolve_program(Path::new("node"));
    assert!(resolved.is_absolute(), "{}", resolved.display());
    assert_eq!(resolve_program(Path::new("./node")), PathBuf::from("./node"));
    assert_eq!(sanitize("run-0190/../x"), "run-0190x");
}

/// A pid no process has now: one of a child that ended and was reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new(resolve_program(Path::new("true")))
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    pid
}

/// Issue 12, item 6: the workspaces of a server killed with `kill -9` were
/// never removed. Start-up removes those whose server is gone and keeps
/// those of live servers (this one, PID 1) and everything else.
#[test]
fn workspaces_of_servers_that_are_gone_are_swept_at_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dead = dead_pid();
    let own = std::process::id();
    for dir in [
        format!("lowcode-faas-w{dead}-run-0190-abc"),
        format!("lowcode-faas-w{dead}-runner-def"),
        format!("lowcode-faas-w{own}-runner-ghi"),
        "lowcode-faas-w1-runner-jkl".to_string(),
        "lowcode-faas-wx1-runner".to_string(),
        "lowcode-faas-run-legacy".to_string(),
    ] {
        std::fs::create_dir(tmp.path().join(&dir)).unwrap();
        std::fs::write(tmp.path().join(&dir).join("bootstrap.mjs"), "x").unwrap();
    }
    std::fs::write(tmp.path().join(format!("lowcode-faas-w{dead}-file")), "x").unwrap();

    assert_eq!(sweep_stale_workspaces(tmp.path()), 2);

    let mut left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut expected = vec![
        format!("lowcode-faas-w{dead}-file"),
        format!("lowcode-faas-w{own}-runner-ghi"),
        "lowcode-faas-run-legacy".to_string(),
        "lowcode-faas-w1-runner-jkl".to_string(),
        "lowcode-faas-wx1-runner".to_string(),
    ];
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(sweep_stale_workspaces(&tmp.path().join("missing")), 0);

    // The runtime sweeps the temp directory when it is built.
    let stale = std::env::temp_dir().join(format!("lowcode-faas-w{dead}-runner-{}", RunId::generate()));
    std::fs::create_dir(&stale).unwrap();
    let _rt = runtime();
    assert!(!stale.exists());
}

#[test]
fn workspace_names_carry_their_server() {
    assert_eq!(workspace_owner("lowcode-faas-w42-runner-x"), Some(42));
    assert_eq!(
        workspace_owner(&format!("{}run-1", workspace_prefix())),
        Some(std::process::id())
    );
    for name in [
        "lowcode-faas-w-x",
        "lowcode-faas-w+4-x",
        "lowcode-faas-w42",
        "lowcode-faas-run-1",
        "x",
    ] {
        assert_eq!(workspace_owner(name), None, "{name}");
    }
}
