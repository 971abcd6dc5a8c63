//! The baselines measured beside the product: `docker run`, the earlier CLI sequence, the archive and attached-stdin cold paths, and runner start rates.

use super::*;

pub(crate) fn run_cmd(args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{args:?} failed");
    started.elapsed()
}

/// A baseline row from sequential samples (invokes/s = 1 / mean).
pub(crate) fn baseline(label: String, samples: Vec<Duration>) -> Row {
    let total: f64 = samples.iter().map(Duration::as_secs_f64).sum();
    let n = samples.len();
    Row {
        label,
        c1: Level {
            latency: Series::from(samples),
            rate: n as f64 / total,
            kinds: "–".into(),
        },
        c8: None,
        baseline: true,
    }
}

/// `docker run --rm IMAGE node -e 0`.
pub(crate) fn docker_run_baseline(image: &str, n: usize) -> Vec<Duration> {
    run_cmd(&["docker", "run", "--rm", image, "node", "-e", "0"]);
    (0..n)
        .map(|_| run_cmd(&["docker", "run", "--rm", image, "node", "-e", "0"]))
        .collect()
}

/// The earlier implementation's per-invoke docker CLI sequence: create,
/// copy the workspace in, start attached, copy the output out, remove.
pub(crate) fn go_sequence_baseline(image: &str, n: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("workspace");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(ws.join("bootstrap.mjs"), include_str!("../../../../js/bootstrap.mjs")).unwrap();
    std::fs::write(ws.join("function.mjs"), HELLO).unwrap();
    std::fs::write(ws.join("input.json"), r#"{"name":"bench"}"#).unwrap();
    let out = dir.path().join("output.json");
    let once = |i: usize| {
        let name = format!("lowcode-faas-bench-go-{}-{i}", std::process::id());
        let started = Instant::now();
        run_cmd(&[
            "docker",
            "create",
            "--name",
            &name,
            "-w",
            "/workspace",
            image,
            "node",
            "/workspace/bootstrap.mjs",
        ]);
        run_cmd(&[
            "docker",
            "cp",
            &format!("{}/.", ws.display()),
            &format!("{name}:/workspace"),
        ]);
        run_cmd(&["docker", "start", "-a", &name]);
        run_cmd(&[
            "docker",
            "cp",
            &format!("{name}:/workspace/output.json"),
            &out.display().to_string(),
        ]);
        run_cmd(&["docker", "rm", "-f", &name]);
        started.elapsed()
    };
    once(usize::MAX);
    (0..n).map(once).collect()
}

/// The cold path of earlier versions through the Engine API (bollard), in
/// this process: create, upload the workspace as an archive (bootstrap,
/// function, input), start, wait, download `output.json` as an archive.
/// The removal happens after the clock stops, as the runtime removes off
/// the request path.
pub(crate) async fn archive_path_baseline(image: &str, n: usize) -> Vec<Duration> {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{
        CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, RemoveContainerOptionsBuilder,
        StartContainerOptions, UploadToContainerOptionsBuilder, WaitContainerOptions,
    };
    use futures_util::StreamExt;
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let mut archive = tar::Builder::new(Vec::new());
    for (name, text) in [
        ("bootstrap.mjs", include_str!("../../../../js/bootstrap.mjs")),
        ("function.mjs", HELLO),
        ("input.json", r#"{"name":"bench"}"#),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, text.as_bytes()).unwrap();
    }
    let archive = bytes::Bytes::from(archive.into_inner().unwrap());
    let mut samples = Vec::new();
    for i in 0..=n {
        let name = format!("lowcode-faas-bench-archive-{}-{i}", std::process::id());
        let started = Instant::now();
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["node".into(), "/workspace/bootstrap.mjs".into()]),
            working_dir: Some("/workspace".into()),
            ..ContainerCreateBody::default()
        };
        docker
            .create_container(Some(CreateContainerOptionsBuilder::default().name(&name).build()), body)
            .await
            .unwrap();
        docker
            .upload_to_container(
                &name,
                Some(UploadToContainerOptionsBuilder::default().path("/workspace").build()),
                bollard::body_full(archive.clone()),
            )
            .await
            .unwrap();
        docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .unwrap();
        let mut wait = docker.wait_container(&name, None::<WaitContainerOptions>);
        while wait.next().await.is_some() {}
        let mut output = Vec::new();
        let mut download = docker.download_from_container(
            &name,
            Some(
                DownloadFromContainerOptionsBuilder::default()
                    .path("/workspace/output.json")
                    .build(),
            ),
        );
        while let Some(chunk) = download.next().await {
            output.extend_from_slice(&chunk.unwrap());
        }
        let elapsed = started.elapsed();
        let text = String::from_utf8_lossy(&output);
        assert!(text.contains(r#""ok":true"#), "the archive path gave no result");
        docker
            .remove_container(
                &name,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .unwrap();
        if i > 0 {
            samples.push(elapsed);
        }
    }
    samples
}

/// A job of the hello function, as the engine makes them.
pub(crate) fn hello_job() -> faas_ports::RunJob {
    let run_id = faas_ports::RunId::generate();
    faas_ports::RunJob {
        env: [
            ("LOWCODE_FAAS_RUN_ID".to_string(), run_id.to_string()),
            ("LOWCODE_FAAS_DEPLOYMENT_ID".to_string(), "hello@v1".to_string()),
        ]
        .into(),
        run_id,
        function_id: "hello".into(),
        deployment_id: "hello@v1".into(),
        source_code: HELLO.into(),
        input_json: br#"{"name":"bench"}"#.to_vec(),
        timeout: Duration::from_secs(60),
        max_output_bytes: 6 * 1024 * 1024,
        max_log_bytes: 1024 * 1024,
    }
}

pub(crate) fn cold() -> faas_adapters::runner::ExecutionConfig {
    faas_adapters::runner::ExecutionConfig {
        mode: faas_adapters::runner::ExecutionMode::Cold,
        prewarm_pool_size: 0,
        ..faas_adapters::runner::ExecutionConfig::default()
    }
}

/// A runtime in `cold` mode, in this process.
pub(crate) enum ColdRuntime {
    Docker(Arc<faas_adapters::docker::DockerRuntime>),
    Process(Arc<faas_adapters::process::ProcessRuntime>),
}

impl ColdRuntime {
    pub(crate) fn new(docker: bool, image: &str, tag: &str) -> Self {
        if docker {
            Self::Docker(Arc::new(
                faas_adapters::docker::DockerRuntime::new(faas_adapters::docker::DockerConfig {
                    image: image.to_string(),
                    instance_id: format!("bench-{tag}-{}", std::process::id()),
                    prewarm_image: false,
                    execution: cold(),
                    ..faas_adapters::docker::DockerConfig::default()
                })
                .unwrap(),
            ))
        } else {
            Self::Process(Arc::new(
                faas_adapters::process::ProcessRuntime::new(faas_adapters::process::ProcessRuntimeConfig {
                    execution: cold(),
                    ..faas_adapters::process::ProcessRuntimeConfig::default()
                })
                .unwrap(),
            ))
        }
    }

    pub(crate) fn runtime(&self) -> Arc<dyn ContainerRuntime> {
        match self {
            Self::Docker(rt) => Arc::clone(rt) as Arc<dyn ContainerRuntime>,
            Self::Process(rt) => Arc::clone(rt) as Arc<dyn ContainerRuntime>,
        }
    }

    /// Waits for the removals under way and removes what is left.
    pub(crate) async fn close(self) {
        match self {
            Self::Docker(rt) => {
                rt.shutdown().await;
                rt.remove_owned_containers().await.unwrap();
            }
            Self::Process(rt) => rt.shutdown().await,
        }
    }
}

/// The cold path of today through the Engine API, in this process: the
/// Docker runtime in `cold` mode (create, attach, start, key and job over
/// the attached stdin, result over stdout; removal off the clock).
pub(crate) async fn attached_path_baseline(image: &str, n: usize) -> Vec<Duration> {
    let cold = ColdRuntime::new(true, image, "attached");
    let rt = cold.runtime();
    let mut samples = Vec::new();
    for i in 0..=n {
        let started = Instant::now();
        let output = rt.run(hello_job()).await.unwrap();
        if i > 0 {
            samples.push(started.elapsed());
        }
        assert!(String::from_utf8_lossy(&output.output_json).contains(r#""ok":true"#));
    }
    cold.close().await;
    samples
}

/// Cold runs per second with `parallel` of them at a time for `seconds`
/// (a fresh runtime in this process; its removals are waited for after).
pub(crate) async fn start_rate(docker: bool, image: &str, parallel: usize, seconds: f64) -> f64 {
    let cold = ColdRuntime::new(docker, image, &format!("starts{parallel}"));
    let rt = cold.runtime();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let workers = (0..parallel).map(|_| {
        let rt = Arc::clone(&rt);
        async move {
            let mut done = 0usize;
            while Instant::now() < deadline {
                rt.run(hello_job()).await.unwrap();
                done += 1;
            }
            done
        }
    });
    let done: usize = futures_util::future::join_all(workers).await.into_iter().sum();
    let rate = done as f64 / started.elapsed().as_secs_f64();
    // The removals of this level finish before the next one starts.
    cold.close().await;
    rate
}
