//! `ContainerRuntime` that runs each job in a fresh Docker container through
//! the Engine API (bollard, never the docker CLI), SPEC §6.
//!
//! One run: create the container (image, `node /workspace/bootstrap.mjs`, the
//! job's env, a non-root user, the owner and run labels, hardened host
//! config) → upload the workspace as a tar archive → start → wait until the
//! deadline (SIGKILL past it) → copy `output.json` and `logs.ndjson` out →
//! remove the container.
//!
//! Invariants:
//! - the container is removed (forced) in every outcome, including a dropped
//!   run future: `ContainerGuard` spawns the removal on the current tokio
//!   runtime. Whatever still escapes (a crash, `kill -9`) carries the owner
//!   label and goes at the next start-up ([`DockerRuntime::remove_owned_containers`]);
//! - no bind mounts, no volumes: files travel only as archives through the API;
//! - every read is bounded: `output.json` by `max_output_bytes`, `logs.ndjson`
//!   by `max_log_bytes` + 4 KiB (each plus a fixed allowance for tar headers;
//!   the download stream is dropped past it), the container's stderr by
//!   `STDERR_READ_LIMIT`, and its json-file log by `max-size`;
//! - every wait is bounded: the run by its deadline (image pull included),
//!   the collection of results, kills and removals by fixed grace periods;
//! - the daemon is reached lazily: an unreachable daemon is not an error at
//!   construction; runs then fail with `RUNTIME_UNAVAILABLE` and
//!   [`ContainerRuntime::health`] reports it.
//!
//! Requests go to the daemon without an API version prefix (bollard 0.19
//! builds its URLs that way), so the daemon answers in its own current
//! version; Docker Engine 20.10 (API 1.41) and later work.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    InspectContainerOptions, KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use faas_ports::{Component, ContainerRuntime, ErrorCode, PortError, RunFailure, RunId, RunJob, RunOutput};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;

use crate::bootstrap::{
    BOOTSTRAP_FILE, BOOTSTRAP_MJS, FUNCTION_FILE, INPUT_FILE, LOG_FILE, LOG_MAX_BYTES_ENV, OUTPUT_FILE,
};
use crate::AdapterError;

/// Label naming the runtime instance that owns a container.
pub const OWNER_LABEL: &str = "lowcode-faas.owner";
/// Label naming the run a container serves.
pub const RUN_ID_LABEL: &str = "lowcode-faas.run_id";

/// The workspace directory inside the container.
const WORKSPACE: &str = "/workspace";
/// Process limit of a run's container.
const PIDS_LIMIT: i64 = 256;
/// Docker refuses memory limits below 6 MiB.
const MIN_MEMORY_MB: u64 = 6;
/// Bound on the health check's ping and image inspection, each.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on reading results (output, logs, state, stderr) after the container stopped.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a kill, a removal, and on listing containers.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the background pull of [`DockerRuntime::prewarm`].
const PREWARM_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Allowance for tar headers (PAX records included) and padding around one
/// downloaded file.
const TAR_SLACK: u64 = 64 * 1024;
/// Slack over `max_log_bytes` when reading the log file back: room for the
/// bootstrap's final "log truncated" entry (as in the process runtime).
const LOG_READ_SLACK: u64 = 4096;
/// Lines of the container's stderr asked for after an unexplained exit.
const STDERR_TAIL_LINES: &str = "200";
/// Bytes of container stderr read at most, and kept for OOM detection.
const STDERR_READ_LIMIT: usize = 256 * 1024;
const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// Bytes of the stderr tail quoted in a failure message.
const STDERR_MESSAGE_BYTES: usize = 2048;
/// Cap of the container's own json-file log (stdout/stderr the bootstrap does
/// not capture), so a chatty function cannot fill the daemon's disk.
const CONTAINER_LOG_MAX_SIZE: &str = "1m";

/// Settings of the Docker runtime (SPEC §6, §11).
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
}

impl Default for DockerConfig {
    /// The SPEC defaults; `instance_id` is left empty because only the
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
        }
    }
}

/// Runs each job in its own container (see the module docs).
pub struct DockerRuntime {
    config: DockerConfig,
    uid: u64,
    gid: u64,
    /// How to reach the daemon; `Docker::connect_with_defaults` outside tests.
    connect: fn() -> Result<Docker, BollardError>,
    /// The client once built; building it fails while the socket is missing.
    client: Mutex<Option<Docker>>,
}

impl fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DockerRuntime {
    /// Checks the settings and prepares a client for the daemon named by
    /// `DOCKER_HOST` (else the local socket). An unreachable daemon is not an
    /// error here; an unsupported `DOCKER_HOST` scheme is.
    pub fn new(config: DockerConfig) -> Result<Self, AdapterError> {
        Self::with_connector(config, Docker::connect_with_defaults)
    }

    fn with_connector(
        config: DockerConfig,
        connect: fn() -> Result<Docker, BollardError>,
    ) -> Result<Self, AdapterError> {
        let (uid, gid) = validate(&config)?;
        let client = match connect() {
            Ok(docker) => Some(docker),
            Err(e @ BollardError::UnsupportedURISchemeError { .. }) => {
                return Err(AdapterError::Config(format!("DOCKER_HOST: {e}")));
            }
            Err(e) => {
                tracing::warn!(error = %e, "The Docker daemon is not reachable yet; runs fail until it is.");
                None
            }
        };
        Ok(Self {
            config,
            uid,
            gid,
            connect,
            client: Mutex::new(client),
        })
    }

