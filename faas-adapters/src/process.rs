//! `ContainerRuntime` that runs `node bootstrap.mjs` as a local process
//! (SPEC §6, `LOWCODE_FAAS_RUNTIME=process`), for development and CI
//! without Docker.
//!
//! **Not an isolation boundary**: the function runs as the service's user,
//! sees the host file system and network, and a process that leaves its
//! process group (`setsid`, `detached: true`) escapes the kill. Only the
//! environment is isolated (cleared, then exactly the job's env).
//!
//! Invariants:
//! - every run gets a fresh temp workspace (`bootstrap.mjs`, `function.mjs`,
//!   `input.json`), removed in every outcome;
//! - the child leads its own process group; the whole group gets SIGKILL at
//!   the deadline, after a normal exit (stray grandchildren), and when the
//!   run's future is dropped (a guard that kills the group on drop);
//! - reads are bounded: `output.json` by `max_output_bytes` (size checked
//!   before reading), `logs.ndjson` by `max_log_bytes` + 4 KiB, stderr by
//!   its last 64 KiB; stdout is discarded.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{Component, ContainerRuntime, ErrorCode, PortError, RunFailure, RunJob, RunOutput};
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::bootstrap::{
    BOOTSTRAP_FILE, BOOTSTRAP_MJS, FUNCTION_FILE, INPUT_FILE, LOG_FILE, LOG_MAX_BYTES_ENV, OUTPUT_FILE,
};
use crate::AdapterError;

/// Bytes of stderr kept for diagnostics (OOM detection, failure messages).
const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// Bytes of the stderr tail quoted in a failure message.
const STDERR_MESSAGE_BYTES: usize = 2048;
/// Slack over `max_log_bytes` when reading the log file back: room for the
/// bootstrap's final "log truncated" entry.
const LOG_READ_SLACK: u64 = 4096;
/// Bound on reaping a child after SIGKILL and on draining stderr after exit.
const AFTER_KILL_GRACE: Duration = Duration::from_secs(5);
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
}

impl Default for ProcessRuntimeConfig {
    fn default() -> Self {
        Self {
            node_bin: PathBuf::from("node"),
            memory_mb: 256,
        }
    }
}

/// Runs each job as `node bootstrap.mjs` in a temp workspace (see the module docs).
#[derive(Debug)]
pub struct ProcessRuntime {
    /// `config.node_bin`, resolved against the host `PATH` when it is a bare name.
    node_bin: PathBuf,
    memory_mb: u64,
}

impl ProcessRuntime {
    /// Checks the settings and resolves the `node` binary. A binary that is
    /// not found is not an error here: runs then fail with
    /// `RUNTIME_UNAVAILABLE` and [`ContainerRuntime::health`] reports it.
    pub fn new(config: ProcessRuntimeConfig) -> Result<Self, AdapterError> {
        if config.node_bin.as_os_str().is_empty() {
            return Err(AdapterError::Config("node_bin must not be empty".into()));
        }
        if config.memory_mb == 0 {
            return Err(AdapterError::Config("memory_mb must be at least 1".into()));
        }
        let node_bin = resolve_program(&config.node_bin);
        tracing::warn!(
            node = %node_bin.display(),
            "The process runtime is not an isolation boundary: functions run as this user with host file system and network access. Use it for development and CI only."
        );
        Ok(Self {
            node_bin,
            memory_mb: config.memory_mb,
        })
    }

