//! `ContainerRuntime` that runs jobs in Docker containers through the Engine
//! API (bollard, never the docker CLI).
//!
//! Every container is a runner: `node --input-type=module -e <bootstrap> --
//! --serve --own-container` (the bootstrap in the command itself, see
//! `launcher`) started with no user code, taking jobs over its attached stdin and
//! answering with frames on its stdout ([`crate::runner`]). Where a run's
//! container comes from is the execution mode ([`ExecutionConfig`]): started
//! for the run (`cold`), taken from a pool of started ones (`prewarm`, the
//! default), or a warm one kept for the same deployment and env (`warm`).
//!
//! Invariants:
//! - every container carries the owner label (this instance) and a runner
//!   label; a container started for one run (a cold start) also carries its
//!   run id and a deadline label; pool containers carry neither (labels are
//!   fixed at creation, before a pool container knows its runs);
//! - the same hardening for every container: memory = swap, CPUs, pids 256,
//!   a numeric non-root user, all capabilities dropped, `no-new-privileges`,
//!   the configured network, a capped json-file log;
//! - no bind mounts, no volumes, no port: the bootstrap travels in the
//!   container's command, the workspace is a size-capped tmpfs owned by the
//!   container user, jobs and results go over the attach stream;
//! - a container is removed after its run (off the request path) unless it
//!   stays warm; a dropped run removes its container from a spawned task;
//!   what a crash leaves behind carries the owner label and goes at the next
//!   start-up ([`DockerRuntime::remove_owned_containers`]);
//! - the daemon is reached lazily: an unreachable daemon is not an error at
//!   construction; runs then fail with `RUNTIME_UNAVAILABLE` and
//!   [`faas_ports::ContainerRuntime::health`] reports it.
//!
//! Requests go to the daemon without an API version prefix (bollard builds
//! its URLs that way), so the daemon answers in its own current version;
//! Docker Engine 20.10 (API 1.41) and later work.

mod daemon;
mod launcher;
mod registry_auth;
#[cfg(test)]
mod registry_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use faas_ports::PortError;
use serde::Deserialize;

use crate::runner::pool::Pool;
use crate::runner::{ExecutionConfig, Launcher};
use crate::AdapterError;
use daemon::{map_error, pull_image, remove_container, Fault, FaultKind, CONTROL_TIMEOUT};
use launcher::{Client, DockerLauncher, HEALTH_TIMEOUT};
pub use registry_auth::RegistryAuth;

/// Label naming the runtime instance that owns a container.
pub const OWNER_LABEL: &str = "lowcode-faas.owner";
/// Label naming the run a container was started for (cold starts only).
pub const RUN_ID_LABEL: &str = "lowcode-faas.run_id";
/// Label naming the runner (the container's own name).
pub const RUNNER_LABEL: &str = "lowcode-faas.runner";
/// Label of a cold container: when (Unix seconds) any instance may remove it.
pub const DEADLINE_LABEL: &str = "lowcode-faas.deadline";

/// Docker refuses memory limits below 6 MiB.
const MIN_MEMORY_MB: u64 = 6;
/// Bound on the background pull of [`DockerRuntime::prewarm`].
const PREWARM_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Settings of the Docker runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DockerConfig {
    /// Image with `node` on its `PATH` (`LOWCODE_FAAS_NODE_DOCKER_IMAGE`).
    pub image: String,
    /// Memory limit of a container in MiB, swap excluded (`LOWCODE_FAAS_CONTAINER_MEMORY_MB`).
    pub memory_mb: u64,
    /// CPUs of a container (`LOWCODE_FAAS_CONTAINER_CPUS`).
    pub cpus: f64,
    /// Docker network mode: `bridge`, `none`, or a network name (`LOWCODE_FAAS_CONTAINER_NETWORK`).
    pub network: String,
    /// Numeric, non-root `uid[:gid]` the function runs as.
    pub user: String,
    /// Owner label value (`LOWCODE_FAAS_INSTANCE_ID`), stable across restarts.
    pub instance_id: String,
    /// Pull a missing image in the background at start-up (`LOWCODE_FAAS_PREWARM_NODE_IMAGE`).
    pub prewarm_image: bool,
    /// Execution mode and pool sizes.
    pub execution: ExecutionConfig,
    /// Where image pulls find registry credentials: the Docker CLI's
    /// config file (`DOCKER_CONFIG` / `~/.docker/config.json`) by default.
    #[serde(skip)]
    pub registry_auth: RegistryAuth,
}