    /// Pulls the image in the background of start-up when `prewarm_image`
    /// is on and the image is missing; logs the outcome, never fails.
    pub async fn prewarm(&self) {
        if !self.config.prewarm_image {
            return;
        }
        let image = self.config.image.as_str();
        let docker = match self.client() {
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
        match tokio::time::timeout(PREWARM_TIMEOUT, pull_image(&docker, image)).await {
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
    /// this instance: leftovers of a crash. The composition root calls it at
    /// start-up and at shutdown. Returns how many were removed.
    pub async fn remove_owned_containers(&self) -> Result<usize, PortError> {
        let docker = self
            .client()
            .map_err(|f| f.into_port_error("cannot reach the Docker daemon"))?;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{OWNER_LABEL}={}", self.config.instance_id)],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let listed = tokio::time::timeout(CONTROL_TIMEOUT, docker.list_containers(Some(options)))
            .await
            .map_err(|_| Fault::silent(CONTROL_TIMEOUT))
            .and_then(|r| r.map_err(map_error))
            .map_err(|f| f.into_port_error("cannot list owned containers"))?;
        let mut removed = 0;
        let mut failed = Vec::new();
        for id in listed.into_iter().filter_map(|c| c.id) {
            match remove_container(&docker, &id).await {
                Ok(()) => removed += 1,
                // Gone or going meanwhile (a run finishing, another clean-up).
                Err(fault) if matches!(fault.kind, FaultKind::NotFound | FaultKind::Conflict) => {}
                Err(fault) => {
                    tracing::warn!(container = %id, error = %fault, "Cannot remove an owned container.");
                    failed.push(fault);
                }
            }
        }
        tracing::info!(removed, failed = failed.len(), instance = %self.config.instance_id, "Removed owned containers.");
        match failed.into_iter().next() {
            None => Ok(removed),
            Some(fault) => Err(fault.into_port_error("cannot remove every owned container")),
        }
    }

    /// The client, built on first use (the daemon's socket may appear after start-up).
    fn client(&self) -> Result<Docker, Fault> {
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(docker) = slot.as_ref() {
            return Ok(docker.clone());
        }
        let docker = (self.connect)().map_err(map_error)?;
        *slot = Some(docker.clone());
        Ok(docker)
    }

    /// The container definition of one run: image, command, env, labels and
    /// the hardened host config.
    fn container_body(&self, job: &RunJob) -> ContainerCreateBody {
        let mut env: Vec<String> = job.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // The bootstrap's log cap follows the job's unless the env sets it.
        if !job.env.contains_key(LOG_MAX_BYTES_ENV) {
            env.push(format!("{LOG_MAX_BYTES_ENV}={}", job.max_log_bytes));
        }
        let labels = HashMap::from([
            (OWNER_LABEL.to_string(), self.config.instance_id.clone()),
            (RUN_ID_LABEL.to_string(), job.run_id.to_string()),
        ]);
        let memory = i64::try_from(self.config.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
        let host_config = HostConfig {
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some((self.config.cpus * 1e9).round() as i64),
            pids_limit: Some(PIDS_LIMIT),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            network_mode: Some(self.config.network.clone()),
            privileged: Some(false),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".to_string(), CONTAINER_LOG_MAX_SIZE.to_string()),
                    ("max-file".to_string(), "1".to_string()),
                ])),
            }),
            ..HostConfig::default()
        };
        ContainerCreateBody {
            image: Some(self.config.image.clone()),
            cmd: Some(vec!["node".into(), format!("{WORKSPACE}/{BOOTSTRAP_FILE}")]),
            working_dir: Some(WORKSPACE.into()),
            env: Some(env),
            user: Some(self.config.user.clone()),
            labels: Some(labels),
            attach_stdin: Some(false),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            open_stdin: Some(false),
            tty: Some(false),
            host_config: Some(host_config),
            ..ContainerCreateBody::default()
        }
    }

    /// Creates the run's container under the guard's name (see
    /// [`ContainerGuard::create`]); `NotFound` when the image is missing.
    async fn create_container(&self, guard: &mut ContainerGuard, job: &RunJob) -> Result<String, Fault> {
        guard.create(self.container_body(job)).await
    }

    /// Creates (pulling the image when missing), fills and starts the container.
    async fn prepare(
        &self,
        docker: &Docker,
        guard: &mut ContainerGuard,
        job: &RunJob,
        deadline: Instant,
    ) -> Result<(), RunFailure> {
        let id = match self.create_container(guard, job).await {
            Ok(id) => id,
            Err(fault) if fault.kind == FaultKind::NotFound => {
                if self.image_present(docker).await? {
                    return Err(fault.into_failure("cannot create the container", Vec::new()));
                }
                self.pull_within(docker, job, deadline).await?;
                self.create_container(guard, job)
                    .await
                    .map_err(|f| f.into_failure("cannot create the container", Vec::new()))?
            }
            Err(fault) => return Err(fault.into_failure("cannot create the container", Vec::new())),
        };
        tracing::Span::current().record("container", tracing::field::display(&id));
        let name = guard.name.as_str();

        let archive = workspace_archive(job, self.uid, self.gid).map_err(|e| {
            failure(
                ErrorCode::Internal,
                format!("cannot build the workspace archive: {e}"),
                Vec::new(),
            )
        })?;
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        docker
            .upload_to_container(name, Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(|e| map_error(e).into_failure("cannot copy the workspace into the container", Vec::new()))?;
        docker
            .start_container(name, None::<StartContainerOptions>)
            .await
            .map_err(|e| map_error(e).into_failure("cannot start the container", Vec::new()))
    }

    async fn image_present(&self, docker: &Docker) -> Result<bool, RunFailure> {
        match docker.inspect_image(&self.config.image).await {
            Ok(_) => Ok(true),
            Err(e) => match map_error(e) {
                fault if fault.kind == FaultKind::NotFound => Ok(false),
                fault => Err(fault.into_failure("cannot inspect the image", Vec::new())),
            },
        }
    }

    /// Pulls the missing image before the run's deadline.
    async fn pull_within(&self, docker: &Docker, job: &RunJob, deadline: Instant) -> Result<(), RunFailure> {
        let image = self.config.image.as_str();
        tracing::info!(image, "The node image is missing; pulling it.");
        match tokio::time::timeout_at(deadline, pull_image(docker, image)).await {
            Ok(Ok(())) => {
                tracing::info!(image, "Pulled the node image.");
                Ok(())
            }
            Ok(Err(fault)) if fault.kind == FaultKind::Unreachable => {
                Err(fault.into_failure("cannot pull the image", Vec::new()))
            }
            Ok(Err(fault)) => {
                tracing::warn!(image, error = %fault, "Pulling the node image failed.");
                Err(failure(
                    ErrorCode::ImageUnavailable,
                    format!("cannot pull the image {image}: {}", fault.message),
                    Vec::new(),
                ))
            }
            Err(_) => Err(failure(
                ErrorCode::Timeout,
                format!(
                    "function timed out after {} ms while the image {image} was being pulled",
                    job.timeout.as_millis()
                ),
                Vec::new(),
            )),
        }
    }

    /// The whole run inside its container; the caller removes the container.
    async fn execute(
        &self,
        docker: &Docker,
        guard: &mut ContainerGuard,
        job: &RunJob,
        deadline: Instant,
    ) -> Result<RunOutput, RunFailure> {
        match tokio::time::timeout_at(deadline, self.prepare(docker, guard, job, deadline)).await {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => return Err(failure),
            Err(_) => return Err(timed_out(job, Vec::new())),
        }
        let name = guard.name.as_str();

        let exit_code = match tokio::time::timeout_at(deadline, wait_exit(docker, name)).await {
            Ok(Ok(code)) => code,
            Ok(Err(fault)) => return Err(fault.into_failure("waiting for the container failed", Vec::new())),
            Err(_) => {
                kill_container(docker, name).await;
                let logs = tokio::time::timeout(COLLECT_TIMEOUT, read_logs(docker, name, job.max_log_bytes))
                    .await
                    .unwrap_or_default();
                tracing::info!(timeout_ms = job.timeout.as_millis(), "Run timed out; container killed.");
                return Err(timed_out(job, logs));
            }
        };

        match tokio::time::timeout(COLLECT_TIMEOUT, self.judge(docker, name, job, exit_code)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(failure(
                ErrorCode::Internal,
                format!(
                    "reading the run's results from the container took longer than {} ms",
                    COLLECT_TIMEOUT.as_millis()
                ),
                Vec::new(),
            )),
        }
    }

    /// Turns what a stopped container left behind into the outcome.
    async fn judge(&self, docker: &Docker, name: &str, job: &RunJob, exit_code: i64) -> Result<RunOutput, RunFailure> {
        let logs = read_logs(docker, name, job.max_log_bytes).await;
        let output_path = format!("{WORKSPACE}/{OUTPUT_FILE}");
        let cap = job.max_output_bytes.saturating_add(1);
        match download_file(docker, name, &output_path, cap).await {
            Ok(Some(file)) if !file.regular => Err(failure(
                ErrorCode::Internal,
                format!("cannot read output.json: {output_path} is not a regular file"),
                logs,
            )),
            Ok(Some(file)) if file.size > job.max_output_bytes => Err(failure(
                ErrorCode::OutputTooLarge,
                format!(
                    "function output ({} bytes) is larger than the limit of {} bytes",
                    file.size, job.max_output_bytes
                ),
                logs,
            )),
            Ok(Some(file)) if u64::try_from(file.data.len()).unwrap_or(u64::MAX) != file.size => Err(failure(
                ErrorCode::Internal,
                "cannot read output.json: the archive from the container was cut short".into(),
                logs,
            )),
            Ok(Some(file)) => Ok(RunOutput {
                output_json: file.data,
                logs,
            }),
            Ok(None) => Err(self.exited_without_output(docker, name, exit_code, logs).await),
            Err(fault) => Err(fault.into_failure("cannot read output.json", logs)),
        }
    }

    /// A container that stopped without a result envelope: OOM kill or an
    /// unexplained exit (with the end of its stderr).
    async fn exited_without_output(&self, docker: &Docker, name: &str, exit_code: i64, logs: Vec<u8>) -> RunFailure {
        let oom_killed = match docker.inspect_container(name, None::<InspectContainerOptions>).await {
            Ok(inspected) => inspected.state.and_then(|s| s.oom_killed).unwrap_or(false),
            Err(e) => {
                tracing::warn!(error = %map_error(e), "Cannot inspect a stopped container.");
                false
            }
        };
        let stderr = stderr_tail(docker, name).await;
        let stderr_text = String::from_utf8_lossy(&stderr);
        if oom_killed
            || crate::bootstrap::NODE_OOM_MARKERS
                .iter()
                .any(|m| stderr_text.contains(m))
        {
            return failure(
                ErrorCode::OutOfMemory,
                format!("function ran out of memory (memory limit {} MB)", self.config.memory_mb),
                logs,
            );
        }
        tracing::debug!(exit_code, stderr = %stderr_text, "Run ended without output.json.");
        let mut message = format!("function exited without writing a result (exit status: {exit_code})");
        let quoted = stderr_quote(&stderr);
        if !quoted.is_empty() {
            message.push_str("; stderr: ");
            message.push_str(&quoted);
        }
        failure(ErrorCode::ExitedWithoutOutput, message, logs)
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    #[tracing::instrument(
        skip_all,
        fields(run_id = %job.run_id, function = %job.function_id, deployment = %job.deployment_id, container = tracing::field::Empty)
    )]
    async fn run(&self, job: RunJob) -> Result<RunOutput, RunFailure> {
        let deadline = Instant::now() + job.timeout;
        let docker = self
            .client()
            .map_err(|f| f.into_failure("cannot reach the Docker daemon", Vec::new()))?;
        let mut guard = ContainerGuard::new(docker.clone(), container_name(&job.run_id));
        let outcome = self.execute(&docker, &mut guard, &job, deadline).await;
        guard.remove().await;
        outcome
    }

    async fn health(&self) -> Result<(), PortError> {
        let docker = self
            .client()
            .map_err(|f| f.into_port_error("cannot reach the Docker daemon"))?;
        match tokio::time::timeout(HEALTH_TIMEOUT, docker.ping()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(map_error(e).into_port_error("the Docker daemon does not answer")),
            Err(_) => return Err(Fault::silent(HEALTH_TIMEOUT).into_port_error("the Docker daemon does not answer")),
        }
        let image = self.config.image.as_str();
        match tokio::time::timeout(HEALTH_TIMEOUT, docker.inspect_image(image)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                let fault = map_error(e);
                let context = if fault.kind == FaultKind::NotFound {
                    let prewarm = if self.config.prewarm_image {
                        "it is being pulled in the background, or pull or build it"
                    } else {
                        "pull or build it (or enable LOWCODE_FAAS_PREWARM_NODE_IMAGE)"
                    };
                    format!("the node image {image} is not present on the Docker host; {prewarm}")
                } else {
                    format!("cannot inspect the node image {image}")
                };
                Err(PortError::Unavailable {
                    component: Component::Runtime,
                    message: format!("{context}: {}", fault.message),
                    source: fault.source.map(|e| Box::new(e) as faas_ports::BoxError),
                })
            }
            Err(_) => Err(Fault::silent(HEALTH_TIMEOUT).into_port_error("cannot inspect the node image")),
        }
    }
}

