//! Starting runners as `node` processes and talking to one over its pipes,
//! and ending every process a run started ([`super::tree`]).

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{ErrorCode, PortError, RunFailure};
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

use super::tree::kill_descendants;
use super::{node_health, sanitize, workspace_prefix};
use crate::bootstrap::{BOOTSTRAP_FILE, BOOTSTRAP_MJS};
use crate::runner::{Chunk, Exit, Launcher, Purpose, Runner, EXIT_TIMEOUT};

/// Bound on reaping a killed process and on draining its pipes after it exited.
const AFTER_EXIT_GRACE: Duration = Duration::from_secs(5);
/// Bytes read from a pipe at once.
const READ_CHUNK: usize = 64 * 1024;

/// Starts `node bootstrap.mjs --serve` processes.
#[derive(Debug)]
pub(super) struct ProcessLauncher {
    pub(super) node_bin: PathBuf,
    pub(super) memory_mb: u64,
    /// `--max-idle-ms` of every runner.
    pub(super) max_idle: Duration,
    /// Bound on one sweep of a runner's descendants.
    pub(super) sweep_limit: Duration,
}

#[async_trait]
impl Launcher for ProcessLauncher {
    async fn launch(&self, purpose: Purpose<'_>, _deadline: Instant) -> Result<Box<dyn Runner>, RunFailure> {
        let prefix = match purpose {
            Purpose::Run(job) => format!("{}{}-", workspace_prefix(), sanitize(job.run_id.as_str())),
            Purpose::Pool => format!("{}runner-", workspace_prefix()),
        };
        let dir = tokio::task::spawn_blocking(move || prepare_workspace(&prefix))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(|e| {
                RunFailure::new(
                    ErrorCode::Internal,
                    format!("cannot prepare the runner's workspace: {e}"),
                    Vec::new(),
                )
            })?;
        let mut command = Command::new(&self.node_bin);
        command
            .arg(format!("--max-old-space-size={}", self.memory_mb))
            .arg(BOOTSTRAP_FILE)
            .arg("--serve")
            .arg(format!("--max-idle-ms={}", self.max_idle.as_millis()))
            .current_dir(dir.path())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        become_subreaper(&mut command);
        let mut child = command.spawn().map_err(|e| {
            RunFailure::new(
                ErrorCode::RuntimeUnavailable,
                format!("cannot start node ({}): {e}", self.node_bin.display()),
                Vec::new(),
            )
        })?;
        let group = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        Ok(Box::new(ProcessRunner {
            child,
            group,
            stdin,
            stdout,
            stderr,
            dir: Some(dir),
            sweep_limit: self.sweep_limit,
            stash: VecDeque::new(),
            status: None,
            drain_until: None,
            ended: false,
        }))
    }

    fn memory_mb(&self) -> u64 {
        self.memory_mb
    }

    async fn health(&self) -> Result<(), PortError> {
        node_health(&self.node_bin).await
    }
}

/// Makes the runner a child subreaper (`PR_SET_CHILD_SUBREAPER`) between
/// fork and exec (the attribute survives `exec`): a descendant whose parent
/// dies is reparented to the runner instead of PID 1, so the sweep of
/// [`super::tree`] finds every process of the run, `detached` and `setsid`
/// ones included.
#[allow(unsafe_code)]
fn become_subreaper(command: &mut Command) {
    // SAFETY: the hook runs in the forked child before `exec`; it makes one
    // prctl(2) system call (async-signal-safe), allocates nothing and
    // touches no lock or shared state of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_child_subreaper(true).map_err(|errno| io::Error::from_raw_os_error(errno as i32))
        });
    }
}

fn prepare_workspace(prefix: &str) -> io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    std::fs::write(dir.path().join(BOOTSTRAP_FILE), BOOTSTRAP_MJS)?;
    Ok(dir)
}

/// A started `node` runner. Field order is drop order: the child (and with
/// it, in `Drop`, its group) goes before the workspace.
#[derive(Debug)]
pub(super) struct ProcessRunner {
    child: Child,
    group: Option<Pid>,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    dir: Option<tempfile::TempDir>,
    sweep_limit: Duration,
    stash: VecDeque<Chunk>,
    /// Set once the leader exited.
    status: Option<ExitStatus>,
    /// After the leader exited: the pipes are read until then at most.
    drain_until: Option<Instant>,
    ended: bool,
}

/// Reads from a pipe that may be closed already (then never ready).
async fn read_from<R: AsyncRead + Unpin>(pipe: Option<&mut R>, buf: &mut [u8]) -> io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

impl ProcessRunner {
    /// SIGKILLs the whole process group, once it is known.
    /// Once the leader is reaped and its group killed, the group id is
    /// forgotten: it could be reused by an unrelated group.
    fn kill_group(&mut self) {
        if let Some(pgid) = self.group {
            match killpg(pgid, Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => tracing::warn!(pgid = pgid.as_raw(), error = %e, "Cannot kill a runner's process group."),
            }
            if self.status.is_some() {
                self.group = None;
            }
        }
    }

    /// The leader while its pid is still ours (running, or exited but not
    /// reaped): only then may its descendants be looked up by parent links.
    fn unreaped_leader(&self) -> Option<Pid> {
        self.group.filter(|_| self.status.is_none())
    }

