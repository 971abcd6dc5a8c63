//! What the two runtimes share: the runner abstraction (a started container
//! or `node` process speaking the stdio protocol of `bootstrap.mjs --serve`),
//! one job's exchange with a runner, the failure messages both runtimes
//! give, and the pool of prewarmed and warm runners (`pool`, private).
//!
//! A runtime provides a `Launcher` (how to start a generic runner, with no
//! user code, and what a started one is); everything after that is here, so
//! both runtimes behave the same in every execution mode.
//!
//! Invariants:
//! - a runner serves one job at a time; a job's frames carry its nonce
//!   (an HMAC of the job's random challenge under the runner's own key,
//!   `protocol`), so neither user output, nor a late write of an earlier
//!   job, nor code that read the job line is ever taken for the current
//!   job's result;
//! - every read is bounded: frame lines by the job's output and log limits
//!   plus `protocol::FRAME_SLACK`, collected logs by `max_log_bytes` plus
//!   `LOG_READ_SLACK`, stderr by its last `STDERR_TAIL_BYTES`;
//! - every wait is bounded by the run's deadline or a fixed grace period;
//! - a runner that timed out, ran out of memory, ended, or broke the
//!   protocol is destroyed, never reused.

pub(crate) mod pool;
pub(crate) mod protocol;
#[cfg(test)]
pub(crate) mod testing;

/// Implements `ContainerRuntime` for a runtime type with a `pool: Pool` (the
/// runs) and a `launcher` (the health check): both runtimes are the same
/// over their launcher.
macro_rules! pooled_container_runtime {
    ($runtime:ty) => {
        #[async_trait::async_trait]
        impl faas_ports::ContainerRuntime for $runtime {
            #[tracing::instrument(
                        skip_all,
                        fields(run_id = %job.run_id, function = %job.function_id, deployment = %job.deployment_id)
                    )]
            async fn run(&self, job: faas_ports::RunJob) -> Result<faas_ports::RunOutput, faas_ports::RunFailure> {
                self.pool.run(job).await
            }

            async fn health(&self) -> Result<(), faas_ports::PortError> {
                $crate::runner::Launcher::health(&*self.launcher).await
            }

            fn status(&self) -> faas_ports::RuntimeStatus {
                self.pool.status()
            }
        }
    };
}
pub(crate) use pooled_container_runtime;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{ErrorCode, PortError, RunFailure, RunJob, RunOutput, StartKind};
use serde::Deserialize;
use tokio::time::Instant;

use crate::bootstrap::{LOG_MAX_BYTES_ENV, NODE_OOM_MARKERS};
use crate::AdapterError;
use protocol::{Frame, FrameAuth, LineSplitter, RunnerKey, FRAME_SLACK};

/// Bytes of stderr kept per job for diagnostics (OOM detection, failure messages).
pub(crate) const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// Bytes of the stderr tail quoted in a failure message.
const STDERR_MESSAGE_BYTES: usize = 2048;
/// Slack over `max_log_bytes` for collected logs: room for the bootstrap's
/// final "log truncated" entry.
pub(crate) const LOG_READ_SLACK: u64 = 4096;
/// Bound on a runner saying it is ready once started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on learning why a runner ended.
pub(crate) const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Stray bytes an idle runner may write before it is judged broken.
pub(crate) const IDLE_STRAY_LIMIT: usize = 1024 * 1024;

/// How runs get their runner (`LOWCODE_FAAS_EXECUTION_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    /// A runner started for each run, destroyed after it.
    Cold,
    /// Runs take a started generic runner from a pool (a cold start when the
    /// pool is empty); each runner serves one run and is destroyed after it.
    #[default]
    Prewarm,
    /// As `prewarm`, and after a clean run the runner stays, specialised for
    /// its deployment and env, for later runs of exactly that key.
    Warm,
}

impl ExecutionMode {
    /// The setting's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Cold => "cold",
            ExecutionMode::Prewarm => "prewarm",
            ExecutionMode::Warm => "warm",
        }
    }

    /// Parses `cold`, `prewarm` or `warm` (any case).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "cold" => Some(Self::Cold),
            "prewarm" => Some(Self::Prewarm),
            "warm" => Some(Self::Warm),
            _ => None,
        }
    }
}

