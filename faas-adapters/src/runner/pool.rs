//! The pool of started runners behind both runtimes (see the parent module).
//!
//! - `cold`: every run starts its own runner (`super::start_runner`) and
//!   destroys it after.
//! - `prewarm`: up to `prewarm_pool_size` generic runners (no user code,
//!   node running and waiting for a job) are kept started by a background
//!   task; a run takes one and destroys it after, so no runner ever serves
//!   two runs. An empty pool means a cold start, never an error.
//! - `warm`: as `prewarm`, and a runner whose run ended cleanly is kept idle
//!   under its key (deployment id + source + env without the per-run
//!   variables) for later runs of exactly that key, one at a time, until it
//!   idles past the TTL or is evicted (least recently used) to make room.
//!
//! The warm caps count every warm runner, idle or serving a run: a runner
//! taken from the warm pool keeps its place under the caps (a `WarmLease`)
//! until it is parked again or destroyed, so at no time do more than
//! `warm_max_containers` warm runners exist (`warm_max_per_key` per key). A
//! run whose runner would pass a cap evicts the least recently used idle
//! warm runner, or, when every warm runner is busy, has its runner
//! destroyed instead of kept. Runs themselves are never refused: a run that
//! finds no warm runner takes a prewarmed one or starts cold, so the runners
//! alive at once are at most the warm cap + the prewarm pool + the runs in
//! flight that did not start warm (+ removals under way).
//!
//! After every job that reached its runner, the runner ends what the job
//! left running (`Runner::end_job`) before the run answers, whether the
//! runner is then kept warm or destroyed; one whose clean-up may have left
//! something is never kept.
//!
//! Runners are destroyed off the request path (tracked, so
//! `Pool::shutdown` waits for them). A pool runner found ended (daemon
//! restart, removed from outside) is discarded and replaced, never handed a
//! job; one that ends before it takes its job is replaced too (nothing ran).
//! Failed refills back off (1 s doubling to 30 s) and the reason is kept for
//! `/readyz`: a missing image never makes the pool spin.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use faas_ports::{ErrorCode, PoolStatus, RunFailure, RunJob, RunOutput, RuntimeStatus, StartKind, PER_RUN_ENV};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    deadline_after, serve_job, start_runner, ExecutionConfig, ExecutionMode, JobTimes, Launcher, Liveness, Purpose,
    Served, Started, PREWARM_MAX_IDLE,
};

/// Pool runners started at once by the refill task.
const MAX_PARALLEL_LAUNCHES: usize = 2;
/// First and longest wait after a failed refill.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the maintenance task looks at idle runners at most.
const TICK_MAX: Duration = Duration::from_secs(1);
/// Pool runners that end before taking their job are replaced this often
/// at most per run; then it starts cold.
const MAX_LOST_RUNNERS: usize = 3;
/// Bound on waiting for background removals at shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// What a warm runner is specialised for: SHA-256 over the deployment id,
/// the source and the env without [`PER_RUN_ENV`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WarmKey([u8; 32]);

impl WarmKey {
    pub(crate) fn of(job: &RunJob) -> Self {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(job.deployment_id.as_bytes());
        field(job.source_code.as_bytes());
        for (key, value) in &super::run_env(job) {
            if PER_RUN_ENV.contains(&key.as_str()) {
                continue;
            }
            field(key.as_bytes());
            field(value.as_bytes());
        }
        Self(hash.finalize().into())
    }
}

#[derive(Debug)]
struct Idle {
    runner: Started,
    since: Instant,
}

#[derive(Debug, Default)]
struct State {
    prewarmed: VecDeque<Idle>,
    launching: usize,
    /// Idle warm runners per key, in parking order.
    warm: HashMap<WarmKey, Vec<Idle>>,
    /// Runners in `warm`.
    warm_idle: usize,
    /// Warm runners per key, idle or serving a run (under a lease).
    warm_live: HashMap<WarmKey, usize>,
    /// The sum of `warm_live`.
    warm_live_total: usize,
    last_error: Option<String>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl State {
    /// One warm runner of `key` (idle or busy) is gone.
    fn forget_warm(&mut self, key: &WarmKey) {
        if let Some(n) = self.warm_live.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.warm_live.remove(key);
            }
        }
        self.warm_live_total = self.warm_live_total.saturating_sub(1);
    }
}

