//! Starting runners as containers, and talking to a started one over its
//! attached stdin/stdout/stderr (no bind mounts, no port in the container:
//! it works with a remote `DOCKER_HOST` and with `network=none`).
//!
//! A launch: create the container (image, `node --input-type=module -e
//! <bootstrap> -- --serve`: the bootstrap travels in the command, so nothing
//! is uploaded; no env of its own; labels; hardened host config; the
//! workspace is a size-capped tmpfs owned by the run's user; a missing image
//! is pulled within a run's deadline, never for the pool) → attach → start.
//! The caller waits for the ready frame.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, InspectContainerOptions, StartContainerOptions,
    WaitContainerOptionsBuilder,
};
use bollard::Docker;
use faas_ports::{Component, ErrorCode, PortError, RunFailure, RunId};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::daemon::{
    kill_container, map_error, missing_image_advice, pull_image, remove_logged, Fault, FaultKind, CONTROL_TIMEOUT,
};
use super::{DockerConfig, DEADLINE_LABEL, OWNER_LABEL, RUNNER_LABEL, RUN_ID_LABEL};
use crate::bootstrap::BOOTSTRAP_MJS;
use crate::runner::{Chunk, Exit, Launcher, Purpose, Runner, EXIT_TIMEOUT};

/// The workspace directory inside the container.
pub(super) const WORKSPACE: &str = "/workspace";
/// Process limit of a runner's container.
const PIDS_LIMIT: i64 = 256;
/// Bound on the health check's ping and image inspection, each.
pub(super) const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Cap of the container's own json-file log (what the bootstrap writes to
/// stderr), so a chatty function cannot fill the daemon's disk.
const CONTAINER_LOG_MAX_SIZE: &str = "1m";
/// How long after its run's deadline a cold container may be reaped by any
/// instance (its own server kills it at the deadline).
const DEADLINE_LABEL_GRACE: Duration = Duration::from_secs(60);
/// Size of the workspace tmpfs (it counts against the container's memory).
const WORKSPACE_TMPFS_MB: u64 = 64;

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, BollardError>> + Send>>;
type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// The daemon connection, made on first use (the socket may appear after
/// start-up).
pub(super) struct Client {
    connect: fn() -> Result<Docker, BollardError>,
    docker: Mutex<Option<Docker>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    pub(super) fn new(connect: fn() -> Result<Docker, BollardError>, docker: Option<Docker>) -> Self {
        Self {
            connect,
            docker: Mutex::new(docker),
        }
    }

    pub(super) fn get(&self) -> Result<Docker, Fault> {
        let mut slot = self.docker.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(docker) = slot.as_ref() {
            return Ok(docker.clone());
        }
        let docker = (self.connect)().map_err(map_error)?;
        *slot = Some(docker.clone());
        Ok(docker)
    }
}

/// Starts runner containers.
#[derive(Debug)]
pub(super) struct DockerLauncher {
    pub(super) config: DockerConfig,
    pub(super) uid: u64,
    pub(super) gid: u64,
    pub(super) client: Arc<Client>,
    /// Removals of containers whose launch was cut short, still under way.
    pub(super) cleanups: Arc<Cleanups>,
}

/// Counts the clean-ups [`ContainerGuard`] runs in the background, so that
/// shutdown can wait for them: a launch cut short while the daemon was
/// still creating its container removes it only once the create settled,
/// which can be after the run answered.
#[derive(Debug, Default)]
pub(super) struct Cleanups {
    pending: std::sync::atomic::AtomicUsize,
    settled: tokio::sync::Notify,
}

impl Cleanups {
    fn start(self: &Arc<Self>) -> CleanupTicket {
        self.pending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        CleanupTicket(Arc::clone(self))
    }

    /// Waits (at most `limit`) until no clean-up is under way.
    pub(super) async fn settled(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            // Registered before the check, so a wake-up in between is not lost.
            let notified = self.settled.notified();
            if self.pending.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(
                    "Container clean-ups still under way at shutdown; the owner label removes what is left."
                );
                return;
            }
        }
    }
}

/// One clean-up under way; done when dropped.
struct CleanupTicket(Arc<Cleanups>);

impl Drop for CleanupTicket {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.settled.notify_waiters();
    }
}

