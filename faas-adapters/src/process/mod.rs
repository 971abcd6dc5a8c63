//! `ContainerRuntime` that runs jobs in local `node` processes
//! (`LOWCODE_FAAS_RUNTIME=process`), for development and CI without Docker.
//!
//! Every process is a runner: `node bootstrap.mjs --serve` in a fresh temp
//! workspace, taking jobs over its stdin and answering with frames on its
//! stdout ([`crate::runner`]); the execution modes are the Docker runtime's
//! ([`ExecutionConfig`]).
//!
//! **Not an isolation boundary**: the function runs as the service's user
//! and sees the host file system and network. What is isolated: the
//! environment (cleared, then exactly the job's env) and the lifetime of
//! the processes a run starts (below).
//!
//! Invariants:
//! - a runner is a child subreaper leading its own process group, so every
//!   process a run starts stays its descendant, `detached: true` and
//!   `setsid` double forks included;
//! - after every job (success, failure, timeout; warm mode included) every
//!   descendant of the runner is SIGKILLed before the run answers
//!   (the `tree` module); a runner that is not kept is SIGSTOPped, swept, then
//!   SIGKILLed with its group: at the deadline, when destroyed, when its
//!   leader exits, and when dropped;
//! - a runner that exits by itself (`process.exit()` in a handler, an idle
//!   exit) SIGKILLs its descendants first (`bootstrap.mjs`, the `exit`
//!   event). Not covered: the descendants of a runner killed outright (V8
//!   out of memory, a crash, its own deadline watchdog once the server is
//!   gone) are reparented by the kernel before anything can sweep them;
//!   processes started through another service (`systemd-run`, cron, a
//!   Docker daemon) are not the run's;
//! - its workspace is removed with it; a workspace is named after the
//!   server's pid, and workspaces of servers that are gone (a `kill -9`) are
//!   removed at start-up ([`sweep_stale_workspaces`]);
//! - stdin, stdout and stderr are pipes; reads are bounded as in
//!   [`crate::runner`].

mod runner;
#[cfg(test)]
mod tests;
mod tree;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use faas_ports::{Component, PortError};
use serde::Deserialize;
use tokio::process::Command;

use crate::runner::pool::Pool;
use crate::runner::{ExecutionConfig, Launcher};
use crate::AdapterError;
use runner::ProcessLauncher;

/// Bound on `node --version` in the health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the process runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ProcessRuntimeConfig {
    /// The `node` binary: a path, or a bare name looked up in the host's
    /// `PATH` once at construction (the run itself gets no `PATH`).
    pub node_bin: PathBuf,
    /// V8 old-space limit, passed as `--max-old-space-size` (MiB).
    pub memory_mb: u64,
    /// Execution mode and pool sizes.
    pub execution: ExecutionConfig,
}

impl Default for ProcessRuntimeConfig {
    fn default() -> Self {
        Self {
            node_bin: PathBuf::from("node"),
            memory_mb: 256,
            execution: ExecutionConfig::default(),
        }
    }
}

/// Runs jobs in `node` processes (see the module docs).
#[derive(Debug)]
pub struct ProcessRuntime {
    launcher: Arc<ProcessLauncher>,
    pool: Pool,
}

impl ProcessRuntime {
    /// Checks the settings, removes the workspaces of servers that are gone
    /// ([`sweep_stale_workspaces`] over the temp directory) and resolves
    /// the `node` binary. A binary that is
    /// not found is not an error here: runs then fail with
    /// `RUNTIME_UNAVAILABLE` and [`faas_ports::ContainerRuntime::health`] reports it.
    pub fn new(config: ProcessRuntimeConfig) -> Result<Self, AdapterError> {
        Self::build(config, tree::SWEEP_TIME_LIMIT)
    }

