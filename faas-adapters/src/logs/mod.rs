//! Function-log sinks that need no backend (docs/api.md): the legacy prefixed
//! stdout line, JSON lines for Docker/Promtail, the bounded in-memory buffer
//! that `GET /function-logs` searches, and a fan-out to several sinks; what
//! every sink counts ([`SinkStats`]) and the bounds of a queue in entries and
//! bytes ([`QueueLimits`]). With a pushing sink (`loki`, `elasticsearch`,
//! `webhook`), [`push`] is the bounded, batched queue they share.

mod buffer;
#[cfg(feature = "log-push")]
pub mod push;
mod stats;
#[cfg(all(test, feature = "log-push"))]
pub(crate) mod test_receiver;

use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use faas_ports::{LogEntry, LogLevel, LogSink, PortError, StartKind};

pub use buffer::{LogBuffer, LogFilter};
pub(crate) use stats::QueueBudget;
pub use stats::{entry_bytes, DropReason, QueueLimits, SinkStats, ENTRY_OVERHEAD_BYTES};

/// `log_stream` value of the `docker_json` / `promtail` lines.
pub const LOG_STREAM: &str = "lowcode_faas_function_execution";
/// Prefix of the legacy stdout lines.
pub const STDOUT_PREFIX: &str = "[function-log] ";

/// How [`StdoutSink`] formats a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutFormat {
    /// `[function-log] <entry JSON>` (the legacy form).
    Prefixed,
    /// `<entry JSON with "log_stream">`, one object per line, for Docker's
    /// json-file driver and Promtail.
    DockerJson,
}

/// A run's lines waiting for the writer thread, with what they reserved.
struct Pending {
    text: String,
    entries: usize,
    bytes: usize,
}

/// Writes every entry as one line on the process's stdout.
///
/// `emit` never blocks a run: a run's lines go into a queue bounded in
/// entries and bytes ([`QueueLimits`]) drained by a dedicated writer thread;
/// when stdout cannot keep up (a stalled pipe, a blocking log driver) and the
/// queue is full, the run's lines are dropped and counted ([`StdoutSink::stats`]).
#[derive(Debug, Clone)]
pub struct StdoutSink {
    format: StdoutFormat,
    queue: std::sync::mpsc::SyncSender<Pending>,
    budget: Arc<QueueBudget>,
    stats: Arc<SinkStats>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("entries", &self.entries).finish()
    }
}

impl StdoutSink {
    /// A sink writing lines of this format with a queue of `limits`; starts
    /// its writer thread.
    pub fn new(format: StdoutFormat, limits: QueueLimits) -> Self {
        // The budget bounds the queue; the channel only needs a slot per entry.
        let (queue, lines) = std::sync::mpsc::sync_channel::<Pending>(limits.max_entries.max(1));
        let budget = Arc::new(QueueBudget::new(limits));
        let stats = Arc::new(SinkStats::default());
        let (writer_budget, writer_stats) = (Arc::clone(&budget), Arc::clone(&stats));
        let spawned = std::thread::Builder::new()
            .name("function-log-stdout".into())
            .spawn(move || {
                for pending in lines {
                    writer_budget.release(pending.entries, pending.bytes);
                    let mut out = std::io::stdout().lock();
                    match out.write_all(pending.text.as_bytes()).and_then(|()| out.flush()) {
                        Ok(()) => writer_stats.add_sent(pending.entries as u64),
                        // stdout is gone: keep draining so senders never block.
                        Err(_) => writer_stats.add_failed(pending.entries as u64),
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the function-log writer thread; stdout lines will be dropped");
        }
        Self {
            format,
            queue,
            budget,
            stats,
        }
    }

    /// The sink's counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        Arc::clone(&self.stats)
    }

    /// The line for one entry (without the newline).
    pub fn line(&self, entry: &LogEntry) -> String {
        match self.format {
            StdoutFormat::Prefixed => format!("{STDOUT_PREFIX}{}", entry_json(entry)),
            StdoutFormat::DockerJson => serde_json::to_string(&DockerLine {
                entry,
                log_stream: LOG_STREAM,
            })
            .unwrap_or_default(),
        }
    }
}

/// A `docker_json` line: the entry's fields in the documented order, then `log_stream`.
#[derive(serde::Serialize)]
struct DockerLine<'a> {
    #[serde(flatten)]
    entry: &'a LogEntry,
    log_stream: &'static str,
}

/// The entry as JSON, fields in the documented order.
pub fn entry_json(entry: &LogEntry) -> String {
    serde_json::to_string(entry).unwrap_or_default()
}

/// An entry as the Go version wrote it to Elasticsearch and webhooks:
/// `run_id, execution_id, function_name, collection_path,
/// deployment_version, deployment_id, ts, level, message`, with
/// `execution_id`, `collection_path`, `deployment_version` and
/// `deployment_id` left out when empty or 0; then `start_kind` (an addition
/// of this implementation, as in the other sinks).
#[derive(Debug, serde::Serialize)]
pub struct GoDocument<'a> {
    run_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    execution_id: &'a str,
    function_name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    collection_path: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    deployment_version: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    deployment_id: &'a str,
    ts: &'a str,
    level: LogLevel,
    message: &'a str,
    start_kind: StartKind,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl<'a> GoDocument<'a> {
    /// The document of one entry.
    pub fn of(e: &'a LogEntry) -> Self {
        Self {
            run_id: &e.run_id,
            execution_id: &e.execution_id,
            function_name: &e.function_name,
            collection_path: &e.collection_path,
            deployment_version: e.deployment_version,
            deployment_id: &e.deployment_id,
            ts: &e.ts,
            level: e.level,
            message: &e.message,
            start_kind: e.start_kind,
        }
    }
}

#[async_trait]
impl LogSink for StdoutSink {
    async fn emit(&self, entries: &[LogEntry]) -> Result<(), PortError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for entry in entries {
            text.push_str(&self.line(entry));
            text.push('\n');
        }
        let n = entries.len();
        let bytes = text.len();
        // One message per run keeps a run's lines together.
        if let Err(reason) = self.budget.try_reserve(n, bytes) {
            self.stats.add_dropped(reason, n as u64);
            return Ok(());
        }
        let pending = Pending {
            text,
            entries: n,
            bytes,
        };
        if self.queue.try_send(pending).is_err() {
            self.budget.release(n, bytes);
            self.stats.add_dropped(DropReason::QueueFull, n as u64);
        }
        Ok(())
    }
}