    fn command(&self, workspace: &Path, job: &RunJob) -> Command {
        let mut cmd = Command::new(&self.node_bin);
        cmd.arg(format!("--max-old-space-size={}", self.memory_mb))
            .arg(BOOTSTRAP_FILE)
            .current_dir(workspace)
            .env_clear()
            .envs(&job.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // The bootstrap's log cap follows the job's unless the env sets it.
        if !job.env.contains_key(LOG_MAX_BYTES_ENV) {
            cmd.env(LOG_MAX_BYTES_ENV, job.max_log_bytes.to_string());
        }
        cmd
    }

    /// Starts the process and waits for it; the workspace is `scope.dir`.
    async fn execute(&self, scope: &mut RunScope, job: &RunJob) -> Result<RunOutput, RunFailure> {
        let workspace = scope.path().to_path_buf();
        let mut child = self.command(&workspace, job).spawn().map_err(|e| {
            failure(
                ErrorCode::RuntimeUnavailable,
                format!("cannot start node ({}): {e}", self.node_bin.display()),
                Vec::new(),
            )
        })?;
        let pgid = match child.id().and_then(|id| i32::try_from(id).ok()) {
            Some(id) => Pid::from_raw(id),
            None => {
                // Cannot happen for a just-spawned child; kill_on_drop covers it.
                return Err(failure(
                    ErrorCode::Internal,
                    "spawned node has no pid".into(),
                    Vec::new(),
                ));
            }
        };
        scope.group.arm(pgid);

        let tail = Arc::new(Mutex::new(StderrTail::default()));
        let drain = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(drain_stderr(stderr, Arc::clone(&tail))));

        let waited = tokio::time::timeout(job.timeout, child.wait()).await.ok();

        // Whatever happened, nothing of the group may outlive this point.
        scope.group.kill();
        let status = match waited {
            Some(Ok(status)) => status,
            Some(Err(e)) => {
                let logs = read_logs(&workspace, job.max_log_bytes).await;
                return Err(failure(
                    ErrorCode::Internal,
                    format!("waiting for node failed: {e}"),
                    logs,
                ));
            }
            None => {
                // Reap the SIGKILLed leader (bounded; tokio reaps orphans otherwise).
                let _ = tokio::time::timeout(AFTER_KILL_GRACE, child.wait()).await;
                if let Some(task) = drain {
                    task.abort();
                }
                let logs = read_logs(&workspace, job.max_log_bytes).await;
                tracing::info!(
                    timeout_ms = job.timeout.as_millis(),
                    "Run timed out; process group killed."
                );
                return Err(failure(
                    ErrorCode::Timeout,
                    format!("function timed out after {} ms", job.timeout.as_millis()),
                    logs,
                ));
            }
        };

        // The group is dead, so stderr reaches EOF; bounded in case a process
        // that left the group still holds the pipe.
        if let Some(task) = drain {
            let abort = task.abort_handle();
            if tokio::time::timeout(AFTER_KILL_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
        let stderr = tail.lock().unwrap_or_else(PoisonError::into_inner).bytes().to_vec();
        self.judge(&workspace, job, status, &stderr).await
    }

    /// Turns what an exited process left in its workspace into the outcome.
    async fn judge(
        &self,
        workspace: &Path,
        job: &RunJob,
        status: ExitStatus,
        stderr: &[u8],
    ) -> Result<RunOutput, RunFailure> {
        let dir = workspace.to_path_buf();
        let (max_output, max_log) = (job.max_output_bytes, job.max_log_bytes);
        let collected = tokio::task::spawn_blocking(move || collect(&dir, max_output, max_log))
            .await
            .map_err(|e| {
                failure(
                    ErrorCode::Internal,
                    format!("reading the run's workspace failed: {e}"),
                    Vec::new(),
                )
            })?;
        let Collected { output, logs } = collected;
        let logs = match logs {
            Ok(logs) => logs,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the function log.");
                Vec::new()
            }
        };
        match output {
            Ok(Output::Present(output_json)) => Ok(RunOutput { output_json, logs }),
            Ok(Output::TooLarge(size)) => Err(failure(
                ErrorCode::OutputTooLarge,
                format!(
                    "function output ({size} bytes) is larger than the limit of {} bytes",
                    job.max_output_bytes
                ),
                logs,
            )),
            Ok(Output::Missing) => {
                let stderr_text = String::from_utf8_lossy(stderr);
                if crate::bootstrap::NODE_OOM_MARKERS
                    .iter()
                    .any(|m| stderr_text.contains(m))
                {
                    return Err(failure(
                        ErrorCode::OutOfMemory,
                        format!("function ran out of memory (memory limit {} MB)", self.memory_mb),
                        logs,
                    ));
                }
                tracing::debug!(%status, stderr = %stderr_text, "Run ended without output.json.");
                let mut message = format!("function exited without writing a result ({status})");
                let quoted = stderr_quote(stderr);
                if !quoted.is_empty() {
                    message.push_str("; stderr: ");
                    message.push_str(&quoted);
                }
                Err(failure(ErrorCode::ExitedWithoutOutput, message, logs))
            }
            Err(e) => Err(failure(
                ErrorCode::Internal,
                format!("cannot read output.json: {e}"),
                logs,
            )),
        }
    }
}

#[async_trait]
impl ContainerRuntime for ProcessRuntime {
    #[tracing::instrument(skip_all, fields(run_id = %job.run_id, function = %job.function_id, deployment = %job.deployment_id))]
    async fn run(&self, mut job: RunJob) -> Result<RunOutput, RunFailure> {
        let source = std::mem::take(&mut job.source_code);
        let input = std::mem::take(&mut job.input_json);
        let prefix = format!("lowcode-faas-{}-", sanitize(job.run_id.as_str()));
        let dir = tokio::task::spawn_blocking(move || prepare_workspace(&prefix, &source, &input))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(|e| {
                failure(
                    ErrorCode::Internal,
                    format!("cannot prepare the run's workspace: {e}"),
                    Vec::new(),
                )
            })?;
        let mut scope = RunScope {
            group: GroupGuard::default(),
            dir: Some(dir),
        };
        let outcome = self.execute(&mut scope, &job).await;
        scope.close().await;
        outcome
    }

