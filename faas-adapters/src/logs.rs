//! Function-log sinks that need no backend (docs/api.md): the legacy prefixed
//! stdout line, JSON lines for Docker/Promtail, the bounded in-memory buffer
//! that `GET /function-logs` searches, and a fan-out to several sinks.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use faas_ports::{LogEntry, LogSink, PortError};

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

/// Lines waiting for the writer thread; past this a run's lines are dropped and counted.
const STDOUT_QUEUE: usize = 4096;

/// Writes every entry as one line on the process's stdout.
///
/// `emit` never blocks a run: a run's lines go into a bounded queue drained
/// by a dedicated writer thread; when stdout cannot keep up (a stalled pipe,
/// a blocking log driver) and the queue is full, the lines are dropped and
/// counted ([`StdoutSink::dropped`]).
#[derive(Debug, Clone)]
pub struct StdoutSink {
    format: StdoutFormat,
    queue: std::sync::mpsc::SyncSender<String>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl StdoutSink {
    /// A sink writing lines of this format; starts its writer thread.
    pub fn new(format: StdoutFormat) -> Self {
        let (queue, lines) = std::sync::mpsc::sync_channel::<String>(STDOUT_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("function-log-stdout".into())
            .spawn(move || {
                for text in lines {
                    let mut out = std::io::stdout().lock();
                    if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
                        // stdout is gone: keep draining so senders never block.
                        continue;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the function-log writer thread; stdout lines will be dropped");
        }
        Self {
            format,
            queue,
            dropped: Arc::default(),
        }
    }

    /// Entries dropped because stdout could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
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

#[async_trait]
impl LogSink for StdoutSink {
    async fn emit(&self, entries: &[LogEntry]) -> Result<(), PortError> {
        let mut text = String::new();
        for entry in entries {
            text.push_str(&self.line(entry));
            text.push('\n');
        }
        // One message per run keeps a run's lines together.
        if self.queue.try_send(text).is_err() {
            self.dropped
                .fetch_add(entries.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

/// A filter over the buffer (`GET /function-logs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Exact run id.
    pub run_id: Option<String>,
    /// Exact function name.
    pub function: Option<String>,
    /// Exact collection path (`""` = root).
    pub collection_path: Option<String>,
    /// Case-insensitive substring of the message.
    pub q: Option<String>,
}

impl LogFilter {
    fn matches(&self, e: &LogEntry) -> bool {
        self.run_id.as_ref().is_none_or(|r| &e.run_id == r)
            && self.function.as_ref().is_none_or(|f| &e.function_name == f)
            && self.collection_path.as_ref().is_none_or(|c| &e.collection_path == c)
            && self
                .q
                .as_ref()
                .is_none_or(|q| e.message.to_lowercase().contains(&q.to_lowercase()))
    }
}

/// The bounded in-memory buffer of the newest entries.
#[derive(Debug)]
pub struct LogBuffer {
    entries: Mutex<VecDeque<LogEntry>>,
    capacity: usize,
}

impl LogBuffer {
    /// A buffer keeping the newest `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity,
        }
    }

    /// Appends entries, dropping the oldest past the capacity.
    pub fn push(&self, entries: &[LogEntry]) {
        let mut buf = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for entry in entries {
            if buf.len() == self.capacity {
                buf.pop_front();
            }
            if self.capacity > 0 {
                buf.push_back(entry.clone());
            }
        }
    }

    /// Matching entries, newest first, at most `limit`.
    pub fn query(&self, filter: &LogFilter, limit: usize) -> Vec<LogEntry> {
        let buf = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        buf.iter()
            .rev()
            .filter(|e| filter.matches(e))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl LogSink for LogBuffer {
    async fn emit(&self, entries: &[LogEntry]) -> Result<(), PortError> {
        self.push(entries);
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

#[cfg(test)]
mod tests {
    use faas_ports::LogLevel;

    use super::*;

    fn entry(run: &str, function: &str, message: &str) -> LogEntry {
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
            start_kind: faas_ports::StartKind::Cold,
        }
    }

    #[test]
    fn stdout_lines_keep_the_spec_field_order() {
        let e = entry("run-1", "f", "a 7");
        let prefixed = StdoutSink::new(StdoutFormat::Prefixed).line(&e);
        assert_eq!(
            prefixed,
            r#"[function-log] {"run_id":"run-1","execution_id":"run-1","function_name":"f","collection_path":"","deployment_version":1,"deployment_id":"f@v1","ts":"2026-01-01T00:00:00.000Z","level":"info","message":"a 7","start_kind":"cold"}"#
        );
        let docker = StdoutSink::new(StdoutFormat::DockerJson).line(&e);
        let v: serde_json::Value = serde_json::from_str(&docker).unwrap();
        assert_eq!(v["log_stream"], LOG_STREAM);
        assert_eq!(v["message"], "a 7");
        assert!(docker.starts_with(r#"{"run_id":"run-1","execution_id""#), "{docker}");
    }

    #[test]
    fn buffer_is_bounded_and_searched_newest_first() {
        let buf = LogBuffer::new(3);
        buf.push(&[
            entry("r1", "f", "one"),
            entry("r1", "f", "Two"),
            entry("r2", "g", "three"),
        ]);
        buf.push(&[entry("r3", "f", "four")]);
        assert_eq!(buf.len(), 3, "oldest dropped");
        let all: Vec<String> = buf
            .query(&LogFilter::default(), 10)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(all, vec!["four", "three", "Two"]);
        let f = LogFilter {
            function: Some("f".into()),
            ..LogFilter::default()
        };
        assert_eq!(buf.query(&f, 10).len(), 2);
        let q = LogFilter {
            q: Some("two".into()),
            ..LogFilter::default()
        };
        assert_eq!(buf.query(&q, 10)[0].message, "Two");
        assert_eq!(buf.query(&LogFilter::default(), 1).len(), 1);
    }
}