/// Checks the settings; returns the numeric uid and gid.
fn validate(config: &DockerConfig) -> Result<(u64, u64), AdapterError> {
    let bad = |m: String| Err(AdapterError::Config(m));
    if config.image.trim().is_empty() {
        return bad("image must not be empty".into());
    }
    if config.memory_mb < MIN_MEMORY_MB {
        return bad(format!("memory_mb must be at least {MIN_MEMORY_MB} (Docker's minimum)"));
    }
    if !(config.cpus.is_finite() && config.cpus >= 0.01 && config.cpus <= 1024.0) {
        return bad(format!("cpus must be between 0.01 and 1024, got {}", config.cpus));
    }
    if config.network.trim().is_empty() {
        return bad("network must not be empty (bridge, none, or a network name)".into());
    }
    if config.instance_id.trim().is_empty() {
        return bad("instance_id must not be empty".into());
    }
    let (uid, gid) = match config.user.split_once(':') {
        Some((uid, gid)) => (uid, gid),
        None => (config.user.as_str(), config.user.as_str()),
    };
    match (uid.parse::<u64>(), gid.parse::<u64>()) {
        (Ok(0), _) => bad("user must not be root (uid 0)".into()),
        (Ok(uid), Ok(gid)) if uid <= u64::from(u32::MAX) && gid <= u64::from(u32::MAX) => Ok((uid, gid)),
        _ => bad(format!("user must be a numeric uid[:gid], got '{}'", config.user)),
    }
}