    async fn health(&self) -> Result<(), PortError> {
        let unavailable = |message: String, source: Option<faas_ports::BoxError>| PortError::Unavailable {
            component: Component::Runtime,
            message,
            source,
        };
        let mut cmd = Command::new(&self.node_bin);
        cmd.arg("--version")
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let node = self.node_bin.display();
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
}

fn failure(code: ErrorCode, message: String, logs: Vec<u8>) -> RunFailure {
    RunFailure { code, message, logs }
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

fn prepare_workspace(prefix: &str, source: &str, input: &[u8]) -> io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    std::fs::write(dir.path().join(BOOTSTRAP_FILE), BOOTSTRAP_MJS)?;
    std::fs::write(dir.path().join(FUNCTION_FILE), source)?;
    std::fs::write(dir.path().join(INPUT_FILE), input)?;
    Ok(dir)
}

/// Everything one run owns. Field order is drop order: the process group is
/// killed before the workspace is removed, also when the future is dropped.
#[derive(Debug)]
struct RunScope {
    group: GroupGuard,
    dir: Option<tempfile::TempDir>,
}

impl RunScope {
    fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// Kills what is left and removes the workspace off the async threads.
    async fn close(mut self) {
        self.group.kill();
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            match tokio::task::spawn_blocking(move || dir.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "Cannot remove a run workspace.")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "Removing a run workspace panicked.")
                }
            }
        }
    }
}

/// SIGKILLs a process group once: on [`GroupGuard::kill`] or on drop.
///
/// tokio's `kill_on_drop` reaches only the direct child; this reaches every
/// process still in the group (handlers may spawn children).
#[derive(Debug, Default)]
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn arm(&mut self, pgid: Pid) {
        self.pgid = Some(pgid);
    }

    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            match killpg(pgid, Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => {
                    tracing::warn!(pgid = pgid.as_raw(), error = %e, "Cannot kill a run's process group.")
                }
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last [`STDERR_TAIL_BYTES`] bytes of a stream.
#[derive(Debug, Default)]
struct StderrTail {
    buf: Vec<u8>,
}

impl StderrTail {
    fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > 2 * STDERR_TAIL_BYTES {
            let cut = self.buf.len() - STDERR_TAIL_BYTES;
            self.buf.drain(..cut);
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.buf.len().saturating_sub(STDERR_TAIL_BYTES)..]
    }
}

async fn drain_stderr(mut stderr: impl AsyncRead + Unpin, tail: Arc<Mutex<StderrTail>>) {
    let mut chunk = [0u8; 8192];
    loop {
        match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => tail.lock().unwrap_or_else(PoisonError::into_inner).push(&chunk[..n]),
        }
    }
}

/// The end of stderr, for a failure message.
fn stderr_quote(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_MESSAGE_BYTES);
    String::from_utf8_lossy(&stderr[start..]).trim().to_string()
}

enum Output {
    Missing,
    TooLarge(u64),
    Present(Vec<u8>),
}

struct Collected {
    output: io::Result<Output>,
    logs: io::Result<Vec<u8>>,
}

fn collect(dir: &Path, max_output_bytes: u64, max_log_bytes: u64) -> Collected {
    Collected {
        output: read_output(&dir.join(OUTPUT_FILE), max_output_bytes),
        logs: read_log_file(&dir.join(LOG_FILE), max_log_bytes),
    }
}

