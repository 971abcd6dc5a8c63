//! Orphaned runners and the start-up reaper.

use super::*;

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
