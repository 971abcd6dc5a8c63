//! Starting runners as `node` processes and talking to one over its pipes.

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

use super::{node_health, sanitize};
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
}

#[async_trait]
impl Launcher for ProcessLauncher {
    async fn launch(&self, purpose: Purpose<'_>, _deadline: Instant) -> Result<Box<dyn Runner>, RunFailure> {
        let prefix = match purpose {
            Purpose::Run(job) => format!("lowcode-faas-{}-", sanitize(job.run_id.as_str())),
            Purpose::Pool => "lowcode-faas-runner-".to_string(),
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
        let mut child = Command::new(&self.node_bin)
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
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
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

    async fn kill(&mut self) {
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
        // process still in the group. The workspace goes with `dir`.
        self.kill_group();
    }
}
