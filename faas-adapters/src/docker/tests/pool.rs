//! Execution modes and the pool: the contract in every mode, replacement, caps, protocol violations.

use super::*;

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
                let since = after.removals_started - before.removals_started;
                crate::runner::testing::check_caps(before, real, since, &execution, clients);
                // The caps hold at the second instant too (no runner count to bound there).
                crate::runner::testing::check_caps(after, 0, 0, &execution, clients);
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
