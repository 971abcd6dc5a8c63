//! Test doubles of the runner abstraction (tests only):
//!
//! - [`FakeLauncher`]: runners that speak the stdio protocol in memory
//!   (key line, challenge → nonce, frames), with behaviour chosen per job
//!   input, and count how many of them are alive: the pool's own tests;
//! - [`Faulty`]: wraps a real runtime's launcher; its runners forward
//!   everything to the real runner but, on a job whose input asks for it,
//!   first hand the runtime a frame of the job's nonce that breaks the
//!   protocol (an unknown kind, or a line over the job's cap), as a broken
//!   or compromised bootstrap would. The runtime contract's
//!   `check_a_runner_that_breaks_the_protocol_is_never_reused` runs on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{ErrorCode, PortError, RunFailure};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::pool::Counts;
use super::protocol::{FrameAuth, RunnerKey, FRAME_SLACK};

use super::{Chunk, ExecutionConfig, Exit, Launcher, Liveness, Purpose, Runner};

/// What a [`FakeLauncher`]'s runners share with the test.
#[derive(Debug, Default)]
pub(crate) struct FakeWorld {
    /// Runners launched so far.
    pub(crate) launched: AtomicUsize,
    /// Runners alive now (launched, not destroyed or dropped).
    pub(crate) alive: AtomicUsize,
    /// The most runners alive at once.
    pub(crate) max_alive: AtomicUsize,
    /// Launches fail while set.
    pub(crate) fail: AtomicBool,
    /// Ends the output stream of every runner alive (an external removal,
    /// a daemon restart).
    enders: Mutex<Vec<mpsc::UnboundedSender<Option<Chunk>>>>,
}

impl FakeWorld {
    /// Ends every live runner's stream now, as a Docker daemon restart or an
    /// external `docker rm -f` ends the attach streams.
    pub(crate) fn end_all(&self) {
        for tx in self.enders.lock().unwrap().drain(..) {
            let _ = tx.send(None);
        }
    }
}

/// Starts [`FakeRunner`]s.
#[derive(Debug, Default)]
pub(crate) struct FakeLauncher {
    pub(crate) world: Arc<FakeWorld>,
    /// How long a launch takes.
    pub(crate) launch_time: Duration,
}

#[async_trait]
impl Launcher for FakeLauncher {
    async fn launch(&self, _purpose: Purpose<'_>, _deadline: Instant) -> Result<Box<dyn Runner>, RunFailure> {
        tokio::time::sleep(self.launch_time).await;
        if self.world.fail.load(Ordering::SeqCst) {
            return Err(RunFailure::new(
                ErrorCode::ImageUnavailable,
                "the fake image is missing",
                Vec::new(),
            ));
        }
        let id = self.world.launched.fetch_add(1, Ordering::SeqCst) + 1;
        let alive = self.world.alive.fetch_add(1, Ordering::SeqCst) + 1;
        self.world.max_alive.fetch_max(alive, Ordering::SeqCst);
        let (tx, rx) = mpsc::unbounded_channel();
        self.world.enders.lock().unwrap().push(tx.clone());
        Ok(Box::new(FakeRunner {
            id,
            world: Arc::clone(&self.world),
            tx,
            rx,
            stash: VecDeque::new(),
            key: None,
            calls: 0,
            ended: false,
            gone: false,
        }))
    }

    fn memory_mb(&self) -> u64 {
        64
    }

    async fn health(&self) -> Result<(), PortError> {
        Ok(())
    }
}

/// An in-memory runner. Per job input:
/// `{}` answers `{"ok":true,"data":{"runner":<id>,"calls":<n>}}`;
/// `{"wait_ms":n}` answers after `n` ms; `{"bad_frame":true}` sends a frame
/// of an unknown kind; `{"oversized":true}` a log frame over the cap;
/// `{"taint":true}` answers with `result-final`; `{"crash":true}` ends after
/// the started frame; `{"hang":true}` never answers.
#[derive(Debug)]
pub(crate) struct FakeRunner {
    id: usize,
    world: Arc<FakeWorld>,
    tx: mpsc::UnboundedSender<Option<Chunk>>,
    rx: mpsc::UnboundedReceiver<Option<Chunk>>,
    stash: VecDeque<Chunk>,
    key: Option<RunnerKey>,
    calls: usize,
    ended: bool,
    gone: bool,
}

fn frame(auth: &FrameAuth, kind: &str, payload: &str) -> Chunk {
    Chunk::Stdout(auth.frame(kind, payload.as_bytes()))
}

/// A log frame just over the longest frame line `job` allows.
fn oversized_log(auth: &FrameAuth, job: &Value) -> Chunk {
    let cap = job["max_output_bytes"]
        .as_u64()
        .unwrap_or(0)
        .max(job["max_log_bytes"].as_u64().unwrap_or(0))
        + FRAME_SLACK;
    frame(auth, "log", &"x".repeat(usize::try_from(cap).unwrap() + 10))
}

/// Checks one instant's pool counts against the caps of `config`; `alive`
/// (runners that exist, counted at that instant or just after) must not
/// pass the caps plus the `clients` runs in flight plus the removals under
/// way (`removals_since`: those started since the counts were taken).
pub(crate) fn check_caps(c: Counts, alive: usize, removals_since: u64, config: &ExecutionConfig, clients: usize) {
    assert!(c.warm_live <= config.warm_max_containers, "{c:?}");
    assert!(c.warm_live_max_per_key <= config.warm_max_per_key, "{c:?}");
    assert!(c.warm_idle <= c.warm_live, "{c:?}");
    assert!(c.prewarm_idle + c.launching <= config.prewarm_pool_size, "{c:?}");
    let bound = config.warm_max_containers
        + config.prewarm_pool_size
        + clients
        + c.removals_pending
        + usize::try_from(removals_since).unwrap();
    assert!(alive <= bound, "{alive} runners alive, bound {bound}: {c:?}");
}