/// Settings of the execution modes, shared by both runtimes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ExecutionConfig {
    /// `LOWCODE_FAAS_EXECUTION_MODE`.
    pub mode: ExecutionMode,
    /// Generic runners kept started (`LOWCODE_FAAS_PREWARM_POOL_SIZE`; 0: none).
    pub prewarm_pool_size: usize,
    /// An idle warm runner is removed after this (`LOWCODE_FAAS_WARM_IDLE_TTL_MS`;
    /// deserialized from `warm_idle_ttl_ms`, in ms).
    #[serde(rename = "warm_idle_ttl_ms", deserialize_with = "duration_from_ms")]
    pub warm_idle_ttl: Duration,
    /// Warm runners in total, idle or serving a run
    /// (`LOWCODE_FAAS_WARM_MAX_CONTAINERS`).
    pub warm_max_containers: usize,
    /// Warm runners per deployment + env, idle or serving a run
    /// (`LOWCODE_FAAS_WARM_MAX_PER_KEY`).
    pub warm_max_per_key: usize,
}

/// How long a prewarmed runner waits in the pool before it is replaced by
/// a fresh one (runners end themselves a little later, see
/// [`ExecutionConfig::runner_max_idle`]).
pub const PREWARM_MAX_IDLE: Duration = Duration::from_secs(15 * 60);

/// The largest pool or warm cap accepted.
pub const MAX_POOL_RUNNERS: usize = 1024;
/// The shortest idle TTL accepted.
pub const MIN_WARM_IDLE_TTL: Duration = Duration::from_millis(100);
/// The longest idle TTL accepted (a day).
pub const MAX_WARM_IDLE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A duration given in milliseconds, as the settings write it.
fn duration_from_ms<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            mode: ExecutionMode::Prewarm,
            prewarm_pool_size: 4,
            warm_idle_ttl: Duration::from_secs(60),
            warm_max_containers: 16,
            warm_max_per_key: 8,
        }
    }
}

impl ExecutionConfig {
    /// How long a runner waits for a job before it ends itself
    /// (`--max-idle-ms`): longer than any idle time the pool gives it (the
    /// warm TTL, 15 minutes in the prewarm pool) plus a minute, so only a
    /// runner whose server is gone gets there.
    pub fn runner_max_idle(&self) -> Duration {
        self.warm_idle_ttl
            .max(PREWARM_MAX_IDLE)
            .saturating_add(Duration::from_secs(60))
    }

    /// Checks the ranges; each message names its `LOWCODE_FAAS_*` variable.
    pub fn validate(&self) -> Result<(), AdapterError> {
        let bad = |m: String| Err(AdapterError::Config(m));
        if self.prewarm_pool_size > MAX_POOL_RUNNERS {
            return bad(format!(
                "LOWCODE_FAAS_PREWARM_POOL_SIZE must be at most {MAX_POOL_RUNNERS}, got {}",
                self.prewarm_pool_size
            ));
        }
        if !(MIN_WARM_IDLE_TTL..=MAX_WARM_IDLE_TTL).contains(&self.warm_idle_ttl) {
            return bad(format!(
                "LOWCODE_FAAS_WARM_IDLE_TTL_MS must be between {} and {}, got {}",
                MIN_WARM_IDLE_TTL.as_millis(),
                MAX_WARM_IDLE_TTL.as_millis(),
                self.warm_idle_ttl.as_millis()
            ));
        }
        if !(1..=MAX_POOL_RUNNERS).contains(&self.warm_max_containers) {
            return bad(format!(
                "LOWCODE_FAAS_WARM_MAX_CONTAINERS must be between 1 and {MAX_POOL_RUNNERS}, got {}",
                self.warm_max_containers
            ));
        }
        if self.warm_max_per_key == 0 || self.warm_max_per_key > self.warm_max_containers {
            return bad(format!(
                "LOWCODE_FAAS_WARM_MAX_PER_KEY must be between 1 and LOWCODE_FAAS_WARM_MAX_CONTAINERS ({}), got {}",
                self.warm_max_containers, self.warm_max_per_key
            ));
        }
        Ok(())
    }
}