impl Default for DockerConfig {
    /// The defaults; `instance_id` is left empty because only the
    /// composition root knows it (hostname + listen port).
    fn default() -> Self {
        Self {
            image: "node:22-alpine".into(),
            memory_mb: 256,
            cpus: 1.0,
            network: "bridge".into(),
            user: "1000:1000".into(),
            instance_id: String::new(),
            prewarm_image: true,
            execution: ExecutionConfig::default(),
            registry_auth: RegistryAuth::default(),
        }
    }
}

/// Runs jobs in containers (see the module docs).
#[derive(Debug)]
pub struct DockerRuntime {
    launcher: Arc<DockerLauncher>,
    pool: Pool,
}

impl DockerRuntime {
    /// Checks the settings and prepares a client for the daemon named by
    /// `DOCKER_HOST` (else the local socket). An unreachable daemon is not an
    /// error here; an unsupported `DOCKER_HOST` scheme is. The pool starts
    /// filling on [`DockerRuntime::start_pool`] or the first run.
    pub fn new(config: DockerConfig) -> Result<Self, AdapterError> {
        Self::with_connector(config, Docker::connect_with_defaults)
    }

    fn with_connector(
        config: DockerConfig,
        connect: fn() -> Result<Docker, BollardError>,
    ) -> Result<Self, AdapterError> {
        let (uid, gid) = validate(&config)?;
        let docker = match connect() {
            Ok(docker) => Some(docker),
            Err(e @ BollardError::UnsupportedURISchemeError { .. }) => {
                return Err(AdapterError::Config(format!("DOCKER_HOST: {e}")));
            }
            Err(e) => {
                tracing::warn!(error = %e, "The Docker daemon is not reachable yet; runs fail until it is.");
                None
            }
        };
        let execution = config.execution.clone();
        let launcher = Arc::new(DockerLauncher {
            config,
            uid,
            gid,
            client: Arc::new(Client::new(connect, docker)),
            cleanups: Arc::default(),
        });
        let pool = Pool::new(Arc::clone(&launcher) as Arc<dyn Launcher>, execution);
        Ok(Self { launcher, pool })
    }

    fn config(&self) -> &DockerConfig {
        &self.launcher.config
    }

    /// Starts filling the pool of prewarmed containers in the background
    /// (no-op in `cold` mode). Call it after [`Self::remove_owned_containers`]
    /// at start-up, which would remove them again.
    pub fn start_pool(&self) {
        self.pool.start();
    }

    /// Removes every idle pool container and waits (bounded) for removals
    /// under way; the composition root calls it at shutdown before
    /// [`Self::remove_owned_containers`].
    pub async fn shutdown(&self) {
        self.pool.shutdown().await;
        // Launches cut short remove their containers once the create settled.
        self.launcher.cleanups.settled(CONTROL_TIMEOUT * 2).await;
    }

