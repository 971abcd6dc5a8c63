//! The `routing-sim` command: its flags and the Markdown report.

use std::fmt::Write as _;

use crate::sim::{keys_moved, simulate, Churn, Outcome, Policy, WorkerConfig};
use crate::workload::{trace, Rng, TraceSpec, Zipf};

/// Everything a run depends on; the same parameters print the same report.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Workers (`--workers`).
    pub workers: usize,
    /// Distinct functions (`--functions`).
    pub functions: usize,
    /// Requests (`--requests`).
    pub requests: usize,
    /// Zipf exponent of function popularity (`--zipf`).
    pub zipf: f64,
    /// Seed of the trace and of the random policy (`--seed`).
    pub seed: u64,
    /// Idle warm runners per worker in all (`--warm-cap`, like `LOWCODE_FAAS_WARM_MAX_CONTAINERS`).
    pub warm_cap: usize,
    /// Idle warm runners per function per worker (`--warm-per-key`, like `LOWCODE_FAAS_WARM_MAX_PER_KEY`).
    pub warm_per_key: usize,
    /// Runs at once per worker (`--concurrency`, like `LOWCODE_FAAS_MAX_CONCURRENT_RUNS`).
    pub concurrency: usize,
    /// Idle TTL in simulated ms (`--idle-ttl-ms`, like `LOWCODE_FAAS_WARM_IDLE_TTL_MS`).
    pub idle_ttl_ms: f64,
    /// Mean run time in ms (`--run-ms`).
    pub run_ms: f64,
    /// Offered load as a share of the total slots (`--load`).
    pub load: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            workers: 10,
            functions: 1000,
            requests: 200_000,
            zipf: 1.1,
            seed: 1,
            warm_cap: 16,
            warm_per_key: 8,
            concurrency: 32,
            idle_ttl_ms: 60_000.0,
            run_ms: 100.0,
            load: 0.7,
        }
    }
}

/// Usage text of `routing-sim --help`.
pub const USAGE: &str = "\
routing-sim: compares worker-selection policies for lowcode-faas dispatchers

Usage: routing-sim [--workers N] [--functions M] [--requests R] [--zipf S] [--seed X]
                   [--warm-cap C] [--warm-per-key K] [--concurrency P] [--idle-ttl-ms T]
                   [--run-ms D] [--load L]

  --workers       workers behind the dispatcher (default 10)
  --functions     distinct functions, the routing keys (default 1000)
  --requests      requests in the trace (default 200000)
  --zipf          Zipf exponent of function popularity; 0 is uniform (default 1.1)
  --seed          seed of the trace and of the random policy (default 1)
  --warm-cap      idle warm runners per worker, LRU (default 16, like LOWCODE_FAAS_WARM_MAX_CONTAINERS)
  --warm-per-key  idle warm runners per function per worker (default 8, like LOWCODE_FAAS_WARM_MAX_PER_KEY)
  --concurrency   runs at once per worker (default 32, like LOWCODE_FAAS_MAX_CONCURRENT_RUNS)
  --idle-ttl-ms   idle runner TTL in simulated ms (default 60000, like LOWCODE_FAAS_WARM_IDLE_TTL_MS)
  --run-ms        mean run time in ms, exponential (default 100)
  --load          offered load as a share of all workers' slots, 0 < L (default 0.7)
";

/// Why the arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgsError {
    /// `--help` was asked for.
    #[error("--help was asked for")]
    Help,
    /// Anything else, with a message naming the flag.
    #[error("{0}")]
    Invalid(String),
}