/// A piece of a runner's output.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// From stdout: frames, and stray bytes that are not.
    Stdout(Vec<u8>),
    /// From stderr.
    Stderr(Vec<u8>),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Stdout(bytes) | Chunk::Stderr(bytes) => bytes.len(),
        }
    }
}

/// Whether an idle runner can still take a job.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Running and waiting.
    Alive,
    /// Ended, or broken: never hand it a job.
    Gone,
}

/// How a runner ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exit {
    /// `exit status: N`, or what is known instead.
    pub(crate) status: String,
    /// The kernel's OOM killer ended it (containers).
    pub(crate) oom_killed: bool,
}

/// A started runner (container or process) running `bootstrap.mjs --serve`.
///
/// Dropping one kills and removes it (in the background where that needs
/// I/O); [`Runner::destroy`] does the same and waits.
#[async_trait]
pub(crate) trait Runner: Send + fmt::Debug + 'static {
    /// Writes to the runner's stdin.
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// The next piece of output; `None` once the runner ended.
    async fn recv(&mut self) -> Option<Chunk>;
    /// Output received but not handed out yet ([`Runner::recv`] returns it first).
    fn stash(&mut self) -> &mut VecDeque<Chunk>;
    /// True once the runner is known to have ended (without waiting).
    fn has_ended(&mut self) -> bool;
    /// Without waiting: whether an idle runner is still usable. Output it
    /// wrote meanwhile is kept for the next [`Runner::recv`].
    fn check_idle(&mut self) -> Liveness {
        if self.has_ended() {
            return Liveness::Gone;
        }
        // `recv` returns the stash first: take it out while polling.
        let mut stash = std::mem::take(self.stash());
        let liveness = drain_idle(&mut stash, || futures_util::FutureExt::now_or_never(self.recv()));
        *self.stash() = stash;
        liveness
    }
    /// After each job that reached its runner, whatever its outcome: ends
    /// what the job left running beside the runner (the process runtime's
    /// sweep of the runner's descendants; nothing for containers, whose
    /// processes go with the container). Bounded. False when something may
    /// be left: the runner must not serve another job.
    async fn end_job(&mut self) -> bool {
        true
    }
    /// Why it ended, once [`Runner::recv`] said so (bounded).
    async fn exit(&mut self) -> Exit;
    /// Stops it now (SIGKILL), bounded.
    async fn kill(&mut self);
    /// Kills and removes it (bounded), waiting for that.
    async fn destroy(self: Box<Self>);
}

/// Why a runner is being started.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose<'a> {
    /// For this run (a cold start): it may pull a missing image within the
    /// run's deadline and carries the run's labels.
    Run(&'a RunJob),
    /// For the pool: no pull, no run labels.
    Pool,
}

/// How a runtime starts its runners.
#[async_trait]
pub(crate) trait Launcher: Send + Sync + fmt::Debug + 'static {
    /// Starts a generic runner (no user code) before `deadline`. The caller
    /// waits for its ready frame.
    async fn launch(&self, purpose: Purpose<'_>, deadline: Instant) -> Result<Box<dyn Runner>, RunFailure>;
    /// The memory limit named in `OUT_OF_MEMORY` messages, MiB.
    fn memory_mb(&self) -> u64;
    /// Whether runs can start (daemon reachable, image present, `node` found).
    async fn health(&self) -> Result<(), PortError>;
}

/// A runner that read its key and said it is ready: what the pool keeps
/// and hands out.
#[derive(Debug)]
pub(crate) struct Started {
    /// The runner.
    pub(crate) runner: Box<dyn Runner>,
    /// The key of its job nonces (sent to it once, at start).
    pub(crate) key: RunnerKey,
}

impl Started {
    /// Kills and removes the runner (bounded), waiting for that.
    pub(crate) async fn destroy(self) {
        self.runner.destroy().await;
    }
}

