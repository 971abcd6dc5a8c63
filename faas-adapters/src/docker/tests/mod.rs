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

mod config;
mod containers;
mod orphans;
mod pool;
mod runs;