/// The container's name: unique per run, so a dropped run can find it.
fn container_name(run_id: &RunId) -> String {
    let safe: String = run_id
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(100)
        .collect();
    format!("lowcode-faas-{safe}")
}

fn failure(code: ErrorCode, message: String, logs: Vec<u8>) -> RunFailure {
    RunFailure { code, message, logs }
}

fn timed_out(job: &RunJob, logs: Vec<u8>) -> RunFailure {
    failure(
        ErrorCode::Timeout,
        format!("function timed out after {} ms", job.timeout.as_millis()),
        logs,
    )
}

/// The workspace as a tar archive to extract at `/`: the `workspace/`
/// directory and the three input files, all owned by the run's user.
fn workspace_archive(job: &RunJob, uid: u64, gid: u64) -> io::Result<Vec<u8>> {
    let mtime = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let header = |kind: tar::EntryType, mode: u32, size: usize| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(mtime);
        header.set_size(u64::try_from(size).unwrap_or(u64::MAX));
        header
    };
    let dir = WORKSPACE.trim_start_matches('/');
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir_header = header(tar::EntryType::Directory, 0o755, 0);
    builder.append_data(&mut dir_header, format!("{dir}/"), io::empty())?;
    let files: [(&str, &[u8]); 3] = [
        (BOOTSTRAP_FILE, BOOTSTRAP_MJS.as_bytes()),
        (FUNCTION_FILE, job.source_code.as_bytes()),
        (INPUT_FILE, &job.input_json),
    ];
    for (file, data) in files {
        let mut file_header = header(tar::EntryType::Regular, 0o644, data.len());
        builder.append_data(&mut file_header, format!("{dir}/{file}"), data)?;
    }
    builder.into_inner()
}