/// `now + timeout`, or a far deadline when that overflows.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// The run's complete env as the bootstrap applies it: the job's env, plus
/// the log cap unless the env sets one.
pub(crate) fn run_env(job: &RunJob) -> BTreeMap<String, String> {
    let mut env = job.env.clone();
    env.entry(LOG_MAX_BYTES_ENV.to_string())
        .or_insert_with(|| job.max_log_bytes.to_string());
    env
}

/// Starts a runner, sends it its key and waits for its ready frame;
/// destroys it when it does not get there.
pub(crate) async fn start_runner(
    launcher: &dyn Launcher,
    purpose: Purpose<'_>,
    deadline: Instant,
) -> Result<Started, RunFailure> {
    let timeout = match purpose {
        Purpose::Run(job) => job.timeout,
        Purpose::Pool => READY_TIMEOUT,
    };
    let launched = tokio::time::timeout_at(deadline, launcher.launch(purpose, deadline)).await;
    let mut runner = match launched {
        Ok(Ok(runner)) => runner,
        Ok(Err(failure)) => return Err(failure),
        Err(_) => return Err(timed_out(timeout, Vec::new())),
    };
    let key = match RunnerKey::generate() {
        Ok(key) => key,
        Err(e) => {
            runner.destroy().await;
            return Err(RunFailure::new(
                ErrorCode::Internal,
                format!("cannot make a runner key: {e}"),
                Vec::new(),
            ));
        }
    };
    // Before any user code exists in the runner. A runner that cannot take
    // it has ended: the loop below says why.
    match tokio::time::timeout_at(deadline, runner.send(&key.line())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "Cannot send a runner its key."),
        Err(_) => {
            runner.destroy().await;
            return Err(timed_out(timeout, Vec::new()));
        }
    }
    let launched_at = Instant::now();
    let ready_deadline = deadline.min(launched_at + READY_TIMEOUT);
    let ready = FrameAuth::ready(&key);
    let mut splitter = LineSplitter::new(FRAME_SLACK, ready.nonce());
    let mut stderr = StderrTail::default();
    loop {
        match tokio::time::timeout_at(ready_deadline, runner.recv()).await {
            Err(_) => {
                runner.destroy().await;
                return Err(if ready_deadline < deadline {
                    RunFailure::new(
                        ErrorCode::RuntimeUnavailable,
                        format!("the runner did not get ready within {} ms", READY_TIMEOUT.as_millis()),
                        Vec::new(),
                    )
                } else {
                    timed_out(timeout, Vec::new())
                });
            }
            Ok(None) => {
                let exit = runner.exit().await;
                runner.destroy().await;
                let mut message = format!("the runner ended before it was ready ({})", exit.status);
                append_stderr(&mut message, stderr.bytes());
                return Err(RunFailure::new(ErrorCode::RuntimeUnavailable, message, Vec::new()));
            }
            Ok(Some(Chunk::Stderr(bytes))) => stderr.push(&bytes),
            Ok(Some(Chunk::Stdout(bytes))) => {
                let lines = splitter.feed(&bytes).unwrap_or_default();
                if lines
                    .iter()
                    .any(|line| matches!(protocol::parse_frame(line, &ready), Ok(Some(Frame::Ready))))
                {
                    tracing::debug!(ready_ms = launched_at.elapsed().as_secs_f64() * 1e3, "Runner ready.");
                    return Ok(Started { runner, key });
                }
            }
        }
    }
}

/// How one job on one runner went.
#[derive(Debug)]
pub(crate) enum Served {
    /// The runner gave a verdict (a result, an error envelope, or an output
    /// over the limit) and is still running.
    Verdict {
        /// The run's outcome.
        outcome: Result<RunOutput, RunFailure>,
        /// The runner may take another job of the same key.
        reusable: bool,
    },
    /// The run failed with the runner (timeout, crash, OOM, broken
    /// protocol); destroy it.
    Failed(RunFailure),
    /// The runner ended before it took the job: nothing of the job ran.
    Lost(String),
}

/// When a job reached its runner, from the start of [`serve_job`] (for
/// the phase log).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JobTimes {
    /// The job line was written.
    pub(crate) sent: Option<Duration>,
    /// The runner's started frame arrived.
    pub(crate) started: Option<Duration>,
}