/// Opens a regular file of the workspace; `None` when it does not exist.
/// Symlinks, FIFOs and the like are refused so a function cannot make the
/// runtime read elsewhere or block.
fn open_regular(path: &Path) -> io::Result<Option<(File, u64)>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(Some((File::open(path)?, meta.len())))
}

fn read_output(path: &Path, max_bytes: u64) -> io::Result<Output> {
    let Some((file, size)) = open_regular(path)? else {
        return Ok(Output::Missing);
    };
    if size > max_bytes {
        return Ok(Output::TooLarge(size));
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // One byte more than allowed tells a file that grew since the check.
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut buf)?;
    let read = u64::try_from(buf.len()).unwrap_or(u64::MAX);
    if read > max_bytes {
        return Ok(Output::TooLarge(read));
    }
    Ok(Output::Present(buf))
}

/// Reads the captured log with a cap of `max_log_bytes` + slack; a read that
/// hits the cap is cut back to its last complete line.
fn read_log_file(path: &Path, max_log_bytes: u64) -> io::Result<Vec<u8>> {
    if max_log_bytes == 0 {
        // Logs are not wanted (capture is off).
        return Ok(Vec::new());
    }
    let Some((file, _)) = open_regular(path)? else {
        return Ok(Vec::new());
    };
    let cap = max_log_bytes.saturating_add(LOG_READ_SLACK);
    let mut buf = Vec::new();
    file.take(cap).read_to_end(&mut buf)?;
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) >= cap {
        let keep = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        buf.truncate(keep);
    }
    Ok(buf)
}