/// Pulls `image` (tag `latest` when it names none).
async fn pull_image(docker: &Docker, image: &str) -> Result<(), Fault> {
    let mut options = CreateImageOptionsBuilder::default().from_image(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    if !last.contains(':') && !image.contains('@') {
        options = options.tag("latest");
    }
    let mut progress = std::pin::pin!(docker.create_image(Some(options.build()), None, None));
    while let Some(item) = progress.next().await {
        item.map_err(map_error)?;
    }
    Ok(())
}

/// Waits for the container to stop; its exit code.
async fn wait_exit(docker: &Docker, name: &str) -> Result<i64, Fault> {
    let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
    let mut waiting = std::pin::pin!(docker.wait_container(name, Some(options)));
    match waiting.next().await {
        Some(Ok(response)) => Ok(response.status_code),
        // bollard reports a non-zero exit as an error.
        Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(map_error(e)),
        None => Err(Fault::other("the wait for the container ended without a status".into())),
    }
}

/// SIGKILLs the container; a container that already stopped is fine.
async fn kill_container(docker: &Docker, name: &str) {
    let options = KillContainerOptionsBuilder::default().signal("SIGKILL").build();
    match tokio::time::timeout(CONTROL_TIMEOUT, docker.kill_container(name, Some(options))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let fault = map_error(e);
            // 409: not running any more.
            if !matches!(fault.kind, FaultKind::NotFound | FaultKind::Conflict) {
                tracing::warn!(error = %fault, "Cannot kill a run's container.");
            }
        }
        Err(_) => tracing::warn!("Killing a run's container did not finish in time."),
    }
}

/// Force-removes a container (and its anonymous volumes).
async fn remove_container(docker: &Docker, name: &str) -> Result<(), Fault> {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    match tokio::time::timeout(CONTROL_TIMEOUT, docker.remove_container(name, Some(options))).await {
        Ok(result) => result.map_err(map_error),
        Err(_) => Err(Fault::silent(CONTROL_TIMEOUT)),
    }
}

/// Removes the run's container when the run ends, and also when the run's
/// future is dropped (then from a task spawned on the current runtime).
///
/// The create request runs on a task of its own ([`ContainerGuard::create`]),
/// so a run cut short by its deadline or a drop still learns whether the
/// daemon made the container, and removes it only after the create settled:
/// a removal can never overtake the creation. The owner label catches what
/// escapes even this (a crash), at the next start-up.
#[derive(Debug)]
struct ContainerGuard {
    docker: Docker,
    /// The container's name, known before it is created.
    name: String,
    /// The create request, while it has not answered.
    pending_create: Option<tokio::task::JoinHandle<Result<String, Fault>>>,
    armed: bool,
}

impl ContainerGuard {
    fn new(docker: Docker, name: String) -> Self {
        Self {
            docker,
            name,
            pending_create: None,
            armed: true,
        }
    }

    /// Creates the container named `self.name`; its id.
    async fn create(&mut self, body: ContainerCreateBody) -> Result<String, Fault> {
        let docker = self.docker.clone();
        let options = CreateContainerOptionsBuilder::default().name(&self.name).build();
        let task = self.pending_create.insert(tokio::spawn(async move {
            let created = docker.create_container(Some(options), body).await.map_err(map_error)?;
            for warning in &created.warnings {
                tracing::warn!(warning = %warning, "Docker warned while creating a container.");
            }
            Ok(created.id)
        }));
        let joined = task.await;
        self.pending_create = None;
        joined.unwrap_or_else(|e| Err(Fault::other(format!("the create task failed: {e}"))))
    }

    /// Removes the container, after an interrupted create settled.
    async fn remove(&mut self) {
        if let Some(task) = self.pending_create.as_mut() {
            if tokio::time::timeout(CONTROL_TIMEOUT, task).await.is_err() {
                tracing::warn!(container = %self.name, "An interrupted container creation did not settle in time.");
            }
            self.pending_create = None;
        }
        match remove_container(&self.docker, &self.name).await {
            // NotFound: creation failed, nothing to remove. Conflict: a
            // clean-up (remove_owned_containers) is removing it already.
            Ok(()) => {}
            Err(fault) if matches!(fault.kind, FaultKind::NotFound | FaultKind::Conflict) => {}
            Err(fault) => {
                tracing::warn!(container = %self.name, error = %fault, "Cannot remove a run's container; it goes at the next start-up.")
            }
        }
        self.armed = false;
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let docker = self.docker.clone();
        let name = std::mem::take(&mut self.name);
        let pending = self.pending_create.take();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(remove_abandoned(docker, name, pending));
            }
            Err(_) => {
                tracing::warn!(container = %name, "A dropped run left its container; it goes at the next start-up.")
            }
        }
    }
}

/// Removes the container of a dropped run, once its create settled.
async fn remove_abandoned(
    docker: Docker,
    name: String,
    pending: Option<tokio::task::JoinHandle<Result<String, Fault>>>,
) {
    if let Some(task) = pending {
        if tokio::time::timeout(CONTROL_TIMEOUT, task).await.is_err() {
            tracing::warn!(container = %name, "An interrupted container creation did not settle in time.");
        }
    }
    match remove_container(&docker, &name).await {
        Ok(()) => tracing::debug!(container = %name, "Removed the container of a dropped run."),
        Err(fault) if matches!(fault.kind, FaultKind::NotFound | FaultKind::Conflict) => {}
        Err(fault) => {
            tracing::warn!(container = %name, error = %fault, "Cannot remove the container of a dropped run; it goes at the next start-up.")
        }
    }
}

/// One file copied out of a container.
#[derive(Debug)]
struct DownloadedFile {
    /// A regular file (not a symlink, directory, FIFO …).
    regular: bool,
    /// Its size according to the archive.
    size: u64,
    /// Its first bytes, at most the cap asked for; empty unless regular.
    data: Vec<u8>,
}

/// Downloads one file as a tar stream, reading at most `cap` bytes of its
/// content plus [`TAR_SLACK`]; the stream is dropped past that. `None` when
/// the file does not exist.
async fn download_file(docker: &Docker, name: &str, path: &str, cap: u64) -> Result<Option<DownloadedFile>, Fault> {
    let limit = usize::try_from(cap.saturating_add(TAR_SLACK)).unwrap_or(usize::MAX);
    let options = DownloadFromContainerOptionsBuilder::default().path(path).build();
    let mut stream = std::pin::pin!(docker.download_from_container(name, Some(options)));
    let mut archive = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                archive.extend_from_slice(&bytes);
                if archive.len() >= limit {
                    archive.truncate(limit);
                    break;
                }
            }
            Err(e) => {
                let fault = map_error(e);
                return if fault.kind == FaultKind::NotFound {
                    Ok(None)
                } else {
                    Err(fault)
                };
            }
        }
    }
    first_file(&archive, cap).map_err(|e| Fault::other(format!("unreadable archive from the container: {e}")))
}