    /// Pulls the image in the background of start-up when `prewarm_image`
    /// is on and the image is missing; logs the outcome, never fails.
    pub async fn prewarm(&self) {
        let config = self.config();
        if !config.prewarm_image {
            return;
        }
        let image = config.image.as_str();
        let docker = match self.launcher.client.get() {
            Ok(docker) => docker,
            Err(fault) => {
                tracing::warn!(image, error = %fault, "Cannot prewarm the node image: Docker is unreachable.");
                return;
            }
        };
        match tokio::time::timeout(HEALTH_TIMEOUT, docker.inspect_image(image)).await {
            Ok(Ok(_)) => {
                tracing::info!(image, "The node image is present.");
                return;
            }
            Ok(Err(e)) => {
                let fault = map_error(e);
                if fault.kind != FaultKind::NotFound {
                    tracing::warn!(image, error = %fault, "Cannot inspect the node image.");
                    return;
                }
            }
            Err(_) => {
                tracing::warn!(image, "Docker did not answer while inspecting the node image.");
                return;
            }
        }
        tracing::info!(image, "Pulling the node image in the background.");
        let pull = async {
            let credentials = config.registry_auth.credentials_for(image).await;
            pull_image(&docker, image, credentials).await
        };
        match tokio::time::timeout(PREWARM_TIMEOUT, pull).await {
            Ok(Ok(())) => tracing::info!(image, "Pulled the node image."),
            Ok(Err(fault)) => tracing::warn!(image, error = %fault, "Pulling the node image failed."),
            Err(_) => tracing::warn!(
                image,
                timeout_ms = PREWARM_TIMEOUT.as_millis(),
                "Pulling the node image did not finish in time."
            ),
        }
    }

    /// Force-removes every container (running or not) labelled as owned by
    /// this instance: leftovers of a crash, or the pool at shutdown. The
    /// composition root calls it at start-up and at shutdown. Returns how
    /// many were removed.
    pub async fn remove_owned_containers(&self) -> Result<usize, PortError> {
        let docker = self
            .launcher
            .client
            .get()
            .map_err(|f| f.into_port_error("cannot reach the Docker daemon"))?;
        let instance = &self.config().instance_id;
        let listed = list_labelled(&docker, &format!("{OWNER_LABEL}={instance}")).await?;
        let mut removed = 0;
        let mut failed = Vec::new();
        for id in listed.into_iter().filter_map(|c| c.id) {
            match remove_container(&docker, &id).await {
                Ok(()) => removed += 1,
                // Gone or going meanwhile (a run finishing, another clean-up).
                Err(fault) if fault.is_gone() => {}
                Err(fault) => {
                    tracing::warn!(container = %id, error = %fault, "Cannot remove an owned container.");
                    failed.push(fault);
                }
            }
        }
        tracing::info!(removed, failed = failed.len(), instance = %instance, "Removed owned containers.");
        match failed.into_iter().next() {
            None => Ok(removed),
            Some(fault) => Err(fault.into_port_error("cannot remove every owned container")),
        }
    }
}

impl DockerRuntime {
    /// Removes the leftovers of *other* instances that are surely dead:
    /// containers of ours (an owner label) that stopped at least `min_age`
    /// ago (runners end themselves once their server is gone: past a job's
    /// deadline, or idle too long), and running cold containers past their
    /// deadline label. Live servers' containers are left alone: they run,
    /// and none of them outlives its deadline. Returns how many went.
    pub async fn remove_stale_containers(&self, min_age: Duration) -> Result<usize, PortError> {
        self.remove_stale_matching(min_age, OWNER_LABEL).await
    }