/// A warm runner's place under the caps while it serves a run: kept when
/// the runner is parked again ([`WarmLease::keep`]), given back when the
/// lease is dropped (the runner destroyed, or the run dropped mid-way).
#[derive(Debug)]
struct WarmLease {
    inner: Arc<Inner>,
    key: WarmKey,
    armed: bool,
}

impl WarmLease {
    /// The runner is parked again: its place stays taken.
    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for WarmLease {
    fn drop(&mut self) {
        if self.armed {
            // Never dropped while the state lock is held (see `park`, `take`).
            self.inner.lock().forget_warm(&self.key);
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    launch_failures: AtomicU64,
}

/// Background destroys in flight, so shutdown can wait for them.
#[derive(Debug, Default)]
struct Removals {
    pending: AtomicUsize,
    /// Destroys started since the pool was made.
    started: AtomicU64,
    done: Notify,
}

/// Instant counts of the pool's runners, for tests that check the caps
/// against what really runs.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Idle prewarmed runners.
    pub(crate) prewarm_idle: usize,
    /// Pool runners being started.
    pub(crate) launching: usize,
    /// Idle warm runners.
    pub(crate) warm_idle: usize,
    /// Warm runners, idle or serving a run.
    pub(crate) warm_live: usize,
    /// The most warm runners of one key, idle or serving a run.
    pub(crate) warm_live_max_per_key: usize,
    /// Background destroys not finished yet.
    pub(crate) removals_pending: usize,
    /// Background destroys started so far.
    pub(crate) removals_started: u64,
}

#[derive(Debug)]
struct Inner {
    launcher: Arc<dyn Launcher>,
    config: ExecutionConfig,
    state: Mutex<State>,
    counters: Counters,
    removals: Arc<Removals>,
    closed: AtomicBool,
    maintenance_started: AtomicBool,
    /// Wakes the maintenance task (a runner taken, a refill wanted).
    wake: Arc<Notify>,
}

/// The runners of one runtime (see the module docs).
#[derive(Debug)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    pub(crate) fn new(launcher: Arc<dyn Launcher>, config: ExecutionConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                launcher,
                config,
                state: Mutex::new(State::default()),
                counters: Counters::default(),
                removals: Arc::new(Removals::default()),
                closed: AtomicBool::new(false),
                maintenance_started: AtomicBool::new(false),
                wake: Arc::new(Notify::new()),
            }),
        }
    }

    /// Starts filling the pool in the background (also done by the first
    /// run). Needs a tokio runtime; without one it does nothing.
    pub(crate) fn start(&self) {
        if self.inner.config.mode == ExecutionMode::Cold || self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        if self.inner.maintenance_started.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(maintain(Arc::downgrade(&self.inner), Arc::clone(&self.inner.wake)));
            }
            Err(_) => self.inner.maintenance_started.store(false, Ordering::Release),
        }
    }

    /// Runs one job (see the module docs for where its runner comes from).
    pub(crate) async fn run(&self, job: RunJob) -> Result<RunOutput, RunFailure> {
        self.start();
        let inner = &self.inner;
        let deadline = deadline_after(job.timeout);
        let key = (inner.config.mode == ExecutionMode::Warm).then(|| WarmKey::of(&job));
        let memory_mb = inner.launcher.memory_mb();
        let mut lost = 0;
        loop {
            let taking = Instant::now();
            let pooled = if lost < MAX_LOST_RUNNERS {
                inner.take(key.as_ref())
            } else {
                None
            };
            let take_time = taking.elapsed();
            let (mut runner, kind, lease) = match pooled {
                Some(found) => {
                    inner.counters.hits.fetch_add(1, Ordering::Relaxed);
                    inner.wake.notify_one();
                    found
                }
                None => {
                    if inner.config.mode != ExecutionMode::Cold {
                        inner.counters.misses.fetch_add(1, Ordering::Relaxed);
                    }
                    let runner = start_runner(&*inner.launcher, Purpose::Run(&job), deadline).await?;
                    (runner, StartKind::Cold, None)
                }
            };
            let launch_time = taking.elapsed() - take_time;
            let serving = Instant::now();
            let mut times = JobTimes::default();
            let served = serve_job(&mut runner, &job, deadline, memory_mb, &mut times).await;
            let serve_time = serving.elapsed();
            // Before the run answers: nothing it started outlives it.
            let clean = matches!(served, Served::Lost(_)) || runner.runner.end_job().await;
            tracing::debug!(
                start_kind = kind.as_str(),
                take_us = micros(take_time),
                launch_us = micros(launch_time),
                send_us = times.sent.map_or(0, micros),
                started_us = times.started.map_or(0, micros),
                serve_us = micros(serve_time),
                end_job_us = micros(serving.elapsed() - serve_time),
                launching = inner.lock().launching,
                "Run phases."
            );
            match served {
                Served::Verdict { outcome, reusable } => {
                    match (&key, reusable && clean) {
                        (Some(key), true) => inner.park(key.clone(), runner, lease),
                        _ => {
                            inner.discard(runner);
                            drop(lease);
                        }
                    }
                    return match outcome {
                        Ok(output) => Ok(RunOutput {
                            start_kind: kind,
                            ..output
                        }),
                        Err(failure) => Err(RunFailure {
                            start_kind: kind,
                            ..failure
                        }),
                    };
                }
                Served::Failed(failure) => {
                    inner.discard(runner);
                    drop(lease);
                    return Err(RunFailure {
                        start_kind: kind,
                        ..failure
                    });
                }
                Served::Lost(why) => {
                    inner.discard(runner);
                    drop(lease);
                    lost += 1;
                    tracing::warn!(start_kind = kind.as_str(), reason = %why, "A runner ended before it took its job.");
                    if kind == StartKind::Cold {
                        return Err(RunFailure {
                            start_kind: kind,
                            ..RunFailure::new(ErrorCode::Internal, why, Vec::new())
                        });
                    }
                }
            }
        }
    }

    /// The mode and a snapshot of the pool.
    pub(crate) fn status(&self) -> RuntimeStatus {
        let inner = &self.inner;
        let mode = inner.config.mode;
        if mode == ExecutionMode::Cold {
            return RuntimeStatus {
                execution_mode: mode.as_str(),
                pool: None,
            };
        }
        let state = inner.lock();
        let c = &inner.counters;
        RuntimeStatus {
            execution_mode: mode.as_str(),
            pool: Some(PoolStatus {
                prewarm_target: inner.config.prewarm_pool_size,
                prewarm_idle: state.prewarmed.len(),
                launching: state.launching,
                warm_idle: state.warm_idle,
                warm_busy: state.warm_live_total.saturating_sub(state.warm_idle),
                warm_keys: state.warm.len(),
                hits: c.hits.load(Ordering::Relaxed),
                misses: c.misses.load(Ordering::Relaxed),
                evictions: c.evictions.load(Ordering::Relaxed),
                launch_failures: c.launch_failures.load(Ordering::Relaxed),
                last_error: state.last_error.clone(),
            }),
        }
    }

    /// Stops refilling, destroys every idle runner and waits (bounded) for
    /// every removal under way. Runs in flight finish and destroy their
    /// runner themselves.
    pub(crate) async fn shutdown(&self) {
        let inner = &self.inner;
        let idle: Vec<Idle> = {
            let mut state = inner.lock();
            inner.closed.store(true, Ordering::Release);
            inner.wake.notify_one();
            let mut idle: Vec<Idle> = state.prewarmed.drain(..).collect();
            let warm: Vec<(WarmKey, Vec<Idle>)> = state.warm.drain().collect();
            for (key, runners) in warm {
                for runner in runners {
                    state.forget_warm(&key);
                    idle.push(runner);
                }
            }
            state.warm_idle = 0;
            idle
        };
        futures_util::future::join_all(idle.into_iter().map(|idle| idle.runner.destroy())).await;
        let wait = async {
            loop {
                let notified = inner.removals.done.notified();
                let launching = inner.lock().launching;
                if inner.removals.pending.load(Ordering::Acquire) == 0 && launching == 0 {
                    break;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, wait).await.is_err() {
            tracing::warn!("Runner removals did not finish in time; the start-up clean-up removes what is left.");
        }
    }
}

#[cfg(test)]
impl Pool {
    /// Instant counts (see [`Counts`]).
    pub(crate) fn counts(&self) -> Counts {
        let state = self.inner.lock();
        Counts {
            prewarm_idle: state.prewarmed.len(),
            launching: state.launching,
            warm_idle: state.warm_idle,
            warm_live: state.warm_live_total,
            warm_live_max_per_key: state.warm_live.values().copied().max().unwrap_or(0),
            removals_pending: self.inner.removals.pending.load(Ordering::Acquire),
            removals_started: self.inner.removals.started.load(Ordering::Acquire),
        }
    }
}

/// Microseconds, for the phase log.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Idle runners go with the state (their Drop removes them); the
        // maintenance task holds only a weak reference and stops.
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle runner for the job: a warm one of its key first (with its
    /// lease), then a prewarmed one. Ended ones met on the way are discarded.
    fn take(self: &Arc<Self>, key: Option<&WarmKey>) -> Option<(Started, StartKind, Option<WarmLease>)> {
        if let Some(key) = key {
            loop {
                let idle = {
                    let mut state = self.lock();
                    let found = state.warm.get_mut(key).and_then(Vec::pop);
                    if found.is_some() {
                        state.warm_idle -= 1;
                        if state.warm.get(key).is_some_and(Vec::is_empty) {
                            state.warm.remove(key);
                        }
                    }
                    found
                };
                let Some(mut idle) = idle else { break };
                // From here its place under the caps is the lease's.
                let lease = WarmLease {
                    inner: Arc::clone(self),
                    key: key.clone(),
                    armed: true,
                };
                if idle.runner.runner.check_idle() == Liveness::Alive {
                    return Some((idle.runner, StartKind::Warm, Some(lease)));
                }
                tracing::info!("A warm runner had ended; discarded.");
                self.discard(idle.runner);
                drop(lease);
            }
        }
        loop {
            let mut idle = self.lock().prewarmed.pop_front()?;
            if idle.runner.runner.check_idle() == Liveness::Alive {
                return Some((idle.runner, StartKind::Prewarm, None));
            }
            tracing::info!("A prewarmed runner had ended; discarded.");
            self.discard(idle.runner);
        }
    }

    /// Keeps a runner idle under its key, within the caps (see the module
    /// docs). `lease`: the runner came from the warm pool and still holds
    /// its place.
    fn park(&self, key: WarmKey, runner: Started, lease: Option<WarmLease>) {
        let mut evicted = None;
        let mut refused_lease = None;
        let refused = {
            let mut state = self.lock();
            // `closed` under the lock: shutdown drains the state under it.
            let admitted = if self.closed.load(Ordering::Acquire) {
                refused_lease = lease;
                false
            } else if let Some(lease) = lease {
                lease.keep();
                true
            } else if state.warm_live.get(&key).copied().unwrap_or(0) >= self.config.warm_max_per_key {
                false
            } else {
                if state.warm_live_total >= self.config.warm_max_containers {
                    evicted = evict_oldest(&mut state);
                }
                if state.warm_live_total < self.config.warm_max_containers {
                    *state.warm_live.entry(key.clone()).or_default() += 1;
                    state.warm_live_total += 1;
                    true
                } else {
                    // Every warm runner is busy: nothing to evict.
                    false
                }
            };
            if admitted {
                state.warm.entry(key).or_default().push(Idle {
                    runner,
                    since: Instant::now(),
                });
                state.warm_idle += 1;
                None
            } else {
                Some(runner)
            }
        };
        drop(refused_lease);
        if let Some(runner) = refused {
            self.discard(runner);
        }
        if let Some(old) = evicted {
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            self.discard(old);
        }
    }

    /// Destroys a runner off the request path, tracked for shutdown.
    fn discard(&self, runner: Started) {
        self.removals.started.fetch_add(1, Ordering::AcqRel);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // No runtime: the runner's Drop does what it can.
            drop(runner);
            return;
        };
        let removals = Arc::clone(&self.removals);
        removals.pending.fetch_add(1, Ordering::AcqRel);
        handle.spawn(async move {
            runner.destroy().await;
            removals.pending.fetch_sub(1, Ordering::AcqRel);
            removals.done.notify_waiters();
        });
    }

    /// One maintenance pass: drop expired or ended idle runners, then start
    /// refills. Returns when the next pass is due at the latest.
    fn maintain_once(self: &Arc<Self>) -> Duration {
        let ttl = self.config.warm_idle_ttl;
        let now = Instant::now();
        let mut gone = Vec::new();
        let mut expired = 0u64;
        {
            let mut state = self.lock();
            let mut kept = VecDeque::new();
            while let Some(mut idle) = state.prewarmed.pop_front() {
                // Retired before it would end itself (--max-idle-ms).
                if now.duration_since(idle.since) < PREWARM_MAX_IDLE
                    && idle.runner.runner.check_idle() == Liveness::Alive
                {
                    kept.push_back(idle);
                } else {
                    gone.push(idle.runner);
                }
            }
            state.prewarmed = kept;
            let mut forgotten = Vec::new();
            for (key, runners) in state.warm.iter_mut() {
                let mut keep = Vec::new();
                for mut idle in runners.drain(..) {
                    if now.duration_since(idle.since) >= ttl {
                        expired += 1;
                        gone.push(idle.runner);
                        forgotten.push(key.clone());
                    } else if idle.runner.runner.check_idle() == Liveness::Alive {
                        keep.push(idle);
                    } else {
                        gone.push(idle.runner);
                        forgotten.push(key.clone());
                    }
                }
                *runners = keep;
            }
            for key in &forgotten {
                state.forget_warm(key);
            }
            state.warm.retain(|_, runners| !runners.is_empty());
            state.warm_idle = state.warm.values().map(Vec::len).sum();
        }
        self.counters.evictions.fetch_add(expired, Ordering::Relaxed);
        for runner in gone {
            self.discard(runner);
        }
        self.refill();
        TICK_MAX.min(ttl / 4).max(Duration::from_millis(25))
    }

    /// Starts pool runners up to the target, a few at a time, unless backing off.
    fn refill(self: &Arc<Self>) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut state = self.lock();
        if self.closed.load(Ordering::Acquire) || state.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        while state.prewarmed.len() + state.launching < self.config.prewarm_pool_size
            && state.launching < MAX_PARALLEL_LAUNCHES
        {
            state.launching += 1;
            let inner = Arc::clone(self);
            handle.spawn(async move { inner.launch_one().await });
        }
    }

    async fn launch_one(self: Arc<Self>) {
        let launching = Instant::now();
        let started = start_runner(&*self.launcher, Purpose::Pool, deadline_after(Duration::from_secs(120))).await;
        if started.is_ok() {
            tracing::debug!(launch_us = micros(launching.elapsed()), "Pool runner started.");
        }
        let mut leftover = None;
        {
            let mut state = self.lock();
            if started.is_ok() && self.closed.load(Ordering::Acquire) {
                // Counted as a removal before it stops counting as a launch,
                // so shutdown's wait never sees neither.
                self.removals.pending.fetch_add(1, Ordering::AcqRel);
            }
            state.launching -= 1;
            match started {
                Ok(runner) => {
                    state.last_error = None;
                    state.retry_at = None;
                    state.backoff = Duration::ZERO;
                    if self.closed.load(Ordering::Acquire) {
                        leftover = Some(runner);
                    } else {
                        state.prewarmed.push_back(Idle {
                            runner,
                            since: Instant::now(),
                        });
                    }
                }
                Err(failure) => {
                    self.counters.launch_failures.fetch_add(1, Ordering::Relaxed);
                    state.backoff = (state.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                    state.retry_at = Some(Instant::now() + state.backoff);
                    tracing::warn!(
                        error = %failure.message,
                        retry_in_ms = state.backoff.as_millis(),
                        "Cannot start a pool runner; runs start cold meanwhile."
                    );
                    state.last_error = Some(failure.message);
                }
            }
        }
        if let Some(runner) = leftover {
            self.discard(runner);
            self.removals.pending.fetch_sub(1, Ordering::AcqRel);
        }
        self.removals.done.notify_waiters();
        self.wake.notify_one();
    }
}

/// Removes the least recently used idle warm runner (and its place under
/// the caps).
fn evict_oldest(state: &mut State) -> Option<Started> {
    let key = state
        .warm
        .iter()
        .filter_map(|(key, runners)| runners.first().map(|idle| (key.clone(), idle.since)))
        .min_by_key(|(_, since)| *since)
        .map(|(key, _)| key)?;
    let runners = state.warm.get_mut(&key)?;
    // Each key's list is in parking order: the first is its oldest.
    let idle = runners.remove(0);
    if runners.is_empty() {
        state.warm.remove(&key);
    }
    state.warm_idle -= 1;
    state.forget_warm(&key);
    Some(idle.runner)
}

/// The maintenance task: a pass per tick or wake-up, until the pool is gone.
async fn maintain(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(inner) = inner.upgrade() else { return };
            if inner.closed.load(Ordering::Acquire) {
                return;
            }
            inner.maintain_once()
        };
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            () = wake.notified() => {}
        }
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