/// The first entry of a (possibly cut short) tar archive.
fn first_file(archive: &[u8], cap: u64) -> io::Result<Option<DownloadedFile>> {
    let mut archive = tar::Archive::new(archive);
    let Some(entry) = archive.entries()?.next() else {
        return Ok(None);
    };
    let entry = entry?;
    let regular = entry.header().entry_type().is_file();
    let size = entry.size();
    let mut data = Vec::new();
    if regular {
        entry.take(cap).read_to_end(&mut data)?;
    }
    Ok(Some(DownloadedFile { regular, size, data }))
}

/// The captured function log, read with a cap of `max_log_bytes` + slack; a
/// read that hits the cap is cut back to its last complete line. Problems
/// are logged and give no logs: they never decide a run's outcome.
async fn read_logs(docker: &Docker, name: &str, max_log_bytes: u64) -> Vec<u8> {
    if max_log_bytes == 0 {
        // Logs are not wanted (capture is off): save the round trip.
        return Vec::new();
    }
    let cap = max_log_bytes.saturating_add(LOG_READ_SLACK);
    let path = format!("{WORKSPACE}/{LOG_FILE}");
    match download_file(docker, name, &path, cap).await {
        Ok(None) => Vec::new(),
        Ok(Some(file)) if !file.regular => {
            tracing::warn!(path = %path, "The function log is not a regular file.");
            Vec::new()
        }
        Ok(Some(mut file)) => {
            if u64::try_from(file.data.len()).unwrap_or(u64::MAX) >= cap {
                let keep = file.data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                file.data.truncate(keep);
            }
            file.data
        }
        Err(fault) => {
            tracing::warn!(error = %fault, "Cannot read the function log.");
            Vec::new()
        }
    }
}

/// The last [`STDERR_TAIL_BYTES`] of the container's stderr (its last
/// [`STDERR_TAIL_LINES`] lines, at most [`STDERR_READ_LIMIT`] bytes read).
async fn stderr_tail(docker: &Docker, name: &str) -> Vec<u8> {
    let options = LogsOptionsBuilder::default()
        .stderr(true)
        .stdout(false)
        .tail(STDERR_TAIL_LINES)
        .build();
    let mut stream = std::pin::pin!(docker.logs(name, Some(options)));
    let mut tail = Vec::new();
    let mut read = 0usize;
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdErr { message }) => {
                read = read.saturating_add(message.len());
                tail.extend_from_slice(&message);
                if tail.len() > 2 * STDERR_TAIL_BYTES {
                    tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                }
                if read >= STDERR_READ_LIMIT {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %map_error(e), "Cannot read a container's stderr.");
                break;
            }
        }
    }
    let start = tail.len().saturating_sub(STDERR_TAIL_BYTES);
    tail.split_off(start)
}

/// The end of stderr, for a failure message.
fn stderr_quote(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_MESSAGE_BYTES);
    String::from_utf8_lossy(&stderr[start..]).trim().to_string()
}

/// What a bollard error means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultKind {
    /// The daemon cannot be reached or did not answer in time.
    Unreachable,
    /// The container, image or path does not exist (404).
    NotFound,
    /// The object is in the wrong state (409: not running, removal in progress).
    Conflict,
    /// Anything else the daemon or the client reported.
    Other,
}

/// A bollard error sorted by meaning, with a message for callers.
#[derive(Debug)]
struct Fault {
    kind: FaultKind,
    message: String,
    source: Option<BollardError>,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Fault {
    fn other(message: String) -> Self {
        Fault {
            kind: FaultKind::Other,
            message,
            source: None,
        }
    }

    /// The daemon did not answer within `limit`.
    fn silent(limit: Duration) -> Self {
        Fault {
            kind: FaultKind::Unreachable,
            message: format!("the Docker daemon did not answer within {} ms", limit.as_millis()),
            source: None,
        }
    }

    fn into_failure(self, context: &str, logs: Vec<u8>) -> RunFailure {
        let code = match self.kind {
            FaultKind::Unreachable => ErrorCode::RuntimeUnavailable,
            FaultKind::NotFound | FaultKind::Conflict | FaultKind::Other => ErrorCode::Internal,
        };
        tracing::warn!(error = %self, context, "Docker call failed.");
        failure(code, format!("{context}: {}", self.message), logs)
    }

    fn into_port_error(self, context: &str) -> PortError {
        let message = format!("{context}: {}", self.message);
        let source = self.source.map(|e| Box::new(e) as faas_ports::BoxError);
        match self.kind {
            FaultKind::Unreachable | FaultKind::NotFound => PortError::Unavailable {
                component: Component::Runtime,
                message,
                source,
            },
            FaultKind::Conflict | FaultKind::Other => PortError::Internal { message, source },
        }
    }
}

/// The one translation of bollard errors.
fn map_error(error: BollardError) -> Fault {
    let (kind, message) = match &error {
        BollardError::DockerResponseServerError { status_code, message } => {
            let kind = match status_code {
                404 => FaultKind::NotFound,
                409 => FaultKind::Conflict,
                _ => FaultKind::Other,
            };
            (kind, message.clone())
        }
        BollardError::DockerStreamError { error } => (FaultKind::Other, error.clone()),
        BollardError::HyperLegacyError { .. }
        | BollardError::HyperResponseError { .. }
        | BollardError::IOError { .. }
        | BollardError::RequestTimeoutError
        | BollardError::SocketNotFoundError(_) => (FaultKind::Unreachable, error_chain(&error)),
        _ => (FaultKind::Other, error_chain(&error)),
    };
    Fault {
        kind,
        message,
        source: Some(error),
    }
}

/// An error and its sources, joined: hyper's top-level messages alone say
/// little ("client error (Connect)").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    //! Against the real Docker engine: a missing daemon or image fails the
    //! tests (never skips them). Build the image with
    //! `scripts/build-node-image.sh`, or name another with
    //! `LOWCODE_FAAS_NODE_DOCKER_IMAGE`.

    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::runtime_contract::{contract_job as job, envelope, log_messages};