/// Sends the job to a ready runner and follows it to its verdict, the
/// deadline, or the runner's end.
pub(crate) async fn serve_job(
    started: &mut Started,
    job: &RunJob,
    deadline: Instant,
    memory_mb: u64,
    times: &mut JobTimes,
) -> Served {
    let begun = Instant::now();
    let challenge = protocol::new_challenge();
    let auth = FrameAuth::job(&started.key, &challenge);
    let runner = &mut *started.runner;
    let line = match protocol::job_line(job, &run_env(job), &challenge) {
        Ok(line) => line,
        Err(e) => {
            return Served::Failed(RunFailure::new(
                ErrorCode::Internal,
                format!("cannot encode the job: {e}"),
                Vec::new(),
            ))
        }
    };
    match tokio::time::timeout_at(deadline, runner.send(&line)).await {
        Ok(Ok(())) => times.sent = Some(begun.elapsed()),
        Ok(Err(e)) => return Served::Lost(format!("cannot send the job: {e}")),
        Err(_) => {
            runner.kill().await;
            return Served::Failed(timed_out(job.timeout, Vec::new()));
        }
    }
    let cap = job.max_output_bytes.max(job.max_log_bytes).saturating_add(FRAME_SLACK);
    let mut splitter = LineSplitter::new(cap, auth.nonce());
    let mut logs = LogCollector::new(job.max_log_bytes);
    let mut stderr = StderrTail::default();
    let mut started = false;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, runner.recv()).await {
            Err(_) => {
                runner.kill().await;
                tracing::info!(timeout_ms = job.timeout.as_millis(), "Run timed out; runner killed.");
                return Served::Failed(timed_out(job.timeout, logs.finish()));
            }
            Ok(None) => break,
            Ok(Some(chunk)) => chunk,
        };
        let bytes = match chunk {
            Chunk::Stderr(bytes) => {
                stderr.push(&bytes);
                continue;
            }
            Chunk::Stdout(bytes) => bytes,
        };
        let lines = match splitter.feed(&bytes) {
            Ok(lines) => lines,
            Err(protocol::Overflow(size)) => {
                return Served::Failed(RunFailure::new(
                    ErrorCode::Internal,
                    format!("the runner sent a frame of more than {size} bytes (limit {cap})"),
                    logs.finish(),
                ))
            }
        };
        for line in &lines {
            match protocol::parse_frame(line, &auth) {
                Ok(None) | Ok(Some(Frame::Ready)) => {}
                Ok(Some(Frame::Started)) => {
                    started = true;
                    times.started = Some(begun.elapsed());
                }
                Ok(Some(Frame::Log(entry))) => logs.push(entry),
                Ok(Some(Frame::Result { envelope, reusable })) => {
                    return Served::Verdict {
                        outcome: Ok(RunOutput {
                            output_json: envelope.to_vec(),
                            logs: logs.finish(),
                            start_kind: StartKind::Cold,
                        }),
                        reusable,
                    };
                }
                Ok(Some(Frame::TooLarge(size))) => {
                    return Served::Verdict {
                        outcome: Err(output_too_large(size, job.max_output_bytes, logs.finish())),
                        reusable: true,
                    };
                }
                Err(protocol::BadFrame(why)) => {
                    return Served::Failed(RunFailure::new(
                        ErrorCode::Internal,
                        format!("the runner broke the protocol: {why}"),
                        logs.finish(),
                    ))
                }
            }
        }
    }
    // Stop what may still run (a broken stream of a live container) so that
    // learning how it ended never waits; a stopped runner ignores the kill.
    runner.kill().await;
    let exit = runner.exit().await;
    let failure = ended_without_result(&exit, stderr.bytes(), memory_mb, logs.finish());
    if !started && failure.code != ErrorCode::OutOfMemory {
        // Ended before it took the job (and not because of the job's size):
        // nothing of the job ran.
        let mut why = "the runner ended before it took the job".to_string();
        append_stderr(&mut why, stderr.bytes());
        return Served::Lost(why);
    }
    Served::Failed(failure)
}

