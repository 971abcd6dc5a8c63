//! The simulation: workers with bounded concurrency and a warm-runner pool,
//! a routing policy, and what each policy did with the same trace.
//!
//! The model of one worker follows `LOWCODE_FAAS_EXECUTION_MODE=warm`:
//! a run takes an idle warm runner of its function when there is one (a warm
//! hit), else starts one (a prewarm or cold start: a miss, whichever the pool
//! gives). After the run the runner goes back idle. Idle runners are capped
//! per function (`LOWCODE_FAAS_WARM_MAX_PER_KEY`) and in all
//! (`LOWCODE_FAAS_WARM_MAX_CONTAINERS`), the least recently used goes first,
//! and an idle runner older than the TTL (`LOWCODE_FAAS_WARM_IDLE_TTL_MS`) is
//! gone. A worker runs at most `concurrency` runs at once
//! (`LOWCODE_FAAS_MAX_CONCURRENT_RUNS`); a run sent to a full worker waits
//! for its earliest slot.
//!
//! Simplifications: start latency is not added to run time (the table
//! reports the hit ratio, not latency); workers are independent, so each is
//! advanced lazily to the arrival time of the request routed to it; a worker
//! that leaves loses its warm pool and one that comes back starts empty.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::rendezvous;
use crate::workload::{Request, Rng};

/// Settings of every worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerConfig {
    /// Runs at once per worker.
    pub concurrency: usize,
    /// Idle warm runners per worker, in all.
    pub warm_cap: usize,
    /// Idle warm runners per function per worker.
    pub warm_per_key: usize,
    /// An idle runner is removed after this long, simulated milliseconds.
    pub idle_ttl_ms: f64,
}

/// How the dispatcher picks a worker for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Rendezvous hashing on the function key; when the home worker is full,
    /// the next worker in the key's rank order that has a free slot (and the
    /// home when all are full).
    RendezvousFailover,
    /// Rendezvous hashing on the function key, always the home worker.
    Rendezvous,
    /// `hash(key) mod N`: key affinity without rendezvous, always that worker.
    ModuloHash,
    /// A uniformly random worker.
    Random,
    /// The next worker in turn.
    RoundRobin,
}

impl Policy {
    /// Every policy, in the order the report lists them.
    pub const ALL: [Policy; 5] = [
        Policy::RendezvousFailover,
        Policy::Rendezvous,
        Policy::ModuloHash,
        Policy::Random,
        Policy::RoundRobin,
    ];

    /// The name used in the report.
    pub fn label(self) -> &'static str {
        match self {
            Policy::RendezvousFailover => "rendezvous + failover",
            Policy::Rendezvous => "rendezvous, no failover",
            Policy::ModuloHash => "hash mod N, no failover",
            Policy::Random => "random",
            Policy::RoundRobin => "round-robin",
        }
    }

    /// Whether the policy sends a key to a worker chosen from the key.
    pub fn is_key_affine(self) -> bool {
        !matches!(self, Policy::Random | Policy::RoundRobin)
    }
}

/// A membership change during a run: worker `worker` leaves before request
/// `leave_at` and comes back (empty) before request `return_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Churn {
    /// Index of the worker that leaves.
    pub worker: usize,
    /// Index of the first request routed without it.
    pub leave_at: usize,
    /// Index of the first request routed with it again.
    pub return_at: usize,
}

/// Counts over one stretch of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Requests.
    pub requests: u64,
    /// Requests that found an idle warm runner of their function.
    pub warm_hits: u64,
    /// Requests that waited for a slot.
    pub queued: u64,
    /// Total time spent waiting for a slot, milliseconds.
    pub wait_ms: f64,
    /// Requests not run on their key's home worker (rendezvous + failover only).
    pub failed_over: u64,
}

impl Counts {
    /// Warm hits per request (0 when there were none).
    pub fn warm_hit_ratio(&self) -> f64 {
        ratio(self.warm_hits as f64, self.requests as f64)
    }