/// Logs of a run that ended without being judged (timeout, wait failure).
async fn read_logs(workspace: &Path, max_log_bytes: u64) -> Vec<u8> {
    let path = workspace.join(LOG_FILE);
    match tokio::task::spawn_blocking(move || read_log_file(&path, max_log_bytes)).await {
        Ok(Ok(logs)) => logs,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Cannot read the function log.");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, "Reading the function log panicked.");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::runtime_contract::{contract_job as job, envelope, log_messages};

    fn runtime() -> ProcessRuntime {
        ProcessRuntime::new(ProcessRuntimeConfig::default()).unwrap()
    }

    fn log_entries(logs: &[u8]) -> Vec<Value> {
        std::str::from_utf8(logs)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Waits (bounded) until `pid` no longer runs: gone, or a zombie nobody
    /// reaps. SIGKILL takes effect asynchronously, so this polls /proc.
    async fn assert_dead(pid: i64) {
        let stat = format!("/proc/{pid}/stat");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let state = match std::fs::read_to_string(&stat) {
                Err(_) => return,
                Ok(text) => text.rsplit(')').next().unwrap_or("").trim().chars().next(),
            };
            if matches!(state, Some('Z' | 'X')) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "process {pid} still alive (state {state:?})"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
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

        let output = runtime().run(job).await.unwrap();

        let env = envelope(&output);
        let cwd = env["value"]["data"]["cwd"].as_str().unwrap().to_string();
        assert_eq!(
            env,
            json!({"type": "result", "value": {"ok": true, "data": {
                "input": {"name": "x"},
                "context": {
                    "runId": run_id, "executionId": run_id, "functionName": "hello",
                    "collectionPath": "a/b", "deploymentId": "a/b/hello@v2", "deploymentVersion": 2
                },
                "greeting": "hi",
                "cwd": cwd,
            }}})
        );
        let entries = log_entries(&output.logs);
        let levels: Vec<_> = entries.iter().map(|e| e["level"].as_str().unwrap()).collect();
        assert_eq!(levels, ["log", "log", "warn"]);
        assert_eq!(log_messages(&output.logs), ["top level", "a 7", "n=42"]);
        assert!(!Path::new(&cwd).exists(), "workspace {cwd} was not removed");
    }

    #[tokio::test]
    async fn the_environment_is_exactly_the_job_env() {
        let mut job =
            job("export async function handler() { return { ok: true, data: Object.keys(process.env).sort() }; }");
        job.env.insert("USER_VAR".into(), "1".into());
        let mut expected: Vec<String> = job.env.keys().cloned().collect();
        expected.push(LOG_MAX_BYTES_ENV.to_string());
        expected.sort();

        let output = runtime().run(job).await.unwrap();

        let keys: Vec<String> = serde_json::from_value(envelope(&output)["value"]["data"].clone()).unwrap();
        assert_eq!(keys, expected);
        assert!(!keys.iter().any(|k| k == "PATH" || k == "HOME"));
    }

    #[tokio::test]
    async fn the_job_env_may_set_the_log_cap_itself() {
        let mut job = job("export async function handler() { return { ok: true, data: process.env.LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES }; }");
        job.env.insert(LOG_MAX_BYTES_ENV.into(), "777".into());
        let output = runtime().run(job).await.unwrap();
        assert_eq!(envelope(&output)["value"]["data"], "777");
    }

    #[tokio::test]
    async fn process_exit_in_the_handler_is_exited_without_output() {
        let job = job("export async function handler() { console.log('before exit'); process.exit(3); }");
        let failure = runtime().run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::ExitedWithoutOutput, "{}", failure.message);
        assert!(failure.message.contains("exit status: 3"), "{}", failure.message);
        assert_eq!(log_messages(&failure.logs), ["before exit"]);
    }

    #[tokio::test]
    async fn heap_exhaustion_is_out_of_memory() {
        let rt = ProcessRuntime::new(ProcessRuntimeConfig {
            memory_mb: 32,
            ..ProcessRuntimeConfig::default()
        })
        .unwrap();
        let job = job(r#"
            export async function handler() {
              console.log("allocating");
              const keep = [];
              while (true) keep.push(new Array(100000).fill(1.5));
            }"#);
        let failure = rt.run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::OutOfMemory, "{}", failure.message);
        assert_eq!(failure.message, "function ran out of memory (memory limit 32 MB)");
        assert_eq!(log_messages(&failure.logs), ["allocating"]);
    }

    #[tokio::test]
    async fn output_over_the_limit_is_output_too_large() {
        let mut job = job("export async function handler() { return { ok: true, data: 'x'.repeat(4096) }; }");
        job.max_output_bytes = 1024;
        let failure = runtime().run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::OutputTooLarge, "{}", failure.message);
        assert!(failure.message.contains("limit of 1024 bytes"), "{}", failure.message);
    }

    #[tokio::test]
    async fn an_endless_loop_times_out() {
        let mut job = job("export async function handler() { while (true) {} }");
        job.timeout = Duration::from_millis(500);
        let failure = runtime().run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::Timeout);
        assert_eq!(failure.message, "function timed out after 500 ms");
    }

    /// The grandchild is spawned at module load, before the handler spins;
    /// the deadline leaves node ample time to get there.
    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group_and_removes_the_workspace() {
        let mut job = job(r#"
            import { spawn } from "node:child_process";
            const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
            console.log(JSON.stringify({ pid: process.pid, child: child.pid, cwd: process.cwd() }));
            export async function handler() { while (true) {} }"#);
        job.timeout = Duration::from_secs(3);

        let failure = runtime().run(job).await.unwrap_err();

        assert_eq!(failure.code, ErrorCode::Timeout);
        assert_eq!(failure.message, "function timed out after 3000 ms");
        let messages = log_messages(&failure.logs);
        assert_eq!(messages.len(), 1, "{messages:?}");
        let report: Value = serde_json::from_str(&messages[0]).unwrap();
        assert_dead(report["pid"].as_i64().unwrap()).await;
        assert_dead(report["child"].as_i64().unwrap()).await;
        assert!(!Path::new(report["cwd"].as_str().unwrap()).exists());
    }

    #[tokio::test]
    async fn grandchildren_do_not_survive_a_normal_exit() {
        // stdio "inherit": the grandchild also holds the stderr pipe.
        let job = job(r#"
            import { spawn } from "node:child_process";
            export async function handler() {
              const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "inherit" });
              return { ok: true, data: child.pid };
            }"#);
        let output = runtime().run(job).await.unwrap();
        assert_dead(envelope(&output)["value"]["data"].as_i64().unwrap()).await;
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_group_and_removes_the_workspace() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut job = job(r#"
            import net from "node:net";
            import { spawn } from "node:child_process";
            export async function handler() {
              const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
              const report = JSON.stringify({ pid: process.pid, child: child.pid, cwd: process.cwd() });
              const socket = net.connect(Number(process.env.REPORT_PORT), "127.0.0.1", () => socket.end(report));
              return new Promise(() => setInterval(() => {}, 1000));
            }"#);
        job.env
            .insert("REPORT_PORT".into(), listener.local_addr().unwrap().port().to_string());
        let rt = runtime();
        // Boxed so that `drop` really drops the future (a pinned stack
        // future would live to the end of the scope).
        let mut run = Box::pin(rt.run(job));

        let report = tokio::select! {
            outcome = &mut run => panic!("the run ended before reporting: {outcome:?}"),
            accepted = listener.accept() => {
                let (mut socket, _) = accepted.unwrap();
                let mut text = String::new();
                socket.read_to_string(&mut text).await.unwrap();
                text
            }
        };
        drop(run);

        let report: Value = serde_json::from_str(&report).unwrap();
        assert!(!Path::new(report["cwd"].as_str().unwrap()).exists());
        assert_dead(report["pid"].as_i64().unwrap()).await;
        assert_dead(report["child"].as_i64().unwrap()).await;
    }

    #[tokio::test]
    async fn the_log_cap_follows_the_job() {
        let mut job = job("export async function handler() { for (let i = 0; i < 100; i++) console.log('entry', i); return { ok: true }; }");
        job.max_log_bytes = 400;
        let output = runtime().run(job).await.unwrap();
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
        let output = runtime().run(job).await.unwrap();
        assert!(output.logs.len() as u64 <= 1000 + LOG_READ_SLACK);
        assert!(output.logs.ends_with(b"\n"));
        assert!(log_entries(&output.logs).len() > 10);
    }

    #[tokio::test]
    async fn an_output_file_that_is_not_a_regular_file_is_refused() {
        let job = job(r#"
            import fs from "node:fs";
            export async function handler() { fs.symlinkSync("/etc/hostname", "output.json"); process.exit(0); }"#);
        let failure = runtime().run(job).await.unwrap_err();
        assert_eq!(failure.code, ErrorCode::Internal);
        assert!(failure.message.contains("not a regular file"), "{}", failure.message);
    }

    #[tokio::test]
    async fn a_missing_node_is_runtime_unavailable() {
        let rt = ProcessRuntime::new(ProcessRuntimeConfig {
            node_bin: PathBuf::from("/nonexistent/lowcode-faas/node"),
            ..ProcessRuntimeConfig::default()
        })
        .unwrap();
        let failure = rt
            .run(job("export const handler = () => ({ ok: true });"))
            .await
            .unwrap_err();
        assert_eq!(failure.code, ErrorCode::RuntimeUnavailable);
        let error = rt.health().await.unwrap_err();
        assert_eq!(error.code(), "RUNTIME_UNAVAILABLE");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runtime_contract_holds() {
        use std::os::unix::fs::MetadataExt;
        // The process runtime runs functions as the service's own user.
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        crate::runtime_contract::container_runtime_contract(&runtime(), uid).await;
    }

    #[tokio::test]
    async fn health_answers_when_node_runs() {
        runtime().health().await.unwrap();
    }

    #[test]
    fn config_defaults_and_validation() {
        let config: ProcessRuntimeConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(config.node_bin, PathBuf::from("node"));
        assert_eq!(config.memory_mb, 256);
        let config: ProcessRuntimeConfig = serde_json::from_value(json!({"memory_mb": 64})).unwrap();
        assert_eq!(config.memory_mb, 64);
        let zero = ProcessRuntimeConfig {
            memory_mb: 0,
            ..ProcessRuntimeConfig::default()
        };
        assert!(matches!(ProcessRuntime::new(zero), Err(AdapterError::Config(_))));
        let empty = ProcessRuntimeConfig {
            node_bin: PathBuf::new(),
            ..ProcessRuntimeConfig::default()
        };
        assert!(matches!(ProcessRuntime::new(empty), Err(AdapterError::Config(_))));
    }

    #[test]
    fn a_bare_program_name_is_resolved_on_the_host_path() {
        let resolved = resolve_program(Path::new("node"));
        assert!(resolved.is_absolute(), "{}", resolved.display());
        assert_eq!(resolve_program(Path::new("./node")), PathBuf::from("./node"));
    }

    #[test]
    fn the_stderr_tail_keeps_the_end() {
        let mut tail = StderrTail::default();
        for i in 0..100u8 {
            tail.push(&[i; 4096]);
        }
        assert_eq!(tail.bytes().len(), STDERR_TAIL_BYTES);
        assert!(tail.bytes().ends_with(&[99; 4096]));
        assert_eq!(sanitize("run-0190/../x"), "run-0190x");
    }
}