impl DockerLauncher {
    /// The container definition of a runner: image, command, labels and the
    /// hardened host config. No env: each job brings its own.
    pub(super) fn container_body(&self, name: &str, run: Option<(&RunId, Duration)>) -> ContainerCreateBody {
        let mut labels = HashMap::from([
            (OWNER_LABEL.to_string(), self.config.instance_id.clone()),
            (RUNNER_LABEL.to_string(), name.to_string()),
        ]);
        if let Some((run_id, timeout)) = run {
            labels.insert(RUN_ID_LABEL.to_string(), run_id.to_string());
            // When a reaper may remove it even if its owner still runs.
            let deadline = SystemTime::now() + timeout + DEADLINE_LABEL_GRACE;
            let secs = deadline.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            labels.insert(DEADLINE_LABEL.to_string(), secs.to_string());
        }
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
            // A tiny init (docker-init) as PID 1: node gets the signals a
            // process outside PID 1 gets (its own watchdog's SIGKILL), and
            // zombies are reaped.
            init: Some(true),
            tmpfs: Some(HashMap::from([(
                WORKSPACE.to_string(),
                format!(
                    "rw,nosuid,nodev,size={WORKSPACE_TMPFS_MB}m,uid={},gid={},mode=0700",
                    self.uid, self.gid
                ),
            )])),
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
            cmd: Some(vec![
                "node".into(),
                "--input-type=module".into(),
                "-e".into(),
                BOOTSTRAP_MJS.into(),
                "--".into(),
                "--serve".into(),
                // Every process but init and the runner belongs to the job:
                // the runner kills them after each job (warm runners).
                "--own-container".into(),
                format!("--max-idle-ms={}", self.config.execution.runner_max_idle().as_millis()),
            ]),
            working_dir: Some(WORKSPACE.into()),
            user: Some(self.config.user.clone()),
            labels: Some(labels),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            // Our one attach is the only writer: when it goes (the runner
            // dropped, its server gone), the daemon closes the container's
            // stdin and an idle bootstrap ends at once.
            stdin_once: Some(true),
            tty: Some(false),
            host_config: Some(host_config),
            ..ContainerCreateBody::default()
        }
    }

    async fn image_present(&self, docker: &Docker) -> Result<bool, RunFailure> {
        match docker.inspect_image(&self.config.image).await {
            Ok(_) => Ok(true),
            Err(e) => match map_error(e) {
                fault if fault.kind == FaultKind::NotFound => Ok(false),
                fault => Err(fault.into_failure("cannot inspect the image")),
            },
        }
    }

    /// Pulls the missing image before the run's deadline.
    async fn pull_within(&self, docker: &Docker, timeout: Duration, deadline: Instant) -> Result<(), RunFailure> {
        let image = self.config.image.as_str();
        tracing::info!(image, "The node image is missing; pulling it.");
        let pull = async {
            let credentials = self.config.registry_auth.credentials_for(image).await;
            pull_image(docker, image, credentials).await
        };
        match tokio::time::timeout_at(deadline, pull).await {
            Ok(Ok(())) => {
                tracing::info!(image, "Pulled the node image.");
                Ok(())
            }
            Ok(Err(fault)) if fault.kind == FaultKind::Unreachable => Err(fault.into_failure("cannot pull the image")),
            Ok(Err(fault)) => {
                tracing::warn!(image, error = %fault, "Pulling the node image failed.");
                Err(RunFailure::new(
                    ErrorCode::ImageUnavailable,
                    format!(
                        "cannot pull the image {image}: {}; {}",
                        fault.message,
                        missing_image_advice(image)
                    ),
                    Vec::new(),
                ))
            }
            Err(_) => Err(RunFailure::new(
                ErrorCode::Timeout,
                format!(
                    "function timed out after {} ms while the image {image} was being pulled",
                    timeout.as_millis()
                ),
                Vec::new(),
            )),
        }
    }

    /// Creates the container under the guard's name, pulling a missing
    /// image first when the purpose allows.
    async fn create(
        &self,
        docker: &Docker,
        guard: &mut ContainerGuard,
        purpose: Purpose<'_>,
        deadline: Instant,
    ) -> Result<(), RunFailure> {
        let run = match purpose {
            Purpose::Run(job) => Some((&job.run_id, job.timeout)),
            Purpose::Pool => None,
        };
        let body = self.container_body(&guard.name, run);
        match guard.create(body.clone()).await {
            Ok(_) => Ok(()),
            Err(fault) if fault.kind == FaultKind::NotFound => {
                if self.image_present(docker).await? {
                    return Err(fault.into_failure("cannot create the container"));
                }
                let Purpose::Run(job) = purpose else {
                    let image = &self.config.image;
                    return Err(RunFailure::new(
                        ErrorCode::ImageUnavailable,
                        format!(
                            "the node image {image} is not present on the Docker host; {}",
                            missing_image_advice(image)
                        ),
                        Vec::new(),
                    ));
                };
                self.pull_within(docker, job.timeout, deadline).await?;
                guard
                    .create(body)
                    .await
                    .map(|_| ())
                    .map_err(|f| f.into_failure("cannot create the container"))
            }
            Err(fault) => Err(fault.into_failure("cannot create the container")),
        }
    }
}