    /// Share of the requests that waited for a slot.
    pub fn queued_ratio(&self) -> f64 {
        ratio(self.queued as f64, self.requests as f64)
    }

    /// Mean wait for a slot per request, milliseconds.
    pub fn mean_wait_ms(&self) -> f64 {
        ratio(self.wait_ms, self.requests as f64)
    }

    /// Share of the requests run away from their home worker.
    pub fn failed_over_ratio(&self) -> f64 {
        ratio(self.failed_over as f64, self.requests as f64)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// What one policy did with one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The policy.
    pub policy: Policy,
    /// Requests routed to each worker (by the worker's index), whole run.
    pub per_worker: Vec<u64>,
    /// Whole run.
    pub total: Counts,
    /// Before the churn, while the worker is gone, after it is back
    /// (all in `before` when there is no churn).
    pub phases: [Counts; 3],
    /// The first tenth of the absence, and the same number of requests right
    /// after the return: the transients the whole phases average away.
    pub transients: [Counts; 2],
}

impl Outcome {
    /// Largest per-worker request count over the mean.
    pub fn max_over_mean(&self) -> f64 {
        let mean = mean(&self.per_worker);
        ratio(self.per_worker.iter().copied().max().unwrap_or(0) as f64, mean)
    }

    /// Coefficient of variation (population standard deviation over mean) of
    /// the per-worker request counts.
    pub fn coefficient_of_variation(&self) -> f64 {
        let m = mean(&self.per_worker);
        let n = self.per_worker.len().max(1) as f64;
        let var = self.per_worker.iter().map(|&c| (c as f64 - m).powi(2)).sum::<f64>() / n;
        ratio(var.sqrt(), m)
    }
}

fn mean(xs: &[u64]) -> f64 {
    ratio(xs.iter().sum::<u64>() as f64, xs.len() as f64)
}

/// Simulated time in microseconds: integers keep the event heap totally ordered.
type Micros = u64;

fn micros(ms: f64) -> Micros {
    (ms * 1000.0).round() as Micros
}

#[derive(Debug, Clone, Copy)]
struct IdleRunner {
    function: usize,
    since: Micros,
}

#[derive(Debug)]
struct Worker {
    cfg: WorkerConfig,
    clock: Micros,
    /// Runs in progress: (end, function), earliest first.
    busy: BinaryHeap<Reverse<(Micros, usize)>>,
    /// Idle warm runners, least recently used first.
    idle: VecDeque<IdleRunner>,
}

/// Whether a run found a warm runner, and how long it waited for a slot.
#[derive(Debug, Clone, Copy)]
struct Started {
    warm: bool,
    waited: Micros,
}

impl Worker {
    fn new(cfg: WorkerConfig) -> Self {
        Self {
            cfg,
            clock: 0,
            busy: BinaryHeap::new(),
            idle: VecDeque::new(),
        }
    }

    /// Finishes the runs that ended by `now` and drops idle runners past the TTL.
    fn advance(&mut self, now: Micros) {
        while let Some(&Reverse((end, function))) = self.busy.peek() {
            if end > now {
                break;
            }
            self.busy.pop();
            self.release(function, end);
        }
        self.clock = self.clock.max(now);
        self.expire();
    }

    fn expire(&mut self) {
        let ttl = micros(self.cfg.idle_ttl_ms);
        while self
            .idle
            .front()
            .is_some_and(|r| r.since.saturating_add(ttl) <= self.clock)
        {
            self.idle.pop_front();
        }
    }

    fn is_full(&self) -> bool {
        self.busy.len() >= self.cfg.concurrency
    }

    /// A finished run's runner goes back idle, within the caps.
    fn release(&mut self, function: usize, at: Micros) {
        let of_key = self.idle.iter().filter(|r| r.function == function).count();
        if of_key >= self.cfg.warm_per_key {
            if let Some(oldest) = self.idle.iter().position(|r| r.function == function) {
                self.idle.remove(oldest);
            }
        }
        self.idle.push_back(IdleRunner { function, since: at });
        while self.idle.len() > self.cfg.warm_cap {
            self.idle.pop_front();
        }
    }