    const MIB: u64 = 1024 * 1024;
    const DEFAULT_TEST_IMAGE: &str = "lowcode-faas/node:local";

    fn test_image() -> String {
        std::env::var("LOWCODE_FAAS_NODE_DOCKER_IMAGE").unwrap_or_else(|_| DEFAULT_TEST_IMAGE.to_string())
    }

    /// A config with a fresh instance id, so tests never remove each other's containers.
    fn config() -> DockerConfig {
        DockerConfig {
            image: test_image(),
            instance_id: format!("test-{}", RunId::generate()),
            prewarm_image: false,
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

    /// Polls (bounded) until no container of the run exists.
    async fn assert_no_container_eventually(run_id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = containers_labelled(RUN_ID_LABEL, run_id).await;
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "containers of {run_id} left behind: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn success_returns_the_result_envelope_logs_and_context() {
        let mut job = job(r#"
            console.log("top level");
            export async function handler(input, context) {
              console.log("a", 7);
              console.warn("%s=%d", "n", 42);
              return { ok: true, data: { input, context: { ...context }, greeting: process.env.GREETING, cwd: process.cwd() } };
            }"#);
        job.input_json = br#"{"name":"x"}"#.to_vec();
        job.env.insert("GREETING".into(), "hi".into());
        let run_id = job.run_id.to_string();

        let output = runtime().await.run(job).await.unwrap();

        assert_eq!(
            envelope(&output),
            json!({"type": "result", "value": {"ok": true, "data": {
                "input": {"name": "x"},
                "context": {
                    "runId": run_id, "executionId": run_id, "functionName": "hello",
                    "collectionPath": "a/b", "deploymentId": "a/b/hello@v2", "deploymentVersion": 2
                },
                "greeting": "hi",
                "cwd": "/workspace",
            }}})
        );
        assert_eq!(log_messages(&output.logs), ["top level", "a 7", "n=42"]);
        assert!(containers_labelled(RUN_ID_LABEL, &run_id).await.is_empty());
    }

    #[tokio::test]
    async fn process_exit_in_the_handler_is_exited_without_output() {
        let job = job(
            "export async function handler() { console.log('before exit'); process.stderr.write('bye\\n'); process.exit(3); }",
        );
        let failure = runtime().await.run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::ExitedWithoutOutput, "{}", failure.message);
        assert!(failure.message.contains("exit status: 3"), "{}", failure.message);
        assert!(failure.message.ends_with("; stderr: bye"), "{}", failure.message);
        assert_eq!(log_messages(&failure.logs), ["before exit"]);
    }

    #[tokio::test]
    async fn exceeding_the_memory_limit_is_out_of_memory() {
        let rt = runtime_with(DockerConfig {
            memory_mb: 32,
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
        assert_eq!(failure.code, ErrorCode::OutOfMemory, "{}", failure.message);
        assert_eq!(failure.message, "function ran out of memory (memory limit 32 MB)");
    }

    #[tokio::test]
    async fn output_over_the_limit_is_output_too_large() {
        let mut job = job("export async function handler() { return { ok: true, data: 'x'.repeat(200000) }; }");
        job.max_output_bytes = 1024;
        let failure = runtime().await.run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::OutputTooLarge, "{}", failure.message);
        assert!(
            failure
                .message
                .contains("(200047 bytes) is larger than the limit of 1024 bytes"),
            "{}",
            failure.message
        );
    }

    #[tokio::test]
    async fn an_endless_loop_times_out_and_leaves_no_container() {
        let mut job = job("export async function handler() { console.log('spinning'); while (true) {} }");
        job.timeout = Duration::from_secs(1);
        let run_id = job.run_id.to_string();
        let failure = runtime().await.run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::Timeout, "{}", failure.message);
        assert_eq!(failure.message, "function timed out after 1000 ms");
        assert_eq!(log_messages(&failure.logs), ["spinning"]);
        assert!(containers_labelled(RUN_ID_LABEL, &run_id).await.is_empty());
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
        assert_no_container_eventually(&run_id).await;
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
            assert!(containers_labelled(RUN_ID_LABEL, &run_id).await.is_empty());
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
        assert!(failure.message.len() > 60, "no registry message: {}", failure.message);
        assert!(containers_labelled(RUN_ID_LABEL, &run_id).await.is_empty());

        let error = rt.health().await.unwrap_err();
        assert_eq!(error.code(), "RUNTIME_UNAVAILABLE");
        assert!(
            error.to_string().contains("is not present on the Docker host"),
            "{error}"
        );
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
        let rt = DockerRuntime::with_connector(config(), nowhere).unwrap();
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
    }

    #[tokio::test]
    async fn the_environment_is_the_job_env_and_what_the_image_sets() {
        let mut job = job("export async function handler() { return { ok: true, data: process.env }; }");
        job.env.insert("USER_VAR".into(), "1 = two".into());
        let expected = job.env.clone();

        let output = runtime().await.run(job).await.unwrap();

        let env: BTreeMap<String, String> = serde_json::from_value(envelope(&output)["value"]["data"].clone()).unwrap();
        for (key, value) in &expected {
            assert_eq!(env.get(key), Some(value), "{key}");
        }
        assert_eq!(env.get(LOG_MAX_BYTES_ENV).map(String::as_str), Some("1048576"));
        // Docker itself sets HOSTNAME and HOME; the image sets PATH.
        let extra: Vec<&String> = env
            .keys()
            .filter(|k| !expected.contains_key(*k) && k.as_str() != LOG_MAX_BYTES_ENV)
            .collect();
        for key in &extra {
            assert!(
                ["PATH", "HOSTNAME", "HOME"].contains(&key.as_str()),
                "unexpected variable {key}"
            );
        }
        // The host's environment (cargo sets these for tests) stays out.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        assert!(!env.contains_key("CARGO_MANIFEST_DIR"));
    }

    #[tokio::test]
    async fn the_function_runs_as_the_configured_user() {
        let job = job(r#"
            import fs from "node:fs";
            export async function handler() {
              return { ok: true, data: [process.getuid(), process.getgid(), fs.statSync(".").uid] };
            }"#);
        let output = runtime().await.run(job).await.unwrap();
        assert_eq!(envelope(&output)["value"]["data"], json!([1000, 1000, 1000]));
    }

    #[tokio::test]
    async fn the_container_is_hardened() {
        let rt = runtime_with(DockerConfig {
            memory_mb: 64,
            cpus: 0.5,
            network: "none".into(),
            ..config()
        })
        .await;
        let job = job("export async function handler() { return { ok: true }; }");
        let docker = rt.client().unwrap();
        let name = container_name(&job.run_id);
        let mut guard = ContainerGuard::new(docker.clone(), name.clone());
        rt.create_container(&mut guard, &job).await.unwrap();
        let inspected = docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .unwrap();
        guard.remove().await;

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
        assert!(inspected.mounts.unwrap_or_default().is_empty());
        let config = inspected.config.unwrap();
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert_eq!(config.working_dir.as_deref(), Some("/workspace"));
        let labels = config.labels.unwrap();
        assert_eq!(labels.get(OWNER_LABEL), Some(&rt.config.instance_id));
        assert_eq!(labels.get(RUN_ID_LABEL).map(String::as_str), Some(job.run_id.as_str()));
        assert!(containers_labelled(RUN_ID_LABEL, job.run_id.as_str()).await.is_empty());
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
                    owner.config.instance_id.clone(),
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

        assert!(containers_labelled(OWNER_LABEL, &rt.config.instance_id)
            .await
            .is_empty());
        assert_eq!(
            containers_labelled(OWNER_LABEL, &other.config.instance_id).await.len(),
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

    #[tokio::test]
    async fn a_log_file_written_around_the_bootstrap_is_read_with_a_cap() {
        let mut job = job(r#"
            import fs from "node:fs";
            export async function handler() {
              fs.appendFileSync("logs.ndjson", '{"level":"log","message":"x"}\n'.repeat(20000));
              return { ok: true };
            }"#);
        job.max_log_bytes = 1000;
        let output = runtime().await.run(job).await.unwrap();
        assert!(output.logs.len() as u64 <= 1000 + LOG_READ_SLACK);
        assert!(output.logs.ends_with(b"\n"));
        assert!(log_messages(&output.logs).len() > 10);
    }

    #[tokio::test]
    async fn an_output_file_that_is_not_a_regular_file_is_refused() {
        let job = job(r#"
            import fs from "node:fs";
            export async function handler() { fs.symlinkSync("/etc/passwd", "output.json"); process.exit(0); }"#);
        let failure = runtime().await.run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::Internal);
        assert!(failure.message.contains("not a regular file"), "{}", failure.message);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runtime_contract_holds() {
        let rt = runtime().await;
        crate::runtime_contract::container_runtime_contract(&rt, 1000).await;
        assert!(containers_labelled(OWNER_LABEL, &rt.config.instance_id)
            .await
            .is_empty());
    }

    #[test]
    fn config_defaults_and_validation() {
        let config: DockerConfig = serde_json::from_value(json!({"instance_id": "host-8080"})).unwrap();
        assert_eq!(config.image, "node:22-alpine");
        assert_eq!((config.memory_mb, config.cpus), (256, 1.0));
        assert_eq!((config.network.as_str(), config.user.as_str()), ("bridge", "1000:1000"));
        assert!(config.prewarm_image);
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
        ];
        for config in bad {
            assert!(
                matches!(DockerRuntime::new(config.clone()), Err(AdapterError::Config(_))),
                "{config:?}"
            );
        }
    }

    #[test]
    fn a_cut_short_archive_still_yields_the_header_and_first_bytes() {
        let job = job(&"y".repeat(10_000));
        let archive = workspace_archive(&job, 1000, 1000).unwrap();
        let dir = first_file(&archive, 100).unwrap().unwrap();
        assert!(!dir.regular);
        // Skip the directory entry (one 512-byte header).
        let file = first_file(&archive[512..], 100).unwrap().unwrap();
        assert!(file.regular);
        assert_eq!(file.size, BOOTSTRAP_MJS.len() as u64);
        assert_eq!(file.data, &BOOTSTRAP_MJS.as_bytes()[..100]);
        let cut = first_file(&archive[512..1024 + 50], 100).unwrap().unwrap();
        assert_eq!(cut.size, BOOTSTRAP_MJS.len() as u64);
        assert_eq!(cut.data.len(), 50);
        assert!(first_file(&[], 100).unwrap().is_none());
        assert_eq!(container_name(&job.run_id), format!("lowcode-faas-{}", job.run_id));
    }
}