    /// [`Self::new`] with the bound of one sweep of a runner's descendants
    /// (tests: a zero bound leaves every descendant to the group kill).
    fn build(config: ProcessRuntimeConfig, sweep_limit: Duration) -> Result<Self, AdapterError> {
        if config.node_bin.as_os_str().is_empty() {
            return Err(AdapterError::Config("node_bin must not be empty".into()));
        }
        if config.memory_mb == 0 {
            return Err(AdapterError::Config("memory_mb must be at least 1".into()));
        }
        config.execution.validate()?;
        let removed = sweep_stale_workspaces(&std::env::temp_dir());
        if removed > 0 {
            tracing::info!(removed, "Removed runner workspaces left by a server that is gone.");
        }
        let node_bin = resolve_program(&config.node_bin);
        tracing::warn!(
            node = %node_bin.display(),
            "The process runtime is not an isolation boundary: functions run as this user with host file system and network access. Use it for development and CI only."
        );
        let launcher = Arc::new(ProcessLauncher {
            node_bin,
            memory_mb: config.memory_mb,
            max_idle: config.execution.runner_max_idle(),
            sweep_limit,
        });
        let pool = Pool::new(Arc::clone(&launcher) as Arc<dyn Launcher>, config.execution);
        Ok(Self { launcher, pool })
    }

    /// Starts filling the pool of prewarmed processes in the background
    /// (no-op in `cold` mode; the first run does it too).
    pub fn start_pool(&self) {
        self.pool.start();
    }

    /// Ends every idle pool process and waits (bounded) for removals under way.
    pub async fn shutdown(&self) {
        self.pool.shutdown().await;
    }
}

crate::runner::pooled_container_runtime!(ProcessRuntime);

/// `node --version` answers.
async fn node_health(node_bin: &Path) -> Result<(), PortError> {
    let unavailable = |message: String, source: Option<faas_ports::BoxError>| PortError::Unavailable {
        component: Component::Runtime,
        message,
        source,
    };
    let mut cmd = Command::new(node_bin);
    cmd.arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let node = node_bin.display();
    match tokio::time::timeout(HEALTH_TIMEOUT, cmd.status()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(unavailable(format!("{node} --version failed ({status})"), None)),
        Ok(Err(e)) => Err(unavailable(format!("cannot start {node}"), Some(Box::new(e)))),
        Err(_) => Err(unavailable(
            format!(
                "{node} --version did not answer within {} ms",
                HEALTH_TIMEOUT.as_millis()
            ),
            None,
        )),
    }
}

/// A bare program name (`node`) resolved against the host `PATH`: the run's
/// environment is cleared, so the lookup must not depend on it. Anything
/// else, or a name not found, is returned as given.
fn resolve_program(program: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bare = program.components().count() == 1 && !program.is_absolute();
    if !bare {
        return program.to_path_buf();
    }
    let Some(paths) = std::env::var_os("PATH") else {
        return program.to_path_buf();
    };
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .unwrap_or_else(|| program.to_path_buf())
}

/// Keeps `[A-Za-z0-9-]` of a run id for use in a directory name.
fn sanitize(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

/// Names of runner workspaces start with this, then the owning server's pid
/// and `-`.
const WORKSPACE_MARK: &str = "lowcode-faas-w";

/// The name prefix of this server's runner workspaces: `lowcode-faas-w<pid>-`.
fn workspace_prefix() -> String {
    format!("{WORKSPACE_MARK}{}-", std::process::id())
}

/// Directory entries the workspace sweep looks at most.
const SWEEP_MAX_ENTRIES: usize = 100_000;

/// Removes the runner workspaces (`lowcode-faas-w<pid>-…` directories)
/// directly under `temp_dir` whose server is gone: no process has that pid
/// any more (a reused pid keeps its workspaces: the sweep errs on the side
/// of keeping). Returns how many went; problems are logged and skipped, the
/// sweep never fails a start. Blocking.
pub fn sweep_stale_workspaces(temp_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(temp_dir) else {
        return 0;
    };
    let own = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten().take(SWEEP_MAX_ENTRIES) {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(workspace_owner) else {
            continue;
        };
        // `file_type` does not follow symlinks: only real directories go.
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if !is_dir || owner == own || Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(path = %entry.path().display(), error = %e, "Cannot remove a stale runner workspace.")
            }
        }
    }
    removed
}

/// The server pid in a workspace name `lowcode-faas-w<pid>-…`.
fn workspace_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(WORKSPACE_MARK)?;
    let (pid, _) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}