impl Params {
    /// Parses `--flag value` / `--flag=value` arguments (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, ArgsError> {
        let mut p = Params::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Err(ArgsError::Help);
            }
            let (flag, value) = match arg.split_once('=') {
                Some((f, v)) => (f.to_string(), v.to_string()),
                None => {
                    let v = args
                        .next()
                        .ok_or_else(|| ArgsError::Invalid(format!("{arg} needs a value")))?;
                    (arg, v)
                }
            };
            match flag.as_str() {
                "--workers" => p.workers = number(&flag, &value)?,
                "--functions" => p.functions = number(&flag, &value)?,
                "--requests" => p.requests = number(&flag, &value)?,
                "--zipf" => p.zipf = number(&flag, &value)?,
                "--seed" => p.seed = number(&flag, &value)?,
                "--warm-cap" => p.warm_cap = number(&flag, &value)?,
                "--warm-per-key" => p.warm_per_key = number(&flag, &value)?,
                "--concurrency" => p.concurrency = number(&flag, &value)?,
                "--idle-ttl-ms" => p.idle_ttl_ms = number(&flag, &value)?,
                "--run-ms" => p.run_ms = number(&flag, &value)?,
                "--load" => p.load = number(&flag, &value)?,
                other => return Err(ArgsError::Invalid(format!("unknown flag {other} (see --help)"))),
            }
        }
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), ArgsError> {
        let bad = |m: &str| Err(ArgsError::Invalid(m.to_string()));
        if self.workers == 0 || self.functions == 0 || self.requests == 0 {
            return bad("--workers, --functions and --requests must be at least 1");
        }
        if self.warm_cap == 0 || self.warm_per_key == 0 || self.concurrency == 0 {
            return bad("--warm-cap, --warm-per-key and --concurrency must be at least 1");
        }
        if !(self.zipf.is_finite() && self.zipf >= 0.0) {
            return bad("--zipf must be a number ≥ 0");
        }
        if !(self.load.is_finite() && self.load > 0.0) {
            return bad("--load must be a number > 0");
        }
        if !(self.run_ms.is_finite() && self.run_ms > 0.0 && self.idle_ttl_ms.is_finite() && self.idle_ttl_ms > 0.0) {
            return bad("--run-ms and --idle-ttl-ms must be numbers > 0");
        }
        Ok(())
    }

    fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            concurrency: self.concurrency,
            warm_cap: self.warm_cap,
            warm_per_key: self.warm_per_key.min(self.warm_cap),
            idle_ttl_ms: self.idle_ttl_ms,
        }
    }

    /// The churn of the second table: the middle worker leaves after a third
    /// of the requests and comes back after two thirds.
    fn churn(&self) -> Churn {
        Churn {
            worker: self.workers / 2,
            leave_at: self.requests / 3,
            return_at: self.requests * 2 / 3,
        }
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, ArgsError> {
    value
        .parse()
        .map_err(|_| ArgsError::Invalid(format!("{flag}: not a valid number: {value:?}")))
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// Runs every policy on one trace and returns the Markdown report.
pub fn run(p: &Params) -> String {
    let cfg = p.worker_config();
    let spec = TraceSpec {
        functions: p.functions,
        requests: p.requests,
        zipf_s: p.zipf,
        arrivals_per_ms: p.load * (p.workers * p.concurrency) as f64 / p.run_ms,
        mean_run_ms: p.run_ms,
    };
    let requests = trace(&spec, &mut Rng::new(p.seed));
    let zipf = Zipf::new(p.functions, p.zipf);
    let weights: Vec<f64> = (0..p.functions).map(|k| zipf.probability(k)).collect();
    let churn = p.churn();

    let steady: Vec<Outcome> = Policy::ALL
        .iter()
        .map(|&pol| simulate(pol, &requests, p.workers, p.functions, cfg, None, p.seed))
        .collect();
    let churned: Vec<Outcome> = Policy::ALL
        .iter()
        .map(|&pol| simulate(pol, &requests, p.workers, p.functions, cfg, Some(churn), p.seed))
        .collect();

    let mut out = String::new();
    let simulated_s = requests.last().map_or(0.0, |r| r.at_ms / 1000.0);
    let _ = writeln!(
        out,
        "### {} workers × {} functions, zipf s = {}, {} requests, seed {}\n",
        p.workers, p.functions, p.zipf, p.requests, p.seed
    );
    let _ = writeln!(
        out,
        "Per worker: {} runs at once, warm cap {} idle runners (≤ {} per function), idle TTL {} ms. \
         Mean run {} ms, offered load {} of all slots ({:.2} requests/ms, {:.0} s simulated). \
         The hottest function gets {} of the requests.\n",
        cfg.concurrency,
        cfg.warm_cap,
        cfg.warm_per_key,
        p.idle_ttl_ms,
        p.run_ms,
        pct(p.load),
        spec.arrivals_per_ms,
        simulated_s,
        pct(weights.first().copied().unwrap_or(0.0)),
    );
    let _ = writeln!(out, "| policy | max/mean requests per worker | CV of requests per worker | warm hits | queued for a slot | mean wait (ms) | failed over |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for o in &steady {
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.3} | {} | {} | {:.1} | {} |",
            o.policy.label(),
            o.max_over_mean(),
            o.coefficient_of_variation(),
            pct(o.total.warm_hit_ratio()),
            pct(o.total.queued_ratio()),
            o.total.mean_wait_ms(),
            pct(o.total.failed_over_ratio()),
        );
    }
    let _ = writeln!(
        out,
        "\nWorker {} of {} leaves after request {} and comes back (empty) at request {}:\n",
        churn.worker, p.workers, churn.leave_at, churn.return_at
    );
    let _ = writeln!(out, "| policy | keys that move when it leaves | their share of traffic | warm hits before | while it is gone (first tenth) | after it is back (first tenth) |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for o in &churned {
        let moved = match keys_moved(o.policy, p.workers, churn.worker, &weights) {
            Some((keys, traffic)) => [pct(keys), pct(traffic)],
            None => ["– (no key affinity)".to_string(), "–".to_string()],
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} ({}) | {} ({}) |",
            o.policy.label(),
            moved[0],
            moved[1],
            pct(o.phases[0].warm_hit_ratio()),
            pct(o.phases[1].warm_hit_ratio()),
            pct(o.transients[0].warm_hit_ratio()),
            pct(o.phases[2].warm_hit_ratio()),
            pct(o.transients[1].warm_hit_ratio()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags_in_both_forms() {
        let p = Params::parse(args(
            "--workers 3 --functions=50 --zipf 0.8 --seed=9 --warm-cap 4 --requests 10",
        ));
        assert_eq!(
            p,
            Ok(Params {
                workers: 3,
                functions: 50,
                zipf: 0.8,
                seed: 9,
                warm_cap: 4,
                requests: 10,
                ..Params::default()
            })
        );
        assert_eq!(Params::parse(args("--help")), Err(ArgsError::Help));
    }

    #[test]
    fn bad_flags_name_the_flag() {
        for (a, needle) in [
            ("--workers", "--workers needs a value"),
            ("--workers x", "--workers"),
            ("--workers 0", "--workers"),
            ("--zipf -1", "--zipf"),
            ("--frobnicate 1", "unknown flag --frobnicate"),
        ] {
            match Params::parse(args(a)) {
                Err(ArgsError::Invalid(m)) => assert!(m.contains(needle), "{a}: {m}"),
                other => panic!("{a}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_report_is_deterministic_and_lists_every_policy() {
        let p = Params {
            workers: 3,
            functions: 50,
            requests: 3_000,
            ..Params::default()
        };
        let a = run(&p);
        assert_eq!(a, run(&p));
        for pol in Policy::ALL {
            assert_eq!(a.matches(pol.label()).count(), 2, "{}", pol.label());
        }
    }
}
