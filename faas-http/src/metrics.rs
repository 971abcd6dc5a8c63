//! Prometheus metrics (text format at `GET /metrics`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use faas_adapters::logs::{DropReason, SinkStats};

use faas_domain::EngineStats;
use faas_ports::{RunResult, RuntimeStatus, StartKind};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The value of a worker's `worker_healthy` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerGauge {
    /// 1: the dispatcher routes to it.
    Healthy,
    /// 0: marked unhealthy; tried only when no healthy worker is left.
    Unhealthy,
}

/// The metrics of one process.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    runs: IntCounterVec,
    run_seconds: HistogramVec,
    starts: IntCounterVec,
    in_flight: IntGauge,
    queued: IntGauge,
    log_entries: IntCounterVec,
    log_drops: IntCounterVec,
    pool_runners: IntGaugeVec,
    pool_events: IntCounterVec,
    worker_requests: IntCounterVec,
    worker_failures: IntCounterVec,
    worker_healthy: IntGaugeVec,
    log_sinks: Vec<(&'static str, Arc<SinkStats>)>,
    /// Serialises the mirroring of outside counters into the registry, so
    /// two scrapes at once never add the same increase twice.
    mirror: Arc<Mutex<()>>,
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("lowcode_faas".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route"),
            &["route"],
        )?;
        let runs = IntCounterVec::new(
            Opts::new("runs_total", "Runs by outcome (success or the error code)"),
            &["outcome"],
        )?;
        let run_seconds = HistogramVec::new(
            HistogramOpts::new("run_duration_seconds", "Wall time of runs").buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
            ]),
            &["status"],
        )?;
        let starts = IntCounterVec::new(
            Opts::new("starts_total", "Run starts by kind (cold, prewarm, warm)"),
            &["kind"],
        )?;
        let log_entries = IntCounterVec::new(
            Opts::new(
                "function_log_entries_total",
                "Function-log entries by sink and result (sent: written, stored or accepted; failed: the delivery failed)",
            ),
            &["sink", "result"],
        )?;
        let log_drops = IntCounterVec::new(
            Opts::new(
                "function_log_dropped_total",
                "Function-log entries dropped before delivery, by sink and reason (queue_full, queue_bytes, too_large, evicted, shutdown)",
            ),
            &["sink", "reason"],
        )?;
        let pool_runners = IntGaugeVec::new(
            Opts::new(
                "pool_runners",
                "Runners of the runtime's pool by state (prewarm_idle, launching, warm_idle, warm_busy, warm_keys, prewarm_target)",
            ),
            &["state"],
        )?;
        let pool_events = IntCounterVec::new(
            Opts::new(
                "pool_events_total",
                "Pool events: hit (a run served by a pool runner), miss (a cold start instead), eviction, launch_failure",
            ),
            &["event"],
        )?;
        let worker_requests = IntCounterVec::new(
            Opts::new(
                "worker_requests_total",
                "Runs a proxy-mode dispatcher sent to each worker (every attempt, failovers included)",
            ),
            &["worker"],
        )?;
        let worker_failures = IntCounterVec::new(
            Opts::new(
                "worker_failures_total",
                "Attempts that failed at the worker: no connection, a transport error after sending, or a 5xx reply",
            ),
            &["worker"],
        )?;
        let worker_healthy = IntGaugeVec::new(
            Opts::new(
                "worker_healthy",
                "1 while the dispatcher routes to the worker, 0 while it is marked unhealthy",
            ),
            &["worker"],
        )?;
        let in_flight = IntGauge::new("runs_in_flight", "Runs executing now")?;
        let queued = IntGauge::new("runs_queued", "Invokes waiting for a run slot")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(run_seconds.clone()))?;
        registry.register(Box::new(starts.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(queued.clone()))?;
        registry.register(Box::new(log_entries.clone()))?;
        registry.register(Box::new(log_drops.clone()))?;
        registry.register(Box::new(pool_runners.clone()))?;
        registry.register(Box::new(pool_events.clone()))?;
        registry.register(Box::new(worker_requests.clone()))?;
        registry.register(Box::new(worker_failures.clone()))?;
        registry.register(Box::new(worker_healthy.clone()))?;
        for kind in ["cold", "prewarm", "warm"] {
            starts.with_label_values(&[kind]);
        }
        Ok(Self {
            registry,
            requests,
            request_seconds,
            runs,
            run_seconds,
            starts,
            in_flight,
            queued,
            log_entries,
            log_drops,
            pool_runners,
            pool_events,
            worker_requests,
            worker_failures,
            worker_healthy,
            log_sinks: Vec::new(),
            mirror: Arc::new(Mutex::new(())),
        })
    }

    /// Also exports the counters of a function-log sink (`sink` is its label).
    pub fn with_log_sink(mut self, sink: &'static str, stats: Arc<SinkStats>) -> Self {
        for result in ["sent", "failed"] {
            self.log_entries.with_label_values(&[sink, result]);
        }
        for reason in DropReason::ALL {
            self.log_drops.with_label_values(&[sink, reason.as_str()]);
        }
        self.log_sinks.push((sink, stats));
        self
    }

    /// Counts one served request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.request_seconds
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one attempt to run on `worker` (a base URL).
    pub fn worker_request(&self, worker: &str) {
        self.worker_requests.with_label_values(&[worker]).inc();
    }

    /// Counts one failed attempt on `worker`.
    pub fn worker_failure(&self, worker: &str) {
        self.worker_failures.with_label_values(&[worker]).inc();
        self.worker_requests.with_label_values(&[worker]);
    }

    /// Sets the health gauge of `worker`: 1 while it gets its share, 0 while not.
    pub fn worker_health(&self, worker: &str, routable: WorkerGauge) {
        self.worker_failures.with_label_values(&[worker]);
        self.worker_requests.with_label_values(&[worker]);
        self.worker_healthy
            .with_label_values(&[worker])
            .set(i64::from(routable == WorkerGauge::Healthy));
    }

    /// Drops every series of a worker that left the list (DNS).
    pub fn forget_worker(&self, worker: &str) {
        let _ = self.worker_requests.remove_label_values(&[worker]);
        let _ = self.worker_failures.remove_label_values(&[worker]);
        let _ = self.worker_healthy.remove_label_values(&[worker]);
    }

    /// Counts one run by outcome.
    pub fn observe_run(&self, result: &RunResult) {
        let outcome = result.error_code.map_or("success", |c| c.as_str());
        self.runs.with_label_values(&[outcome]).inc();
        let status = if result.error_code.is_some() {
            "failed"
        } else {
            "success"
        };
        self.run_seconds
            .with_label_values(&[status])
            .observe(result.duration_ms as f64 / 1000.0);
    }

    /// The text exposition, with gauges and counters refreshed from the
    /// engine and the runtime's pool.
    pub fn render(&self, stats: Option<EngineStats>, runtime: Option<RuntimeStatus>) -> String {
        let _mirroring = self.mirror.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stats) = stats {
            self.in_flight.set(i64::try_from(stats.in_flight).unwrap_or(i64::MAX));
            self.queued.set(i64::try_from(stats.queued).unwrap_or(i64::MAX));
            for kind in StartKind::ALL {
                mirror(&self.starts, &[kind.as_str()], stats.starts.get(kind));
            }
        }
        if let Some(pool) = runtime.and_then(|r| r.pool) {
            let gauge = |state: &str, value: usize| {
                self.pool_runners
                    .with_label_values(&[state])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            };
            gauge("prewarm_target", pool.prewarm_target);
            gauge("prewarm_idle", pool.prewarm_idle);
            gauge("launching", pool.launching);
            gauge("warm_idle", pool.warm_idle);
            gauge("warm_busy", pool.warm_busy);
            gauge("warm_keys", pool.warm_keys);
            mirror(&self.pool_events, &["hit"], pool.hits);
            mirror(&self.pool_events, &["miss"], pool.misses);
            mirror(&self.pool_events, &["eviction"], pool.evictions);
            mirror(&self.pool_events, &["launch_failure"], pool.launch_failures);
        }
        for (sink, stats) in &self.log_sinks {
            mirror(&self.log_entries, &[sink, "sent"], stats.sent());
            mirror(&self.log_entries, &[sink, "failed"], stats.failed());
            for reason in DropReason::ALL {
                mirror(&self.log_drops, &[sink, reason.as_str()], stats.dropped(reason));
            }
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Raises a counter to an outside count (callers hold the mirror lock).
fn mirror(counters: &IntCounterVec, labels: &[&str], value: u64) {
    let counter = counters.with_label_values(labels);
    let seen = counter.get();
    if value > seen {
        counter.inc_by(value - seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::new().unwrap();
        m.observe_request("/functions", "GET", 200, Duration::from_millis(3));
        let text = m.render(
            Some(EngineStats {
                in_flight: 2,
                queued: 1,
                starts: faas_domain::StartCounts {
                    cold: 5,
                    prewarm: 7,
                    warm: 0,
                },
            }),
            Some(RuntimeStatus {
                execution_mode: "prewarm",
                pool: Some(faas_ports::PoolStatus {
                    prewarm_target: 4,
                    prewarm_idle: 3,
                    warm_busy: 2,
                    hits: 7,
                    misses: 5,
                    ..faas_ports::PoolStatus::default()
                }),
            }),
        );
        assert!(text.contains("lowcode_faas_http_requests_total{method=\"GET\",route=\"/functions\",status=\"200\"} 1"));
        assert!(text.contains("lowcode_faas_runs_in_flight 2"));
        assert!(text.contains("lowcode_faas_runs_queued 1"));
        assert!(text.contains("lowcode_faas_starts_total{kind=\"cold\"} 5"));
        assert!(text.contains("lowcode_faas_starts_total{kind=\"warm\"} 0"));
        assert!(text.contains("lowcode_faas_starts_total{kind=\"prewarm\"} 7"));
        assert!(text.contains("lowcode_faas_pool_runners{state=\"prewarm_idle\"} 3"));
        assert!(text.contains("lowcode_faas_pool_runners{state=\"warm_busy\"} 2"));
        assert!(text.contains("lowcode_faas_pool_events_total{event=\"hit\"} 7"));
        assert!(text.contains("lowcode_faas_pool_events_total{event=\"miss\"} 5"));
    }

    #[test]
    fn renders_and_forgets_worker_series() {
        let m = Metrics::new().unwrap();
        let w = "http://10.0.0.1:9090";
        m.worker_health(w, WorkerGauge::Healthy);
        m.worker_request(w);
        m.worker_request(w);
        m.worker_failure(w);
        m.worker_health(w, WorkerGauge::Unhealthy);
        let text = m.render(None, None);
        assert!(
            text.contains("lowcode_faas_worker_requests_total{worker=\"http://10.0.0.1:9090\"} 2"),
            "{text}"
        );
        assert!(text.contains("lowcode_faas_worker_failures_total{worker=\"http://10.0.0.1:9090\"} 1"));
        assert!(text.contains("lowcode_faas_worker_healthy{worker=\"http://10.0.0.1:9090\"} 0"));
        m.forget_worker(w);
        assert!(!m.render(None, None).contains("10.0.0.1"));
    }

    #[test]
    fn exports_each_log_sink_by_result_and_drop_reason() {
        let loki = Arc::new(SinkStats::default());
        let memory = Arc::new(SinkStats::default());
        loki.add_dropped(DropReason::QueueBytes, 3);
        let m = Metrics::new()
            .unwrap()
            .with_log_sink("loki", Arc::clone(&loki))
            .with_log_sink("memory", Arc::clone(&memory));
        let text = m.render(None, None);
        assert!(
            text.contains("lowcode_faas_function_log_dropped_total{reason=\"queue_bytes\",sink=\"loki\"} 3"),
            "{text}"
        );
        loki.add_dropped(DropReason::QueueBytes, 2);
        loki.add_sent(7);
        memory.add_dropped(DropReason::Evicted, 1);
        let text = m.render(None, None);
        assert!(text.contains("lowcode_faas_function_log_dropped_total{reason=\"queue_bytes\",sink=\"loki\"} 5"));
        assert!(text.contains("lowcode_faas_function_log_entries_total{result=\"sent\",sink=\"loki\"} 7"));
        assert!(text.contains("lowcode_faas_function_log_entries_total{result=\"failed\",sink=\"memory\"} 0"));
        assert!(text.contains("lowcode_faas_function_log_dropped_total{reason=\"evicted\",sink=\"memory\"} 1"));
        assert!(text.contains("lowcode_faas_function_log_dropped_total{reason=\"shutdown\",sink=\"loki\"} 0"));
    }
}