impl FakeRunner {
    fn forget(&mut self) {
        if !self.gone {
            self.gone = true;
            self.world.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl Runner for FakeRunner {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.ended {
            return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "ended"));
        }
        let Some(key) = self.key.clone() else {
            self.key = Some(RunnerKey::from_line(bytes).expect("the first line is the key"));
            let _ = self.tx.send(Some(frame(
                &FrameAuth::ready(self.key.as_ref().unwrap()),
                "ready",
                "{}",
            )));
            return Ok(());
        };
        let job: Value = serde_json::from_slice(bytes).expect("a job line");
        let auth = FrameAuth::job(&key, job["challenge"].as_str().expect("a challenge"));
        let input: Value = serde_json::from_str(job["input"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
        self.calls += 1;
        let _ = self.tx.send(Some(frame(&auth, "started", "{}")));
        if input["hang"] == true {
            return Ok(());
        }
        if input["crash"] == true {
            let _ = self.tx.send(None);
            return Ok(());
        }
        if input["bad_frame"] == true {
            let _ = self.tx.send(Some(frame(&auth, "bogus", "{}")));
            return Ok(());
        }
        if input["oversized"] == true {
            let _ = self.tx.send(Some(oversized_log(&auth, &job)));
            return Ok(());
        }
        let kind = if input["taint"] == true {
            "result-final"
        } else {
            "result"
        };
        let envelope =
            json!({"type": "result", "value": {"ok": true, "data": {"runner": self.id, "calls": self.calls}}});
        let answer = frame(&auth, kind, &envelope.to_string());
        match input["wait_ms"].as_u64() {
            Some(ms) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = tx.send(Some(answer));
                });
            }
            None => {
                let _ = self.tx.send(Some(answer));
            }
        }
        Ok(())
    }

    async fn recv(&mut self) -> Option<Chunk> {
        if let Some(chunk) = self.stash.pop_front() {
            return Some(chunk);
        }
        if self.ended {
            return None;
        }
        match self.rx.recv().await {
            Some(Some(chunk)) => Some(chunk),
            _ => {
                self.ended = true;
                None
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
        Exit {
            status: "exit status: 1".into(),
            oom_killed: false,
        }
    }

    async fn kill(&mut self) {
        self.ended = true;
    }

    async fn destroy(mut self: Box<Self>) {
        self.forget();
    }
}

impl Drop for FakeRunner {
    fn drop(&mut self) {
        self.forget();
    }
}

/// A launcher whose runners inject protocol violations on request (see the
/// module docs): a job whose input has `"inject":"bad-frame"` or
/// `"inject":"oversized"`.
#[derive(Debug)]
pub(crate) struct Faulty(pub(crate) Arc<dyn Launcher>);

#[async_trait]
impl Launcher for Faulty {
    async fn launch(&self, purpose: Purpose<'_>, deadline: Instant) -> Result<Box<dyn Runner>, RunFailure> {
        let inner = self.0.launch(purpose, deadline).await?;
        Ok(Box::new(FaultyRunner {
            inner,
            key: None,
            injected: VecDeque::new(),
        }))
    }

    fn memory_mb(&self) -> u64 {
        self.0.memory_mb()
    }

    async fn health(&self) -> Result<(), PortError> {
        self.0.health().await
    }
}

/// A real runner with injected output first (see [`Faulty`]).
#[derive(Debug)]
struct FaultyRunner {
    inner: Box<dyn Runner>,
    key: Option<RunnerKey>,
    injected: VecDeque<Chunk>,
}

#[async_trait]
impl Runner for FaultyRunner {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &self.key {
            None => self.key = RunnerKey::from_line(bytes),
            Some(key) => {
                if let Ok(job) = serde_json::from_slice::<Value>(bytes) {
                    let input: Value =
                        serde_json::from_str(job["input"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
                    let auth = FrameAuth::job(key, job["challenge"].as_str().unwrap_or_default());
                    match input["inject"].as_str() {
                        Some("bad-frame") => self.injected.push_back(frame(&auth, "bogus", "{}")),
                        Some("oversized") => self.injected.push_back(oversized_log(&auth, &job)),
                        _ => {}
                    }
                }
            }
        }
        self.inner.send(bytes).await
    }

    async fn recv(&mut self) -> Option<Chunk> {
        match self.injected.pop_front() {
            Some(chunk) => Some(chunk),
            None => self.inner.recv().await,
        }
    }

    fn stash(&mut self) -> &mut VecDeque<Chunk> {
        self.inner.stash()
    }

    fn has_ended(&mut self) -> bool {
        self.inner.has_ended()
    }

    fn check_idle(&mut self) -> Liveness {
        self.inner.check_idle()
    }

    async fn end_job(&mut self) -> bool {
        self.inner.end_job().await
    }

    async fn exit(&mut self) -> Exit {
        self.inner.exit().await
    }

    async fn kill(&mut self) {
        self.inner.kill().await;
    }

    async fn destroy(self: Box<Self>) {
        self.inner.destroy().await;
    }
}
