//! Runs and their outcomes: results, limits, timeouts, images, the daemon.

use super::*;

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
    // A create the daemon finished after the run answered is removed once it
    // settled: shutdown waits for those clean-ups, then nothing is left.
    shut_down(rt).await;
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