/// `TIMEOUT` naming the run's limit.
pub(crate) fn timed_out(timeout: Duration, logs: Vec<u8>) -> RunFailure {
    RunFailure::new(
        ErrorCode::Timeout,
        format!("function timed out after {} ms", timeout.as_millis()),
        logs,
    )
}

/// `OUTPUT_TOO_LARGE` with the envelope's size.
pub(crate) fn output_too_large(size: u64, limit: u64, logs: Vec<u8>) -> RunFailure {
    RunFailure::new(
        ErrorCode::OutputTooLarge,
        format!("function output ({size} bytes) is larger than the limit of {limit} bytes"),
        logs,
    )
}

/// A runner that ended mid-run: `OUT_OF_MEMORY` when the OOM killer or V8's
/// heap limit ended it, else `EXITED_WITHOUT_OUTPUT` with the end of stderr.
pub(crate) fn ended_without_result(exit: &Exit, stderr: &[u8], memory_mb: u64, logs: Vec<u8>) -> RunFailure {
    let stderr_text = String::from_utf8_lossy(stderr);
    if exit.oom_killed || NODE_OOM_MARKERS.iter().any(|m| stderr_text.contains(m)) {
        return RunFailure::new(
            ErrorCode::OutOfMemory,
            format!("function ran out of memory (memory limit {memory_mb} MB)"),
            logs,
        );
    }
    tracing::debug!(status = %exit.status, stderr = %stderr_text, "Run ended without a result.");
    let mut message = format!("function exited without writing a result ({})", exit.status);
    append_stderr(&mut message, stderr);
    RunFailure::new(ErrorCode::ExitedWithoutOutput, message, logs)
}

/// Appends `; stderr: <its end>` when there is any.
fn append_stderr(message: &mut String, stderr: &[u8]) {
    let start = stderr.len().saturating_sub(STDERR_MESSAGE_BYTES);
    let quoted = String::from_utf8_lossy(&stderr[start..]).trim().to_string();
    if !quoted.is_empty() {
        message.push_str("; stderr: ");
        message.push_str(&quoted);
    }
}

/// The last [`STDERR_TAIL_BYTES`] bytes of a stream.
#[derive(Debug, Default)]
pub(crate) struct StderrTail {
    buf: Vec<u8>,
}

impl StderrTail {
    /// Appends, keeping only the tail.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > 2 * STDERR_TAIL_BYTES {
            let cut = self.buf.len() - STDERR_TAIL_BYTES;
            self.buf.drain(..cut);
        }
    }

    /// The tail.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[self.buf.len().saturating_sub(STDERR_TAIL_BYTES)..]
    }
}

/// The log entries of one job as NDJSON, bounded by `max_log_bytes` plus
/// [`LOG_READ_SLACK`] (the bootstrap keeps to the cap; this bounds a runner
/// that does not).
#[derive(Debug)]
struct LogCollector {
    bytes: Vec<u8>,
    cap: usize,
}

impl LogCollector {
    fn new(max_log_bytes: u64) -> Self {
        let cap = if max_log_bytes == 0 {
            0
        } else {
            usize::try_from(max_log_bytes.saturating_add(LOG_READ_SLACK)).unwrap_or(usize::MAX)
        };
        Self { bytes: Vec::new(), cap }
    }

    fn push(&mut self, entry: &[u8]) {
        if self.bytes.len().saturating_add(entry.len()).saturating_add(1) <= self.cap {
            self.bytes.extend_from_slice(entry);
            self.bytes.push(b'\n');
        }
    }

    fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

/// Judges an idle runner without waiting, for the runners' `check_idle`:
/// `poll` is its `recv` polled once (`None`: nothing ready). What it wrote
/// meanwhile is kept in `stash` (returned first by its next `recv`); an
/// ended runner, or one that wrote more than [`IDLE_STRAY_LIMIT`] while
/// idle, is gone.
pub(crate) fn drain_idle(stash: &mut VecDeque<Chunk>, mut poll: impl FnMut() -> Option<Option<Chunk>>) -> Liveness {
    let mut stashed: usize = stash.iter().map(Chunk::len).sum();
    while let Some(polled) = poll() {
        let Some(chunk) = polled else {
            return Liveness::Gone;
        };
        stashed = stashed.saturating_add(chunk.len());
        stash.push_back(chunk);
        if stashed > IDLE_STRAY_LIMIT {
            return Liveness::Gone;
        }
    }
    Liveness::Alive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_config_defaults_and_ranges() {
        let config = ExecutionConfig::default();
        assert_eq!(config.mode, ExecutionMode::Prewarm);
        assert_eq!(config.prewarm_pool_size, 4);
        assert!(config.validate().is_ok());
        for bad in [
            ExecutionConfig {
                prewarm_pool_size: MAX_POOL_RUNNERS + 1,
                ..config.clone()
            },
            ExecutionConfig {
                warm_idle_ttl: Duration::from_millis(5),
                ..config.clone()
            },
            ExecutionConfig {
                warm_max_containers: 0,
                ..config.clone()
            },
            ExecutionConfig {
                warm_max_per_key: 17,
                ..config.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(ExecutionMode::parse(" WARM "), Some(ExecutionMode::Warm));
        assert_eq!(ExecutionMode::parse("hot"), None);
    }

    #[test]
    fn the_idle_ttl_is_a_duration_written_in_ms() {
        let config: ExecutionConfig = serde_json::from_str(r#"{"warm_idle_ttl_ms": 2500}"#).unwrap();
        assert_eq!(config.warm_idle_ttl, Duration::from_millis(2500));
        let message = ExecutionConfig {
            warm_idle_ttl: Duration::from_millis(99),
            ..ExecutionConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            message.contains("LOWCODE_FAAS_WARM_IDLE_TTL_MS must be between 100 and 86400000, got 99"),
            "{message}"
        );
        // A runner outlives the longest idle time the pool gives it.
        let long = ExecutionConfig {
            warm_idle_ttl: MAX_WARM_IDLE_TTL,
            ..ExecutionConfig::default()
        };
        assert_eq!(long.runner_max_idle(), MAX_WARM_IDLE_TTL + Duration::from_secs(60));
        assert_eq!(
            ExecutionConfig::default().runner_max_idle(),
            PREWARM_MAX_IDLE + Duration::from_secs(60)
        );
    }

    #[test]
    fn logs_are_bounded_and_zero_means_none() {
        let mut none = LogCollector::new(0);
        none.push(b"{}");
        assert!(none.finish().is_empty());
        let mut some = LogCollector::new(10);
        for _ in 0..10_000 {
            some.push(b"{\"message\":\"x\"}");
        }
        let bytes = some.finish();
        assert!(bytes.len() as u64 <= 10 + LOG_READ_SLACK);
        assert!(bytes.ends_with(b"\n"));
    }

    #[test]
    fn failure_messages_are_the_same_for_every_runtime() {
        let exit = Exit {
            status: "exit status: 3".into(),
            oom_killed: false,
        };
        let f = ended_without_result(&exit, b"bye\n", 256, Vec::new());
        assert_eq!(f.code, ErrorCode::ExitedWithoutOutput);
        assert_eq!(
            f.message,
            "function exited without writing a result (exit status: 3); stderr: bye"
        );
        let f = ended_without_result(&exit, b"FATAL ERROR: Reached heap limit", 64, Vec::new());
        assert_eq!(f.code, ErrorCode::OutOfMemory);
        assert_eq!(f.message, "function ran out of memory (memory limit 64 MB)");
        let oom = Exit {
            oom_killed: true,
            ..exit
        };
        assert_eq!(
            ended_without_result(&oom, b"", 1, Vec::new()).code,
            ErrorCode::OutOfMemory
        );
        assert_eq!(
            timed_out(Duration::from_millis(1500), Vec::new()).message,
            "function timed out after 1500 ms"
        );
    }

    #[test]
    fn the_stderr_tail_keeps_the_end() {
        let mut tail = StderrTail::default();
        for _ in 0..10 {
            tail.push(&vec![b'a'; STDERR_TAIL_BYTES / 2]);
        }
        tail.push(b"end");
        assert_eq!(tail.bytes().len(), STDERR_TAIL_BYTES);
        assert!(tail.bytes().ends_with(b"end"));
    }
}
