//! Against the real Docker engine: a missing daemon or image fails the
//! tests (never skips them). Build the image with
//! `scripts/build-node-image.sh`, or name another with
//! `LOWCODE_FAAS_NODE_DOCKER_IMAGE`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder, StartContainerOptions,
};
use bollard::Docker;
use faas_ports::{ContainerRuntime, ErrorCode, RunId, StartKind};
use serde_json::json;
use tokio::time::Instant;

use super::launcher::{container_name, DockerLauncher};
use super::*;
use crate::runner::pool::Pool;
use crate::runner::{ExecutionMode, Purpose};
use crate::runtime_contract::{contract_job as job, envelope, log_messages, WHO_AM_I};

const MIB: u64 = 1024 * 1024;
const DEFAULT_TEST_IMAGE: &str = "lowcode-faas/node:local";

fn test_image() -> String {
    std::env::var("LOWCODE_FAAS_NODE_DOCKER_IMAGE").unwrap_or_else(|_| DEFAULT_TEST_IMAGE.to_string())
}

fn execution(mode: ExecutionMode, pool: usize) -> ExecutionConfig {
    ExecutionConfig {
        mode,
        prewarm_pool_size: pool,
        ..ExecutionConfig::default()
    }
}

/// A cold-mode config with a fresh instance id, so tests never remove each
/// other's containers.
fn config() -> DockerConfig {
    DockerConfig {
        image: test_image(),
        instance_id: format!("test-{}", RunId::generate()),
        prewarm_image: false,
        execution: execution(ExecutionMode::Cold, 0),
        ..DockerConfig::default()
    }
}

/// A runtime whose daemon and image are known to be there.
async fn runtime_with(config: DockerConfig) -> DockerRuntime {
    let rt = DockerRuntime::new(config).unwrap();
    if let Err(e) = rt.health().await {
        panic!(
            "the Docker tests need a reachable daemon and the image {}: {e}; run scripts/build-node-image.sh",
            test_image()
        );
    }
    rt
}

async fn runtime() -> DockerRuntime {
    runtime_with(config()).await
}

async fn runtime_in(mode: ExecutionMode, pool: usize) -> DockerRuntime {
    runtime_with(DockerConfig {
        execution: execution(mode, pool),
        ..config()
    })
    .await
}

fn docker() -> Docker {
    Docker::connect_with_defaults().unwrap()
}

/// Ids of the containers (running or not) carrying `label=value`.
async fn containers_labelled(label: &str, value: &str) -> Vec<String> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{label}={value}")])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker()
        .list_containers(Some(options))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// Polls (bounded) until no container carries `label=value`.