#[async_trait]
impl Launcher for DockerLauncher {
    async fn launch(&self, purpose: Purpose<'_>, deadline: Instant) -> Result<Box<dyn Runner>, RunFailure> {
        let docker = self
            .client
            .get()
            .map_err(|f| f.into_failure("cannot reach the Docker daemon"))?;
        let name = match purpose {
            Purpose::Run(job) => container_name(job.run_id.as_str()),
            Purpose::Pool => container_name(RunId::generate().as_str().replacen("run-", "runner-", 1).as_str()),
        };
        let started = Instant::now();
        let mut guard = ContainerGuard::new(docker.clone(), name, Arc::clone(&self.cleanups));
        self.create(&docker, &mut guard, purpose, deadline).await?;
        let created = started.elapsed();
        let name = guard.name.clone();
        let options = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        let attached = docker
            .attach_container(&name, Some(options))
            .await
            .map_err(|e| map_error(e).into_failure("cannot attach to the container"))?;
        let attached_at = started.elapsed();
        docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .map_err(|e| map_error(e).into_failure("cannot start the container"))?;
        guard.armed = false;
        tracing::debug!(
            container = %name,
            create_ms = created.as_secs_f64() * 1e3,
            attach_ms = (attached_at - created).as_secs_f64() * 1e3,
            start_ms = (started.elapsed() - attached_at).as_secs_f64() * 1e3,
            "Runner container started."
        );
        Ok(Box::new(DockerRunner {
            docker,
            name,
            output: attached.output,
            input: attached.input,
            stash: VecDeque::new(),
            ended: false,
            killed: false,
            armed: true,
        }))
    }

    fn memory_mb(&self) -> u64 {
        self.config.memory_mb
    }

    async fn health(&self) -> Result<(), PortError> {
        let docker = self
            .client
            .get()
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
                        "it is being pulled in the background; otherwise "
                    } else {
                        ""
                    };
                    format!(
                        "the node image {image} is not present on the Docker host; {prewarm}{}",
                        missing_image_advice(image)
                    )
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

/// A started runner container, attached.
pub(super) struct DockerRunner {
    docker: Docker,
    name: String,
    output: Output,
    input: Input,
    stash: VecDeque<Chunk>,
    ended: bool,
    /// This process killed it: an exit 137 is then its own doing, not the
    /// OOM killer's, and [`oom_flag`] does not wait for a flag.
    killed: bool,
    armed: bool,
}

impl fmt::Debug for DockerRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerRunner")
            .field("name", &self.name)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

fn chunk_of(item: Option<Result<LogOutput, BollardError>>) -> Option<Option<Chunk>> {
    match item {
        Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
            Some(Some(Chunk::Stdout(message.to_vec())))
        }
        Some(Ok(LogOutput::StdErr { message })) => Some(Some(Chunk::Stderr(message.to_vec()))),
        // Our own stdin echoed: nothing to read.
        Some(Ok(LogOutput::StdIn { .. })) => None,
        Some(Err(e)) => {
            tracing::debug!(error = %map_error(e), "The attach stream of a runner failed.");
            Some(None)
        }
        None => Some(None),
    }
}