/// Hands every entry to each sink in turn; a failing sink does not stop the others.
#[derive(Debug, Clone)]
pub struct FanoutSink {
    sinks: Vec<Arc<dyn LogSink>>,
}

impl FanoutSink {
    /// A fan-out over these sinks.
    pub fn new(sinks: Vec<Arc<dyn LogSink>>) -> Self {
        Self { sinks }
    }
}

#[async_trait]
impl LogSink for FanoutSink {
    async fn emit(&self, entries: &[LogEntry]) -> Result<(), PortError> {
        let mut first_error = None;
        for sink in &self.sinks {
            if let Err(e) = sink.emit(entries).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// One entry for the tests of the sinks.
#[cfg(test)]
pub(crate) fn test_entry(run: &str, function: &str, message: &str) -> LogEntry {
    LogEntry {
        run_id: run.into(),
        execution_id: run.into(),
        function_name: function.into(),
        collection_path: String::new(),
        deployment_version: 1,
        deployment_id: format!("{function}@v1"),
        ts: "2026-01-01T00:00:00.000Z".into(),
        level: LogLevel::Info,
        message: message.into(),
        start_kind: StartKind::Cold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_lines_keep_the_spec_field_order() {
        let e = test_entry("run-1", "f", "a 7");
        let prefixed = StdoutSink::new(StdoutFormat::Prefixed, QueueLimits::default()).line(&e);
        assert_eq!(
            prefixed,
            r#"[function-log] {"run_id":"run-1","execution_id":"run-1","function_name":"f","collection_path":"","deployment_version":1,"deployment_id":"f@v1","ts":"2026-01-01T00:00:00.000Z","level":"info","message":"a 7","start_kind":"cold"}"#
        );
        let docker = StdoutSink::new(StdoutFormat::DockerJson, QueueLimits::default()).line(&e);
        let v: serde_json::Value = serde_json::from_str(&docker).unwrap();
        assert_eq!(v["log_stream"], LOG_STREAM);
        assert_eq!(v["message"], "a 7");
        assert!(docker.starts_with(r#"{"run_id":"run-1","execution_id""#), "{docker}");
    }

    #[test]
    fn go_documents_leave_out_what_go_left_out() {
        let mut e = test_entry("run-1", "f", "m");
        assert_eq!(
            serde_json::to_string(&GoDocument::of(&e)).unwrap(),
            r#"{"run_id":"run-1","execution_id":"run-1","function_name":"f","deployment_version":1,"deployment_id":"f@v1","ts":"2026-01-01T00:00:00.000Z","level":"info","message":"m","start_kind":"cold"}"#
        );
        e.collection_path = "team".into();
        e.deployment_version = 0;
        e.deployment_id.clear();
        e.execution_id.clear();
        assert_eq!(
            serde_json::to_string(&GoDocument::of(&e)).unwrap(),
            r#"{"run_id":"run-1","function_name":"f","collection_path":"team","ts":"2026-01-01T00:00:00.000Z","level":"info","message":"m","start_kind":"cold"}"#
        );
    }

    #[tokio::test]
    async fn stdout_queue_is_bounded_in_bytes_and_counts_drops() {
        // 1 KiB of queue: a run of 4 KiB can never fit.
        let sink = StdoutSink::new(
            StdoutFormat::Prefixed,
            QueueLimits {
                max_entries: 100,
                max_bytes: 1024,
            },
        );
        let big: Vec<LogEntry> = (0..4).map(|_| test_entry("r", "f", &"x".repeat(1000))).collect();
        sink.emit(&big).await.unwrap();
        assert_eq!(sink.stats().dropped(DropReason::TooLarge), 4);
        // Within the caps, a run is queued (and written, or counted as failed).
        sink.emit(&[test_entry("r", "f", "small")]).await.unwrap();
        assert_eq!(sink.stats().dropped_total(), 4);
    }
}