async fn assert_no_container_eventually(label: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = containers_labelled(label, value).await;
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "containers of {value} left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls (bounded) until the pool holds `n` idle prewarmed runners.
async fn wait_for_pool(rt: &DockerRuntime, n: usize) {
    rt.start_pool();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = rt.status().pool.unwrap();
        if status.prewarm_idle >= n {
            return;
        }
        assert!(Instant::now() < deadline, "the pool never filled: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Shuts the runtime down and checks that nothing of it is left.
async fn shut_down(rt: DockerRuntime) {
    let instance = rt.config().instance_id.clone();
    rt.shutdown().await;
    drop(rt);
    assert_no_container_eventually(OWNER_LABEL, &instance).await;
}

#[tokio::test]
async fn a_cold_run_returns_its_result_and_leaves_no_container() {
    let mut job = job(r#"
        export async function handler(input) {
          return { ok: true, data: { input, greeting: process.env.GREETING, cwd: process.cwd() } };
        }"#);
    job.input_json = br#"{"name":"x"}"#.to_vec();
    job.env.insert("GREETING".into(), "hi".into());
    let run_id = job.run_id.to_string();
    let output = runtime().await.run(job).await.unwrap();
    assert_eq!(output.start_kind, StartKind::Cold);
    assert_eq!(
        envelope(&output)["value"]["data"],
        json!({"input": {"name": "x"}, "greeting": "hi", "cwd": "/workspace"})
    );
    assert_no_container_eventually(RUN_ID_LABEL, &run_id).await;
}

#[tokio::test]
async fn exceeding_the_memory_limit_is_out_of_memory() {
    for mode in [ExecutionMode::Cold, ExecutionMode::Warm] {
        let rt = runtime_with(DockerConfig {
            memory_mb: 32,
            execution: execution(mode, 1),
            ..config()
        })
        .await;
        let job = job(r#"
            export async function handler() {
              console.log("allocating");
              const keep = [];
              while (true) keep.push(Buffer.alloc(1024 * 1024, 1));
            }"#);
        let failure = rt.run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::OutOfMemory, "{mode:?}: {}", failure.message);
        assert_eq!(failure.message, "function ran out of memory (memory limit 32 MB)");
        shut_down(rt).await;
    }
}

#[tokio::test]
async fn an_endless_loop_times_out_and_leaves_no_container() {
    let mut job = job("export async function handler() { console.log('spinning'); while (true) {} }");
    // Long enough for a container start on a loaded machine to reach the
    // handler's first line (the test checks that line comes back).
    job.timeout = Duration::from_secs(5);
    let run_id = job.run_id.to_string();
    let failure = runtime().await.run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::Timeout, "{}", failure.message);
    assert_eq!(failure.message, "function timed out after 5000 ms");
    assert_eq!(log_messages(&failure.logs), ["spinning"]);
    assert_no_container_eventually(RUN_ID_LABEL, &run_id).await;
}

#[tokio::test]
async fn dropping_the_run_removes_its_container() {
    let rt = runtime().await;
    let job = job("export async function handler() { while (true) {} }");
    let run_id = job.run_id.to_string();
    // Boxed so that `drop` really drops the future.
    let mut run = Box::pin(rt.run(job));
    // Drive the run until its container runs, then drop it.
    let filters = HashMap::from([
        ("label".to_string(), vec![format!("{RUN_ID_LABEL}={run_id}")]),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::select! {
            outcome = &mut run => panic!("the run ended before it was dropped: {outcome:?}"),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let options = ListContainersOptionsBuilder::default().filters(&filters).build();
        if !docker().list_containers(Some(options)).await.unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the run's container never started");
    }
    drop(run);
    assert_no_container_eventually(RUN_ID_LABEL, &run_id).await;
}

/// The deadline passes while the create request is on its way: the run
/// waits for the create to settle and removes what it made.
#[tokio::test]
async fn a_deadline_during_creation_leaves_no_container() {
    let rt = runtime().await;
    for _ in 0..3 {
        let mut job = job("export async function handler() { return { ok: true }; }");
        job.timeout = Duration::from_millis(1);
        let run_id = job.run_id.to_string();
        let failure = rt.run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::Timeout, "{}", failure.message);
        assert_eq!(failure.message, "function timed out after 1 ms");
        assert_no_container_eventually(RUN_ID_LABEL, &run_id).await;
    }
}

#[tokio::test]
async fn a_missing_image_that_cannot_be_pulled_is_image_unavailable() {
    let rt = DockerRuntime::new(DockerConfig {
        image: "lowcode-faas/does-not-exist:never".into(),
        ..config()
    })
    .unwrap();
    let job = job("export async function handler() { return { ok: true }; }");
    let run_id = job.run_id.to_string();
    let failure = rt.run(job).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::ImageUnavailable, "{}", failure.message);
    assert!(
        failure
            .message
            .starts_with("cannot pull the image lowcode-faas/does-not-exist:never: "),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("scripts/build-node-image.sh"),
        "{}",
        failure.message
    );
    assert_no_container_eventually(RUN_ID_LABEL, &run_id).await;

    let error = rt.health().await.unwrap_err();
    assert_eq!(error.code(), "RUNTIME_UNAVAILABLE");
    let text = error.to_string();
    assert!(text.contains("is not present on the Docker host"), "{text}");
    assert!(text.contains("scripts/build-node-image.sh"), "{text}");
}

/// The pool of a missing image backs off instead of spinning, says why in
/// its status, and runs still fall back to a (failing) cold start.
#[tokio::test]
async fn a_pool_without_its_image_backs_off_and_says_why() {
    let rt = DockerRuntime::new(DockerConfig {
        image: "lowcode-faas/does-not-exist:never".into(),
        execution: execution(ExecutionMode::Prewarm, 4),
        ..config()
    })
    .unwrap();
    rt.start_pool();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = rt.status().pool.unwrap();
        if status.last_error.is_some() {
            break status;
        }
        assert!(Instant::now() < deadline, "no launch failure recorded: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = status.last_error.unwrap();
    assert!(error.contains("scripts/build-node-image.sh"), "{error}");
    // Within the first second of backing off only the first launches failed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rt.status().pool.unwrap().launch_failures <= 2);
    let failure = rt
        .run(job("export async function handler() { return { ok: true }; }"))
        .await
        .unwrap_err();
    assert_eq!(failure.code, ErrorCode::ImageUnavailable, "{}", failure.message);
    assert_eq!(rt.status().pool.unwrap().misses, 1);
    shut_down(rt).await;
}

/// Prewarming only logs: a present image, a pull that fails and a
/// disabled prewarm all return quietly.
#[tokio::test]
async fn prewarm_never_fails() {
    runtime().await.prewarm().await;
    let missing = DockerConfig {
        image: "lowcode-faas/does-not-exist:never".into(),
        prewarm_image: true,
        ..config()
    };
    DockerRuntime::new(missing.clone()).unwrap().prewarm().await;
    DockerRuntime::new(DockerConfig {
        prewarm_image: false,
        ..missing
    })
    .unwrap()
    .prewarm()
    .await;
}

#[tokio::test]
async fn an_unreachable_daemon_is_runtime_unavailable() {
    fn nowhere() -> Result<Docker, BollardError> {
        Docker::connect_with_unix(
            "unix:///nonexistent/lowcode-faas/docker.sock",
            5,
            bollard::API_DEFAULT_VERSION,
        )
    }
    for mode in [ExecutionMode::Cold, ExecutionMode::Prewarm] {
        let rt = DockerRuntime::with_connector(
            DockerConfig {
                execution: execution(mode, 2),
                ..config()
            },
            nowhere,
        )
        .unwrap();
        let failure = rt
            .run(job("export const handler = () => ({ ok: true });"))
            .await
            .unwrap_err();
        assert_eq!(failure.code, ErrorCode::RuntimeUnavailable, "{}", failure.message);
        assert!(failure.message.contains("docker.sock"), "{}", failure.message);
        assert_eq!(rt.health().await.unwrap_err().code(), "RUNTIME_UNAVAILABLE");
        assert_eq!(
            rt.remove_owned_containers().await.unwrap_err().code(),
            "RUNTIME_UNAVAILABLE"
        );
        rt.shutdown().await;
    }
}

/// Every container, cold or pooled, is hardened and labelled alike.
#[tokio::test]
async fn every_container_is_hardened() {
    let rt = runtime_with(DockerConfig {
        memory_mb: 64,
        cpus: 0.5,
        network: "none".into(),
        execution: execution(ExecutionMode::Prewarm, 1),
        ..config()
    })
    .await;
    wait_for_pool(&rt, 1).await;
    let pooled = containers_labelled(OWNER_LABEL, &rt.config().instance_id).await;
    assert_eq!(pooled.len(), 1);
    // A cold container made the same way a run makes one.
    let cold_job = job("export async function handler() { return { ok: true }; }");
    let cold = rt
        .launcher
        .launch(Purpose::Run(&cold_job), Instant::now() + Duration::from_secs(60))
        .await
        .unwrap();
    let cold_name = container_name(cold_job.run_id.as_str());
    for (name, run_id) in [
        (pooled[0].as_str(), None),
        (cold_name.as_str(), Some(cold_job.run_id.as_str())),
    ] {
        let inspected = docker()
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .unwrap();
        let host = inspected.host_config.unwrap();
        assert_eq!(host.memory, Some(64 * MIB as i64));
        assert_eq!(host.memory_swap, Some(64 * MIB as i64));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.pids_limit, Some(256));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.security_opt, Some(vec!["no-new-privileges".to_string()]));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.privileged, Some(false));
        assert!(host.binds.unwrap_or_default().is_empty());
        assert!(host.mounts.unwrap_or_default().is_empty());
        assert!(host.port_bindings.unwrap_or_default().is_empty());
        assert!(inspected.mounts.unwrap_or_default().is_empty());
        assert_eq!(host.tmpfs.unwrap_or_default().len(), 1, "only the workspace tmpfs");
        let config = inspected.config.unwrap();
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert_eq!(config.working_dir.as_deref(), Some("/workspace"));
        assert!(config.exposed_ports.unwrap_or_default().is_empty());
        let labels = config.labels.unwrap();
        assert_eq!(labels.get(OWNER_LABEL), Some(&rt.config().instance_id));
        assert!(labels.contains_key(RUNNER_LABEL));
        assert_eq!(labels.get(RUN_ID_LABEL).map(String::as_str), run_id);
    }
    cold.destroy().await;
    shut_down(rt).await;
}

#[tokio::test]
async fn network_none_cuts_the_network_off() {
    let rt = runtime_with(DockerConfig {
        network: "none".into(),
        ..config()
    })
    .await;
    let job = job(r#"
        import os from "node:os";
        export async function handler() { return { ok: true, data: Object.keys(os.networkInterfaces()) }; }"#);
    let output = rt.run(job).await.unwrap();
    assert_eq!(envelope(&output)["value"]["data"], json!(["lo"]));
}

#[tokio::test]
async fn owned_leftovers_are_removed_and_others_kept() {
    let rt = runtime().await;
    let other = runtime().await;
    let docker = docker();
    let mut names = Vec::new();
    for (owner, suffix) in [(&rt, "mine"), (&other, "theirs")] {
        let name = format!("lowcode-faas-test-{}-{suffix}", RunId::generate());
        let body = ContainerCreateBody {
            image: Some(test_image()),
            cmd: Some(vec!["node".into(), "-e".into(), "setInterval(() => {}, 1000)".into()]),
            labels: Some(HashMap::from([(
                OWNER_LABEL.to_string(),
                owner.config().instance_id.clone(),
            )])),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        docker.create_container(Some(options), body).await.unwrap();
        names.push(name);
    }
    docker
        .start_container(&names[0], None::<StartContainerOptions>)
        .await
        .unwrap();

    assert_eq!(rt.remove_owned_containers().await.unwrap(), 1);

    assert!(containers_labelled(OWNER_LABEL, &rt.config().instance_id)
        .await
        .is_empty());
    assert_eq!(
        containers_labelled(OWNER_LABEL, &other.config().instance_id)
            .await
            .len(),
        1
    );
    assert_eq!(other.remove_owned_containers().await.unwrap(), 1);
    assert_eq!(rt.remove_owned_containers().await.unwrap(), 0);
}

#[tokio::test]
async fn the_log_cap_follows_the_job() {
    let mut job = job("export async function handler() { for (let i = 0; i < 100; i++) console.log('entry', i); return { ok: true }; }");
    job.max_log_bytes = 400;
    let output = runtime().await.run(job).await.unwrap();
    let messages = log_messages(&output.logs);
    assert_eq!(
        messages.last().unwrap(),
        "[lowcode-faas] function log truncated: limit of 400 bytes reached"
    );
    assert!(messages.len() > 2 && messages.len() < 10, "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_contract_holds_in_every_mode() {
    for mode in [ExecutionMode::Cold, ExecutionMode::Prewarm, ExecutionMode::Warm] {
        let rt = runtime_in(mode, 2).await;
        crate::runtime_contract::container_runtime_contract(&rt, 1000).await;
        shut_down(rt).await;
    }
}

#[tokio::test]
async fn execution_modes_behave_as_documented() {
    let rt = runtime_in(ExecutionMode::Prewarm, 2).await;
    crate::runtime_contract::check_prewarm_serves_each_run_once(&rt).await;
    shut_down(rt).await;
    let rt = runtime_in(ExecutionMode::Warm, 1).await;
    crate::runtime_contract::check_warm_reuse_is_per_key(&rt).await;
    shut_down(rt).await;
    let rt = runtime_in(ExecutionMode::Warm, 1).await;
    crate::runtime_contract::check_warm_runs_inherit_no_processes(&rt).await;
    shut_down(rt).await;
    let rt = runtime_in(ExecutionMode::Warm, 1).await;
    crate::runtime_contract::check_warm_job_channel_is_out_of_reach(&rt).await;
    shut_down(rt).await;
    let rt = runtime_with(DockerConfig {
        execution: crate::runtime_contract::warm_caps_config(),
        ..config()
    })
    .await;
    crate::runtime_contract::check_warm_caps_and_ttl(&rt).await;
    shut_down(rt).await;
}

/// A pool container removed from outside (or lost with a daemon restart)
/// is never handed a job: the run still succeeds and the pool refills.
#[tokio::test]
async fn an_externally_removed_pool_container_is_replaced() {
    let rt = runtime_in(ExecutionMode::Prewarm, 1).await;
    wait_for_pool(&rt, 1).await;
    let instance = rt.config().instance_id.clone();
    let victims = containers_labelled(OWNER_LABEL, &instance).await;
    assert_eq!(victims.len(), 1);
    super::daemon::remove_container(&docker(), &victims[0]).await.unwrap();
    let output = rt.run(job(WHO_AM_I)).await.unwrap();
    assert_eq!(envelope(&output)["value"]["data"]["calls"], 1);
    wait_for_pool(&rt, 1).await;
    let now = containers_labelled(OWNER_LABEL, &instance).await;
    assert!(!now.contains(&victims[0]));
    shut_down(rt).await;
}

/// Polls (bounded) until no container has an id starting with `prefix`
/// (a runner's host name is its container's short id).
async fn assert_container_gone(prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while docker()
        .inspect_container(prefix, None::<InspectContainerOptions>)
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "container {prefix} is still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The container of a `host/pid` runner name.
fn container_of(runner: &str) -> String {
    runner.split('/').next().unwrap().to_string()
}

/// A runner that sends a broken or oversized frame fails its run, is never
/// reused, and its container is removed.
#[tokio::test]
async fn a_runner_that_breaks_the_protocol_is_destroyed_and_never_reused() {
    let rt = runtime_in(ExecutionMode::Warm, 0).await;
    let launcher = Arc::clone(&rt.launcher);
    let faulty = DockerRuntime {
        launcher: Arc::clone(&launcher),
        pool: Pool::new(
            Arc::new(crate::runner::testing::Faulty(launcher as Arc<dyn Launcher>)),
            execution(ExecutionMode::Warm, 0),
        ),
    };
    for runner in crate::runtime_contract::check_a_runner_that_breaks_the_protocol_is_never_reused(&faulty).await {
        assert_container_gone(&container_of(&runner)).await;
    }
    shut_down(faulty).await;
    shut_down(rt).await;
}

/// Under concurrent load the containers that really exist (counted by the
/// instance's owner label) never pass the warm cap + the prewarm pool + the
/// runs in flight (+ removals under way), the pool's counts never pass the
/// caps, and shutdown leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_keeps_its_caps_under_load() {
    let execution = ExecutionConfig {
        mode: ExecutionMode::Warm,
        prewarm_pool_size: 2,
        warm_max_containers: 2,
        warm_max_per_key: 1,
        ..ExecutionConfig::default()
    };
    let rt = Arc::new(
        runtime_with(DockerConfig {
            execution: execution.clone(),
            ..config()
        })
        .await,
    );
    let instance = rt.config().instance_id.clone();
    let clients = 4;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (rt, done, execution, instance) = (Arc::clone(&rt), Arc::clone(&done), execution.clone(), instance.clone());
        tokio::spawn(async move {
            let (mut samples, mut most) = (0, 0);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let before = rt.pool.counts();
                let real = containers_labelled(OWNER_LABEL, &instance).await.len();
                let after = rt.pool.counts();
                for c in [before, after] {
                    assert!(c.warm_live <= execution.warm_max_containers, "{c:?}");
                    assert!(c.warm_live_max_per_key <= execution.warm_max_per_key, "{c:?}");
                    assert!(c.prewarm_idle + c.launching <= execution.prewarm_pool_size, "{c:?}");
                }
                let bound = execution.warm_max_containers
                    + execution.prewarm_pool_size
                    + clients
                    + before.removals_pending
                    + usize::try_from(after.removals_started - before.removals_started).unwrap();
                assert!(real <= bound, "{real} containers, bound {bound}: {after:?}");
                most = most.max(real);
                samples += 1;
            }
            (samples, most)
        })
    };
    let runs = (0..clients).map(|client| {
        let rt = Arc::clone(&rt);
        tokio::spawn(async move {
            for i in 0..4 {
                let mut j = job(WHO_AM_I);
                j.env.insert("K".into(), ((client + i) % 3).to_string());
                rt.run(j).await.unwrap();
            }
        })
    });
    for run in futures_util::future::join_all(runs).await {
        run.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (samples, most) = sampler.await.unwrap();
    assert!(samples > 0 && most > 0, "{samples} samples, at most {most} containers");
    let status = rt.status().pool.unwrap();
    assert_eq!(status.hits + status.misses, 16);
    let rt = Arc::into_inner(rt).unwrap();
    shut_down(rt).await;
}

/// Idle containers killed or restarted from outside (as a Docker daemon
/// restart does) end their attach streams: they are detected, removed and
/// replaced, never handed a job.
#[tokio::test]
async fn killed_or_restarted_pool_containers_are_replaced_never_handed_a_job() {
    let who = |output: &faas_ports::RunOutput| {
        envelope(output)["value"]["data"]["runner"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Warm, no pool: after the kill, the next run is a miss.
    let rt = runtime_in(ExecutionMode::Warm, 0).await;
    let first = rt.run(job(WHO_AM_I)).await.unwrap();
    let victim = container_of(&who(&first));
    docker()
        .kill_container(&victim, None::<bollard::query_parameters::KillContainerOptions>)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rt.status().pool.unwrap().warm_idle > 0 {
        assert!(Instant::now() < deadline, "the killed warm container was kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_container_gone(&victim).await;
    let hits = rt.status().pool.unwrap().hits;
    let next = rt.run(job(WHO_AM_I)).await.unwrap();
    assert_eq!(next.start_kind, StartKind::Cold);
    assert_eq!(envelope(&next)["value"]["data"]["calls"], 1);
    assert_eq!(
        rt.status().pool.unwrap().hits,
        hits,
        "the killed runner was not handed the job"
    );
    shut_down(rt).await;

    // Prewarm: a restarted container runs again, but its attach stream (and
    // its key) are gone: it is removed and replaced.
    let rt = runtime_in(ExecutionMode::Prewarm, 1).await;
    wait_for_pool(&rt, 1).await;
    let instance = rt.config().instance_id.clone();
    let victims = containers_labelled(OWNER_LABEL, &instance).await;
    assert_eq!(victims.len(), 1);
    docker()
        .restart_container(
            &victims[0],
            Some(
                bollard::query_parameters::RestartContainerOptionsBuilder::default()
                    .t(0)
                    .build(),
            ),
        )
        .await
        .unwrap();
    assert_container_gone(&victims[0]).await;
    wait_for_pool(&rt, 1).await;
    let output = rt.run(job(WHO_AM_I)).await.unwrap();
    assert_eq!(output.start_kind, StartKind::Prewarm);
    assert!(
        !victims[0].starts_with(&container_of(&who(&output))),
        "the restarted container served a run"
    );
    shut_down(rt).await;
}

/// A runner whose server is gone (nobody reads it, nobody kills it) stops
/// by itself shortly after its job's deadline.
#[tokio::test]
async fn an_orphaned_runner_stops_itself_after_its_deadline() {
    let rt = runtime().await;
    let mut spin = job("export async function handler() { while (true) {} }");
    spin.timeout = Duration::from_secs(1);
    let name = container_name(spin.run_id.as_str());
    let mut runner = rt
        .launcher
        .launch(Purpose::Run(&spin), Instant::now() + Duration::from_secs(60))
        .await
        .unwrap();
    let env = crate::runner::run_env(&spin);
    let key = crate::runner::protocol::RunnerKey::generate().unwrap();
    runner.send(&key.line()).await.unwrap();
    let line = crate::runner::protocol::job_line(&spin, &env, "orphan").unwrap();
    runner.send(&line).await.unwrap();
    // From here on nothing talks to the runner, as after a kill -9 of its server.
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit_code = loop {
        let inspected = docker()
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .unwrap();
        let state = inspected.state.unwrap();
        if state.running == Some(false) {
            break state.exit_code;
        }
        assert!(Instant::now() < deadline, "the orphaned runner still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(exit_code, Some(137), "killed by its own watchdog");
    runner.destroy().await;
}

/// The start-up reaper removes stopped containers of other instances and
/// running cold ones past their deadline, and leaves running ones alone.
#[tokio::test]
async fn stale_containers_of_other_instances_go_and_live_ones_stay() {
    let rt = runtime().await;
    let other = format!("test-other-{}", RunId::generate());
    let docker = docker();
    let make = |suffix: &str, deadline: Option<u64>, script: &str| {
        let name = format!("lowcode-faas-test-{}-{suffix}", RunId::generate());
        let mut labels = HashMap::from([(OWNER_LABEL.to_string(), other.clone())]);
        if let Some(deadline) = deadline {
            labels.insert(DEADLINE_LABEL.to_string(), deadline.to_string());
        }
        let body = ContainerCreateBody {
            image: Some(test_image()),
            cmd: Some(vec!["node".into(), "-e".into(), script.to_string()]),
            labels: Some(labels),
            ..ContainerCreateBody::default()
        };
        (name, body)
    };
    let forever = "setInterval(() => {}, 1000)";
    let containers = [
        make("stopped", None, "0"),
        make("running", None, forever),
        make("overdue", Some(1), forever),
        make("due-later", Some(u64::MAX / 2), forever),
        // Created, not started yet: some server is launching it.
        make("created", None, forever),
    ];
    for (i, (name, body)) in containers.iter().enumerate() {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        docker.create_container(Some(options), body.clone()).await.unwrap();
        if i < 4 {
            docker
                .start_container(name, None::<StartContainerOptions>)
                .await
                .unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while docker
        .inspect_container(&containers[0].0, None::<InspectContainerOptions>)
        .await
        .unwrap()
        .state
        .and_then(|s| s.running)
        != Some(false)
    {
        assert!(Instant::now() < deadline, "node -e 0 never stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only this test's containers (the start-up reaper looks at every owner).
    let mine = format!("{OWNER_LABEL}={other}");
    assert_eq!(rt.remove_stale_matching(Duration::ZERO, &mine).await.unwrap(), 2);
    let left = containers_labelled(OWNER_LABEL, &other).await;
    assert_eq!(left.len(), 3, "the running and the created ones stay");
    for (name, _) in [&containers[1], &containers[3], &containers[4]] {
        let inspected = docker.inspect_container(name, None::<InspectContainerOptions>).await;
        assert!(inspected.is_ok(), "{name} was removed");
    }
    for id in left {
        super::daemon::remove_container(&docker, &id).await.unwrap();
    }
}

#[test]
fn config_defaults_and_validation() {
    let config: DockerConfig = serde_json::from_value(json!({"instance_id": "host-8080"})).unwrap();
    assert_eq!(config.image, "node:22-alpine");
    assert_eq!((config.memory_mb, config.cpus), (256, 1.0));
    assert_eq!((config.network.as_str(), config.user.as_str()), ("bridge", "1000:1000"));
    assert!(config.prewarm_image);
    assert_eq!(config.execution.mode, ExecutionMode::Prewarm);
    assert_eq!(validate(&config).unwrap(), (1000, 1000));
    assert_eq!(
        validate(&DockerConfig {
            user: "1234".into(),
            ..config.clone()
        })
        .unwrap(),
        (1234, 1234)
    );
    let bad = [
        DockerConfig {
            instance_id: String::new(),
            ..config.clone()
        },
        DockerConfig {
            user: "0:0".into(),
            ..config.clone()
        },
        DockerConfig {
            user: "node".into(),
            ..config.clone()
        },
        DockerConfig {
            memory_mb: 4,
            ..config.clone()
        },
        DockerConfig {
            cpus: 0.0,
            ..config.clone()
        },
        DockerConfig {
            cpus: f64::NAN,
            ..config.clone()
        },
        DockerConfig {
            image: " ".into(),
            ..config.clone()
        },
        DockerConfig {
            network: String::new(),
            ..config.clone()
        },
        DockerConfig {
            execution: ExecutionConfig {
                warm_max_per_key: 0,
                ..ExecutionConfig::default()
            },
            ..config.clone()
        },
    ];
    for config in bad {
        assert!(
            matches!(DockerRuntime::new(config.clone()), Err(AdapterError::Config(_))),
            "{config:?}"
        );
    }
}

#[test]
fn the_bootstrap_travels_in_the_command_and_the_workspace_is_a_capped_tmpfs() {
    let launcher = DockerLauncher {
        config: DockerConfig {
            instance_id: "i".into(),
            ..DockerConfig::default()
        },
        uid: 1000,
        gid: 1001,
        client: std::sync::Arc::new(super::launcher::Client::new(Docker::connect_with_defaults, None)),
    };
    let body = launcher.container_body("lowcode-faas-x", None);
    let cmd = body.cmd.unwrap();
    assert_eq!(cmd[..3], ["node", "--input-type=module", "-e"]);
    assert_eq!(cmd[3], crate::bootstrap::BOOTSTRAP_MJS);
    assert_eq!(cmd[4..7], ["--", "--serve", "--own-container"]);
    assert_eq!(cmd[7], format!("--max-idle-ms={}", 16 * 60 * 1000));
    assert!(body.env.is_none(), "a runner has no env of its own");
    let tmpfs = body.host_config.unwrap().tmpfs.unwrap();
    assert_eq!(
        tmpfs.get("/workspace").map(String::as_str),
        Some("rw,nosuid,nodev,size=64m,uid=1000,gid=1001,mode=0700")
    );
    assert_eq!(container_name("run-a/b:c"), "lowcode-faas-run-abc");
}