#[async_trait]
impl Runner for DockerRunner {
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.input.write_all(bytes).await?;
        self.input.flush().await
    }

    async fn recv(&mut self) -> Option<Chunk> {
        if let Some(chunk) = self.stash.pop_front() {
            return Some(chunk);
        }
        if self.ended {
            return None;
        }
        loop {
            match chunk_of(self.output.next().await) {
                None => continue,
                Some(Some(chunk)) => return Some(chunk),
                Some(None) => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }

    fn stash(&mut self) -> &mut VecDeque<Chunk> {
        &mut self.stash
    }

    fn has_ended(&mut self) -> bool {
        self.ended
    }

    async fn exit(&mut self) -> Exit {
        let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
        let waited = tokio::time::timeout(EXIT_TIMEOUT, async {
            let mut waiting = std::pin::pin!(self.docker.wait_container(&self.name, Some(options)));
            match waiting.next().await {
                Some(Ok(response)) => Some(response.status_code),
                // bollard reports a non-zero exit as an error.
                Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Some(code),
                _ => None,
            }
        })
        .await
        .ok()
        .flatten();
        let docker = &self.docker;
        let name = self.name.as_str();
        let killer = if self.killed { Killer::Us } else { Killer::Unknown };
        let oom_killed = oom_flag(waited, killer, OOM_FLAG_WAIT, OOM_FLAG_POLL, |budget| async move {
            match tokio::time::timeout(budget, docker.inspect_container(name, None::<InspectContainerOptions>)).await {
                Ok(Ok(inspected)) => inspected.state.and_then(|s| s.oom_killed),
                _ => None,
            }
        })
        .await;
        Exit {
            status: waited.map_or_else(
                || "exit status unknown".to_string(),
                |code| format!("exit status: {code}"),
            ),
            oom_killed,
        }
    }

    async fn kill(&mut self) {
        self.killed = true;
        kill_container(&self.docker, &self.name).await;
    }

    async fn destroy(mut self: Box<Self>) {
        self.armed = false;
        remove_logged(&self.docker, &self.name).await;
    }
}

/// How long [`oom_flag`] keeps asking for the OOM flag of a container that
/// was killed by SIGKILL (exit 137).
const OOM_FLAG_WAIT: Duration = Duration::from_secs(2);
/// Pause between two of those questions.
const OOM_FLAG_POLL: Duration = Duration::from_millis(50);
/// The exit status of a process killed by SIGKILL, which is how the kernel's
/// OOM killer ends one.
const SIGKILL_EXIT: i64 = 128 + 9;

/// Whether the daemon says the kernel's OOM killer ended the container.
///
/// The daemon learns of a container's exit and of its OOM kill from two
/// separate events that can arrive in either order: under load the exit is
/// often reported (and `wait` returns) before `OOMKilled` is set. So when
/// the container died of SIGKILL (exit 137, what the OOM killer sends) and
/// the flag is not set yet, this asks again for up to `wait` before it
/// decides "not OOM". Any other exit, or one this process caused by
/// killing the container, is answered from the first inspect (bounded by
/// [`EXIT_TIMEOUT`]); the later ones share what is left of `wait`, so the
/// whole wait after the first inspect never passes `wait`.
async fn oom_flag<F, Fut>(
    exit_code: Option<i64>,
    killer: Killer,
    wait: Duration,
    poll: Duration,
    mut inspect: F,
) -> bool
where
    F: FnMut(Duration) -> Fut,
    Fut: std::future::Future<Output = Option<bool>>,
{
    if inspect(EXIT_TIMEOUT).await == Some(true) {
        return true;
    }
    if exit_code != Some(SIGKILL_EXIT) || killer == Killer::Us {
        return false;
    }
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < poll {
            return false;
        }
        tokio::time::sleep(poll).await;
        let budget = deadline.saturating_duration_since(Instant::now());
        if inspect(budget).await == Some(true) {
            return true;
        }
    }
}

/// Who ended a container, as far as this process knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killer {
    /// This process killed it (a timeout, a broken stream).
    Us,
    /// It ended by itself, or something else killed it.
    Unknown,
}

impl Drop for DockerRunner {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let docker = self.docker.clone();
        let name = std::mem::take(&mut self.name);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { remove_logged(&docker, &name).await });
            }
            Err(_) => {
                tracing::warn!(container = %name, "A dropped runner left its container; it goes at the next start-up.")
            }
        }
    }
}

/// A container's name from a run or runner id: unique, and findable by a
/// dropped launch.
pub(super) fn container_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(100)
        .collect();
    format!("lowcode-faas-{safe}")
}