    /// [`Self::remove_stale_containers`] among the containers matching
    /// `label` (a Docker label filter: `key` or `key=value`).
    async fn remove_stale_matching(&self, min_age: Duration, label: &str) -> Result<usize, PortError> {
        let docker = self
            .launcher
            .client
            .get()
            .map_err(|f| f.into_port_error("cannot reach the Docker daemon"))?;
        let instance = &self.config().instance_id;
        let listed = list_labelled(&docker, label).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut removed = 0;
        for summary in listed {
            let labels = summary.labels.clone().unwrap_or_default();
            if labels.get(OWNER_LABEL) == Some(instance) {
                continue;
            }
            let Some(id) = summary.id.clone() else { continue };
            let state = summary.state.as_ref().map(ToString::to_string).unwrap_or_default();
            let stale = if state == "running" {
                labels
                    .get(DEADLINE_LABEL)
                    .and_then(|d| d.parse::<u64>().ok())
                    .is_some_and(|deadline| deadline < now)
            } else if state == "exited" || state == "dead" {
                match tokio::time::timeout(
                    CONTROL_TIMEOUT,
                    docker.inspect_container(&id, None::<bollard::query_parameters::InspectContainerOptions>),
                )
                .await
                {
                    Ok(Ok(inspected)) => {
                        let finished = inspected
                            .state
                            .and_then(|s| s.finished_at)
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                            .and_then(|t| u64::try_from(t.timestamp()).ok())
                            .filter(|t| *t > 0);
                        finished.is_some_and(|t| t.saturating_add(min_age.as_secs()) <= now)
                    }
                    _ => false,
                }
            } else {
                // Created and not started yet, restarting, paused: some
                // server is in the middle of something with it.
                false
            };
            if !stale {
                continue;
            }
            match remove_container(&docker, &id).await {
                Ok(()) => removed += 1,
                Err(fault) if fault.is_gone() => {}
                Err(fault) => tracing::warn!(container = %id, error = %fault, "Cannot remove a stale container."),
            }
        }
        if removed > 0 {
            tracing::info!(removed, "Removed stale containers of other instances.");
        }
        Ok(removed)
    }
}

crate::runner::pooled_container_runtime!(DockerRuntime);

/// Every container (running or not) matching a label filter (`key` or `key=value`).
async fn list_labelled(docker: &Docker, label: &str) -> Result<Vec<ContainerSummary>, PortError> {
    let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    tokio::time::timeout(CONTROL_TIMEOUT, docker.list_containers(Some(options)))
        .await
        .map_err(|_| Fault::silent(CONTROL_TIMEOUT))
        .and_then(|r| r.map_err(map_error))
        .map_err(|f| f.into_port_error("cannot list containers"))
}

impl DockerConfig {
    /// Checks every setting (also what [`DockerRuntime::new`] does); each
    /// message names its `LOWCODE_FAAS_*` variable.
    pub fn validate(&self) -> Result<(), AdapterError> {
        validate(self).map(|_| ())
    }
}

/// Checks the settings; returns the numeric uid and gid.
fn validate(config: &DockerConfig) -> Result<(u64, u64), AdapterError> {
    let bad = |m: String| Err(AdapterError::Config(m));
    if config.image.trim().is_empty() {
        return bad("LOWCODE_FAAS_NODE_DOCKER_IMAGE must not be empty".into());
    }
    if config.memory_mb < MIN_MEMORY_MB {
        return bad(format!(
            "LOWCODE_FAAS_CONTAINER_MEMORY_MB must be at least {MIN_MEMORY_MB} (Docker's minimum), got {}",
            config.memory_mb
        ));
    }
    if !(config.cpus.is_finite() && config.cpus >= 0.01 && config.cpus <= 1024.0) {
        return bad(format!(
            "LOWCODE_FAAS_CONTAINER_CPUS must be between 0.01 and 1024, got {}",
            config.cpus
        ));
    }
    if config.network.trim().is_empty() {
        return bad("LOWCODE_FAAS_CONTAINER_NETWORK must not be empty (bridge, none, or a network name)".into());
    }
    if config.instance_id.trim().is_empty() {
        return bad("LOWCODE_FAAS_INSTANCE_ID must not be empty".into());
    }
    config.execution.validate()?;
    let (uid, gid) = match config.user.split_once(':') {
        Some((uid, gid)) => (uid, gid),
        None => (config.user.as_str(), config.user.as_str()),
    };
    match (uid.parse::<u64>(), gid.parse::<u64>()) {
        (Ok(0), _) => bad("LOWCODE_FAAS_CONTAINER_USER must not be root (uid 0)".into()),
        (Ok(uid), Ok(gid)) if uid <= u64::from(u32::MAX) && gid <= u64::from(u32::MAX) => Ok((uid, gid)),
        _ => bad(format!(
            "LOWCODE_FAAS_CONTAINER_USER must be a numeric, non-root uid[:gid], got '{}'",
            config.user
        )),
    }
}
