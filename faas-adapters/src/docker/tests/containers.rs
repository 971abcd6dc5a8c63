//! Container hardening, the network, leftovers and the log cap.

use super::*;

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