    /// Ends every descendant of the leader (not the leader), off the async
    /// threads; bounded by `sweep_limit`. False when some may be
    /// left (the sweep hit its bound or did not run).
    async fn sweep_descendants(&self) -> bool {
        let Some(leader) = self.unreaped_leader() else {
            return true;
        };
        let limit = self.sweep_limit;
        match tokio::task::spawn_blocking(move || kill_descendants(leader, limit)).await {
            Ok(swept) => {
                if swept.killed > 0 {
                    tracing::debug!(killed = swept.killed, "Ended the processes a run left.");
                }
                swept.left == 0
            }
            Err(e) => {
                tracing::warn!(error = %e, "The process sweep did not run.");
                false
            }
        }
    }

    /// SIGSTOPs the leader so that it starts nothing while its descendants
    /// are swept; the SIGKILL of its group follows.
    fn stop_leader(&self) {
        if let Some(leader) = self.unreaped_leader() {
            match nix::sys::signal::kill(leader, Signal::SIGSTOP) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => tracing::warn!(pid = leader.as_raw(), error = %e, "Cannot stop a runner."),
            }
        }
    }
}

#[async_trait]
impl Runner for ProcessRunner {
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the runner's stdin is closed",
            ));
        };
        stdin.write_all(bytes).await?;
        stdin.flush().await
    }

    async fn recv(&mut self) -> Option<Chunk> {
        if let Some(chunk) = self.stash.pop_front() {
            return Some(chunk);
        }
        let mut out = vec![0u8; READ_CHUNK];
        let mut err = vec![0u8; READ_CHUNK];
        loop {
            if self.ended || (self.stdout.is_none() && self.stderr.is_none()) {
                self.ended = true;
                return None;
            }
            let drain_until = self.drain_until;
            let exited = self.status.is_some();
            tokio::select! {
                biased;
                read = read_from(self.stdout.as_mut(), &mut out) => match read {
                    Ok(n) if n > 0 => return Some(Chunk::Stdout(out[..n].to_vec())),
                    _ => self.stdout = None,
                },
                read = read_from(self.stderr.as_mut(), &mut err) => match read {
                    Ok(n) if n > 0 => return Some(Chunk::Stderr(err[..n].to_vec())),
                    _ => self.stderr = None,
                },
                waited = self.child.wait(), if !exited => {
                    self.status = waited.ok();
                    if self.status.is_none() {
                        self.ended = true;
                    }
                    // Nothing of the group may outlive its leader: this
                    // also closes pipes a grandchild inherited.
                    self.kill_group();
                    self.drain_until = Some(Instant::now() + AFTER_EXIT_GRACE);
                }
                () = async {
                    match drain_until {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.stdout = None;
                    self.stderr = None;
                }
            }
        }
    }

    fn stash(&mut self) -> &mut VecDeque<Chunk> {
        &mut self.stash
    }

    fn has_ended(&mut self) -> bool {
        if self.ended || self.status.is_some() {
            return true;
        }
        match self.child.try_wait() {
            Ok(None) => false,
            Ok(Some(status)) => {
                // Reaped now: keep the status (and forget the group id).
                self.status = Some(status);
                true
            }
            Err(_) => true,
        }
    }

    async fn exit(&mut self) -> Exit {
        if self.status.is_none() {
            self.status = tokio::time::timeout(EXIT_TIMEOUT, self.child.wait())
                .await
                .ok()
                .and_then(Result::ok);
        }
        Exit {
            status: self
                .status
                .map_or_else(|| "exit status unknown".to_string(), |status| status.to_string()),
            oom_killed: false,
        }
    }

    async fn end_job(&mut self) -> bool {
        // The runner stays (warm mode) or is destroyed next: either way
        // nothing the job started may outlive it. Not stopped meanwhile (a
        // server killed then would leave it stopped for good): what it
        // starts during the sweep is found by the next pass.
        self.sweep_descendants().await
    }

    async fn kill(&mut self) {
        self.stop_leader();
        // Whatever is left past the sweep's bound gets the group's SIGKILL
        // at least.
        let _ = self.sweep_descendants().await;
        self.kill_group();
        if self.status.is_none() {
            // Reap the SIGKILLed leader (bounded; tokio reaps orphans otherwise).
            self.status = tokio::time::timeout(AFTER_EXIT_GRACE, self.child.wait())
                .await
                .ok()
                .and_then(Result::ok);
        }
        if self.status.is_some() {
            self.group = None;
        }
    }

    async fn destroy(mut self: Box<Self>) {
        self.kill().await;
        self.stdin = None;
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            match tokio::task::spawn_blocking(move || dir.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(path = %path.display(), error = %e, "Cannot remove a runner workspace."),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "Removing a runner workspace panicked."),
            }
        }
    }
}

impl Drop for ProcessRunner {
    fn drop(&mut self) {
        // tokio's kill_on_drop reaches only the leader; this reaches every
        // process the run started, in the group or not. The workspace goes
        // with `dir`.
        self.stop_leader();
        if let Some(leader) = self.unreaped_leader() {
            kill_descendants(leader, self.sweep_limit);
        }
        self.kill_group();
    }
}