    /// Runs `req` arriving at `now`: waits for a slot when full, then takes
    /// the most recently idle runner of its function if there is one.
    fn run(&mut self, function: usize, run: Micros, now: Micros) -> Started {
        self.advance(now);
        let mut start = now;
        if self.is_full() {
            if let Some(Reverse((end, done))) = self.busy.pop() {
                self.release(done, end);
                start = end.max(now);
                self.clock = self.clock.max(start);
                self.expire();
            }
        }
        let warm = match self.idle.iter().rposition(|r| r.function == function) {
            Some(i) => {
                self.idle.remove(i);
                true
            }
            None => false,
        };
        self.busy.push(Reverse((start.saturating_add(run), function)));
        Started {
            warm,
            waited: start - now,
        }
    }
}

/// Name of worker `i`, as the dispatcher would see it (a pod address).
pub fn worker_name(i: usize) -> String {
    format!("lowcode-faas-worker-{i}:9090")
}

/// Key of function `k`, as the dispatcher would hash it (a deployment id).
pub fn function_key(k: usize) -> String {
    format!("fn-{k}@v1")
}

/// The worker `hash mod N` picks: the same stable hash as rendezvous, with no worker.
fn modulo_home(key: &str, live: usize) -> usize {
    (rendezvous::score(key, "") % live as u64) as usize
}

/// Per-function routing order over the live workers (indices into `live`).
#[derive(Debug)]
struct Routes {
    live: Vec<usize>,
    order: Vec<Vec<usize>>,
}

impl Routes {
    fn new(live: Vec<usize>, functions: usize, policy: Policy) -> Self {
        let names: Vec<String> = live.iter().map(|&w| worker_name(w)).collect();
        let order = match policy {
            Policy::RendezvousFailover | Policy::Rendezvous => (0..functions)
                .map(|k| rendezvous::rank(&function_key(k), &names))
                .collect(),
            Policy::ModuloHash => (0..functions)
                .map(|k| vec![modulo_home(&function_key(k), live.len())])
                .collect(),
            Policy::Random | Policy::RoundRobin => Vec::new(),
        };
        Self { live, order }
    }
}

/// Replays `trace` to `n` workers under `policy`. `seed` drives the random policy only.
pub fn simulate(
    policy: Policy,
    trace: &[Request],
    n: usize,
    functions: usize,
    cfg: WorkerConfig,
    churn: Option<Churn>,
    seed: u64,
) -> Outcome {
    let all: Vec<usize> = (0..n).collect();
    let mut routes = Routes::new(all.clone(), functions, policy);
    let mut workers: Vec<Worker> = (0..n).map(|_| Worker::new(cfg)).collect();
    let mut per_worker = vec![0u64; n];
    let mut phases = [Counts::default(); 3];
    let mut transients = [Counts::default(); 2];
    let mut rng = Rng::new(seed ^ 0x5eed_0f7a_b1e5);
    let mut turn = 0usize;

    for (i, req) in trace.iter().enumerate() {
        let phase = match churn {
            Some(c) if i >= c.return_at => 2,
            Some(c) if i >= c.leave_at => 1,
            _ => 0,
        };
        if let Some(c) = churn {
            if i == c.leave_at && n > 1 {
                routes = Routes::new(
                    all.iter().copied().filter(|&w| w != c.worker).collect(),
                    functions,
                    policy,
                );
            }
            if i == c.return_at && n > 1 {
                workers[c.worker] = Worker::new(cfg);
                routes = Routes::new(all.clone(), functions, policy);
            }
        }
        let now = micros(req.at_ms);
        let live = &routes.live;
        let (chosen, home) = match policy {
            Policy::RendezvousFailover => {
                let order = &routes.order[req.function];
                let home = live[order[0]];
                let free = order.iter().map(|&j| live[j]).find(|&w| {
                    workers[w].advance(now);
                    !workers[w].is_full()
                });
                (free.unwrap_or(home), home)
            }
            Policy::Rendezvous | Policy::ModuloHash => {
                let home = live[routes.order[req.function][0]];
                (home, home)
            }
            Policy::Random => {
                let w = live[rng.below(live.len())];
                (w, w)
            }
            Policy::RoundRobin => {
                let w = live[turn % live.len()];
                turn = turn.wrapping_add(1);
                (w, w)
            }
        };
        let started = workers[chosen].run(req.function, micros(req.run_ms), now);
        per_worker[chosen] += 1;
        let transient = churn.and_then(|c| {
            let window = (c.return_at.saturating_sub(c.leave_at) / 10).max(1);
            if (c.leave_at..c.leave_at + window).contains(&i) {
                Some(0)
            } else if (c.return_at..c.return_at + window).contains(&i) {
                Some(1)
            } else {
                None
            }
        });
        let mut counted = vec![&mut phases[phase]];
        if let Some(t) = transient {
            counted.push(&mut transients[t]);
        }
        for counts in counted {
            counts.requests += 1;
            counts.warm_hits += u64::from(started.warm);
            counts.queued += u64::from(started.waited > 0);
            counts.wait_ms += started.waited as f64 / 1000.0;
            counts.failed_over += u64::from(chosen != home);
        }
    }

    let mut total = Counts::default();
    for p in &phases {
        total.requests += p.requests;
        total.warm_hits += p.warm_hits;
        total.queued += p.queued;
        total.wait_ms += p.wait_ms;
        total.failed_over += p.failed_over;
    }
    Outcome {
        policy,
        per_worker,
        total,
        phases,
        transients,
    }
}

/// How many keys change worker when worker `leaving` of `n` leaves, and the
/// share of the traffic they carry (`weights[k]` is function k's share).
/// Returns `None` for policies without key affinity. For rendezvous and
/// `hash mod N` the same keys move back when the worker returns.
pub fn keys_moved(policy: Policy, n: usize, leaving: usize, weights: &[f64]) -> Option<(f64, f64)> {
    if !policy.is_key_affine() || n < 2 {
        return None;
    }
    let before = Routes::new((0..n).collect(), weights.len(), policy);
    let after = Routes::new((0..n).filter(|&w| w != leaving).collect(), weights.len(), policy);
    let (mut keys, mut traffic) = (0usize, 0.0);
    for (k, w) in weights.iter().enumerate() {
        if before.live[before.order[k][0]] != after.live[after.order[k][0]] {
            keys += 1;
            traffic += w;
        }
    }
    Some((keys as f64 / weights.len() as f64, traffic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{trace, TraceSpec, Zipf};

    const CFG: WorkerConfig = WorkerConfig {
        concurrency: 4,
        warm_cap: 3,
        warm_per_key: 2,
        idle_ttl_ms: 1000.0,
    };

    fn check_worker(steps: &[(usize, f64, f64)], expected_warm: &[bool]) {
        let mut w = Worker::new(CFG);
        let got: Vec<bool> = steps
            .iter()
            .map(|&(f, run, at)| w.run(f, micros(run), micros(at)).warm)
            .collect();
        assert_eq!(got, expected_warm);
    }

    #[test]
    fn a_finished_run_leaves_a_warm_runner_of_its_function() {
        check_worker(
            &[(1, 10.0, 0.0), (1, 10.0, 20.0), (2, 10.0, 40.0)],
            &[false, true, false],
        );
    }

    #[test]
    fn a_busy_runner_is_not_shared() {
        check_worker(&[(1, 100.0, 0.0), (1, 10.0, 1.0)], &[false, false]);
    }

    #[test]
    fn idle_runners_expire_after_the_ttl() {
        check_worker(&[(1, 10.0, 0.0), (1, 10.0, 1500.0)], &[false, false]);
    }

    #[test]
    fn the_least_recently_used_runner_is_evicted_at_the_cap() {
        // Functions 1, 2, 3, 4 finish in that order; the cap of 3 evicts 1.
        check_worker(
            &[
                (1, 1.0, 0.0),
                (2, 1.0, 2.0),
                (3, 1.0, 4.0),
                (4, 1.0, 6.0),
                (1, 1.0, 10.0),
                (4, 1.0, 12.0),
            ],
            &[false, false, false, false, false, true],
        );
    }

    #[test]
    fn a_full_worker_queues_until_its_earliest_slot() {
        let mut w = Worker::new(CFG);
        for _ in 0..4 {
            w.run(1, micros(100.0), 0);
        }
        let s = w.run(1, micros(10.0), micros(50.0));
        assert_eq!(s.waited, micros(50.0));
        assert!(s.warm, "the slot's runner was freed for it");
    }

    fn spec(functions: usize) -> TraceSpec {
        TraceSpec {
            functions,
            requests: 20_000,
            zipf_s: 1.1,
            arrivals_per_ms: 0.5,
            mean_run_ms: 10.0,
        }
    }

    const SIM_CFG: WorkerConfig = WorkerConfig {
        concurrency: 8,
        warm_cap: 16,
        warm_per_key: 8,
        idle_ttl_ms: 60_000.0,
    };

    #[test]
    fn same_seed_same_outcome() {
        let t = trace(&spec(200), &mut Rng::new(3));
        for p in Policy::ALL {
            assert_eq!(
                simulate(p, &t, 5, 200, SIM_CFG, None, 3),
                simulate(p, &t, 5, 200, SIM_CFG, None, 3)
            );
        }
    }

    #[test]
    fn affinity_beats_spraying_on_warm_hits() {
        let t = trace(&spec(200), &mut Rng::new(3));
        let hrw = simulate(Policy::RendezvousFailover, &t, 5, 200, SIM_CFG, None, 3);
        let random = simulate(Policy::Random, &t, 5, 200, SIM_CFG, None, 3);
        let rr = simulate(Policy::RoundRobin, &t, 5, 200, SIM_CFG, None, 3);
        assert!(hrw.total.warm_hit_ratio() > random.total.warm_hit_ratio());
        assert!(hrw.total.warm_hit_ratio() > rr.total.warm_hit_ratio());
        assert_eq!(hrw.total.requests, 20_000);
        assert_eq!(hrw.per_worker.iter().sum::<u64>(), 20_000);
    }

    #[test]
    fn churn_counts_every_request_in_a_phase() {
        let t = trace(&spec(100), &mut Rng::new(9));
        let churn = Churn {
            worker: 2,
            leave_at: 5_000,
            return_at: 10_000,
        };
        let o = simulate(Policy::RendezvousFailover, &t, 4, 100, SIM_CFG, Some(churn), 9);
        assert_eq!(o.phases.map(|c| c.requests), [5_000, 5_000, 10_000]);
        assert_eq!(o.transients.map(|c| c.requests), [500, 500]);
    }

    #[test]
    fn rendezvous_moves_about_one_nth_of_the_keys_and_mod_n_moves_most() {
        let weights: Vec<f64> = {
            let z = Zipf::new(1000, 1.1);
            (0..1000).map(|k| z.probability(k)).collect()
        };
        let (hrw, _) = keys_moved(Policy::Rendezvous, 10, 5, &weights).unwrap_or((1.0, 1.0));
        let (modulo, _) = keys_moved(Policy::ModuloHash, 10, 5, &weights).unwrap_or((0.0, 0.0));
        assert!((0.06..0.14).contains(&hrw), "rendezvous moved {hrw}");
        assert!(modulo > 0.8, "mod N moved {modulo}");
        assert_eq!(keys_moved(Policy::Random, 10, 5, &weights), None);
    }
}