/// Removes a container whose launch did not finish, also when the launch's
/// future is dropped (then from a task spawned on the current runtime).
///
/// The create request runs on a task of its own ([`ContainerGuard::create`]),
/// so a launch cut short by its deadline or a drop still learns whether the
/// daemon made the container, and removes it only after the create settled:
/// a removal can never overtake the creation. The owner label catches what
/// escapes even this (a crash), at the next start-up.
#[derive(Debug)]
pub(super) struct ContainerGuard {
    docker: Docker,
    /// The container's name, known before it is created.
    pub(super) name: String,
    /// The create request, while it has not answered.
    pending_create: Option<tokio::task::JoinHandle<Result<String, Fault>>>,
    /// Where the clean-up of a dropped launch is counted.
    cleanups: Arc<Cleanups>,
    pub(super) armed: bool,
}

impl ContainerGuard {
    pub(super) fn new(docker: Docker, name: String, cleanups: Arc<Cleanups>) -> Self {
        Self {
            docker,
            name,
            pending_create: None,
            cleanups,
            armed: true,
        }
    }

    /// Creates the container named `self.name`; its id.
    pub(super) async fn create(&mut self, body: ContainerCreateBody) -> Result<String, Fault> {
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
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let docker = self.docker.clone();
        let name = std::mem::take(&mut self.name);
        let pending = self.pending_create.take();
        let ticket = self.cleanups.start();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let _ticket = ticket;
                    if let Some(task) = pending {
                        if tokio::time::timeout(CONTROL_TIMEOUT, task).await.is_err() {
                            tracing::warn!(container = %name, "An interrupted container creation did not settle in time.");
                        }
                    }
                    remove_logged(&docker, &name).await;
                });
            }
            Err(_) => {
                tracing::warn!(container = %name, "A dropped launch left its container; it goes at the next start-up.")
            }
        }
    }
}

#[cfg(test)]
mod oom_flag_tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    /// Answers "not set" for the first `late` inspects, then `flag`;
    /// records the budget each inspect was given.
    fn daemon<'a>(
        late: usize,
        flag: bool,
        budgets: &'a RefCell<Vec<Duration>>,
    ) -> impl FnMut(Duration) -> std::future::Ready<Option<bool>> + 'a {
        let asked = Cell::new(0);
        move |budget| {
            budgets.borrow_mut().push(budget);
            asked.set(asked.get() + 1);
            std::future::ready(Some(asked.get() > late && flag))
        }
    }

    async fn ask(code: Option<i64>, killer: Killer, late: usize, flag: bool) -> (bool, Vec<Duration>) {
        let budgets = RefCell::new(Vec::new());
        let oom = oom_flag(code, killer, OOM_FLAG_WAIT, OOM_FLAG_POLL, daemon(late, flag, &budgets)).await;
        (oom, budgets.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn a_sigkilled_container_waits_for_a_late_oom_flag() {
        let (oom, budgets) = ask(Some(137), Killer::Unknown, 3, true).await;
        assert!(oom, "the flag set after the exit was reported is seen");
        assert_eq!(budgets.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sigkilled_container_without_the_flag_is_not_oom_once_the_wait_is_over() {
        let started = Instant::now();
        let (oom, budgets) = ask(Some(137), Killer::Unknown, 0, false).await;
        assert!(!oom);
        assert!(started.elapsed() <= OOM_FLAG_WAIT, "the wait is bounded");
        assert!(budgets.len() > 1, "asked again while waiting");
        assert_eq!(budgets[0], EXIT_TIMEOUT, "the first inspect has its usual bound");
        assert!(
            budgets[1..].iter().all(|b| *b <= OOM_FLAG_WAIT),
            "later inspects only get what is left of the wait: {budgets:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_exits_and_our_own_kills_are_answered_from_one_inspect() {
        for (code, killer) in [
            (Some(0), Killer::Unknown),
            (Some(1), Killer::Unknown),
            (None, Killer::Unknown),
            (Some(137), Killer::Us),
        ] {
            let (oom, budgets) = ask(code, killer, 1, true).await;
            assert!(!oom, "exit {code:?} by {killer:?}");
            assert_eq!(budgets.len(), 1, "exit {code:?} by {killer:?}");
        }
        assert!(
            ask(Some(1), Killer::Unknown, 0, true).await.0,
            "a flag set at once counts"
        );
        assert!(ask(Some(137), Killer::Us, 0, true).await.0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_inspect_is_not_oom() {
        let oom = oom_flag(Some(137), Killer::Unknown, OOM_FLAG_WAIT, OOM_FLAG_POLL, |_| {
            std::future::ready(None)
        })
        .await;
        assert!(!oom);
    }
}
