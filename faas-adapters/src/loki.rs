//! Pushes function logs to Grafana Loki (`POST <url>/loki/api/v1/push`, docs/api.md).
//!
//! `emit` never waits on Loki: entries go into a bounded queue (a full queue
//! drops and counts them); a background task sends batches (at most
//! [`LokiConfig::batch_size`] entries or every [`LokiConfig::batch_wait`]),
//! each push bounded by the configured timeout. Labels: `job`, `function`,
//! `collection_path` (`_` for the root), `level`; the line is the entry JSON;
//! timestamps are nanoseconds as strings; the tenant goes in `X-Scope-OrgID`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{LogEntry, LogSink, PortError};
use serde_json::json;
use tokio::sync::mpsc;

use crate::logs::entry_json;
use crate::AdapterError;

/// `job` label of every stream.
pub const LOKI_JOB: &str = "lowcode-faas-function";

/// Settings of the Loki sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LokiConfig {
    /// Base URL (`http://loki:3100`); `/loki/api/v1/push` is appended.
    pub url: String,
    /// Tenant sent as `X-Scope-OrgID`.
    pub tenant: Option<String>,
    /// Bound of one push.
    pub timeout: Duration,
    /// Entries waiting to be sent; past this they are dropped and counted.
    pub queue_capacity: usize,
    /// Largest batch.
    pub batch_size: usize,
    /// Longest wait before a partial batch is sent.
    pub batch_wait: Duration,
}

impl LokiConfig {
    /// Defaults for a URL: 8 s timeout, 10000 queued, batches of 500 or 1 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            tenant: None,
            timeout: Duration::from_millis(8000),
            queue_capacity: 10_000,
            batch_size: 500,
            batch_wait: Duration::from_secs(1),
        }
    }

    /// Checks every setting (the one place they are checked: [`LokiSink::new`]
    /// calls it, and so does the configuration loader at start-up). Each
    /// message names its `LOWCODE_FAAS_*` variable.
    pub fn validate(&self) -> Result<(), AdapterError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(AdapterError::Config(format!(
                "LOWCODE_FAAS_LOG_LOKI_URL must be an http(s) URL, got {:?}",
                self.url
            )));
        }
        if self.timeout.is_zero() {
            return Err(AdapterError::Config(
                "LOWCODE_FAAS_LOG_LOKI_TIMEOUT_MS must be above 0".into(),
            ));
        }
        if self.queue_capacity == 0 || self.batch_size == 0 || self.batch_wait.is_zero() {
            return Err(AdapterError::Config(
                "the Loki queue, batch size and batch wait must be above 0".into(),
            ));
        }
        Ok(())
    }
}

/// Counters of the Loki sink.
#[derive(Debug, Default)]
pub struct LokiStats {
    /// Entries dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Entries Loki accepted.
    pub sent: AtomicU64,
    /// Entries lost in failed pushes.
    pub failed: AtomicU64,
}

/// The Loki sink. Build it inside a tokio runtime (it spawns its sender).
#[derive(Debug)]
pub struct LokiSink {
    queue: mpsc::Sender<LogEntry>,
    stats: Arc<LokiStats>,
}

impl LokiSink {
    /// Starts the background sender.
    pub fn new(config: LokiConfig) -> Result<Self, AdapterError> {
        config.validate()?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .no_proxy()
            .build()
            .map_err(|e| AdapterError::Config(format!("LOWCODE_FAAS_LOG_LOKI_URL: {e}")))?;
        let url = format!("{}/loki/api/v1/push", config.url.trim_end_matches('/'));
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let stats = Arc::new(LokiStats::default());
        tokio::spawn(send_loop(rx, client, url, config, Arc::clone(&stats)));
        Ok(Self { queue: tx, stats })
    }

    /// The sink's counters.
    pub fn stats(&self) -> Arc<LokiStats> {
        Arc::clone(&self.stats)
    }
}

#[async_trait]
impl LogSink for LokiSink {
    async fn emit(&self, entries: &[LogEntry]) -> Result<(), PortError> {
        for entry in entries {
            if self.queue.try_send(entry.clone()).is_err() {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

async fn send_loop(
    mut rx: mpsc::Receiver<LogEntry>,
    client: reqwest::Client,
    url: String,
    config: LokiConfig,
    stats: Arc<LokiStats>,
) {
    let mut batch = Vec::with_capacity(config.batch_size);
    loop {
        let Some(first) = rx.recv().await else { return };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + config.batch_wait;
        while batch.len() < config.batch_size {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(entry)) => batch.push(entry),
                Ok(None) | Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let mut req = client.post(&url).json(&push_body(&batch));
        if let Some(tenant) = &config.tenant {
            req = req.header("X-Scope-OrgID", tenant);
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => {
                stats.sent.fetch_add(n, Ordering::Relaxed);
            }
            Ok(res) => {
                stats.failed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(status = res.status().as_u16(), entries = n, "loki refused a log push");
            }
            Err(e) => {
                stats.failed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(error = %faas_ports::report::Report(&e), entries = n, "loki push failed");
            }
        }
        batch.clear();
    }
}

/// The push body: one stream per label set, values `[ns-string, line]`.
pub fn push_body(entries: &[LogEntry]) -> serde_json::Value {
    let mut streams: BTreeMap<(String, String, &'static str), Vec<serde_json::Value>> = BTreeMap::new();
    for e in entries {
        let collection = if e.collection_path.is_empty() {
            "_".to_owned()
        } else {
            e.collection_path.clone()
        };
        streams
            .entry((e.function_name.clone(), collection, e.level.as_str()))
            .or_default()
            .push(json!([nanos(&e.ts), entry_json(e)]));
    }
    let streams: Vec<serde_json::Value> = streams
        .into_iter()
        .map(|((function, collection_path, level), values)| {
            json!({
                "stream": {"job": LOKI_JOB, "function": function, "collection_path": collection_path, "level": level},
                "values": values,
            })
        })
        .collect();
    json!({ "streams": streams })
}

/// Nanoseconds since the epoch as a decimal string (now, if `ts` does not parse).
fn nanos(ts: &str) -> String {
    let parsed = chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    parsed
        .timestamp_nanos_opt()
        .map_or_else(|| "0".to_owned(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use faas_ports::LogLevel;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn entry(function: &str, collection: &str, level: LogLevel, message: &str) -> LogEntry {
        LogEntry {
            run_id: "run-1".into(),
            execution_id: "run-1".into(),
            function_name: function.into(),
            collection_path: collection.into(),
            deployment_version: 2,
            deployment_id: "x@v2".into(),
            ts: "2026-01-02T03:04:05.006Z".into(),
            level,
            message: message.into(),
            start_kind: faas_ports::StartKind::Cold,
        }
    }

    #[test]
    fn push_body_groups_streams_by_labels() {
        let body = push_body(&[
            entry("f", "", LogLevel::Info, "a"),
            entry("f", "", LogLevel::Info, "b"),
            entry("f", "team/api", LogLevel::Error, "c"),
        ]);
        let streams = body["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 2);
        let root = streams.iter().find(|s| s["stream"]["collection_path"] == "_").unwrap();
        assert_eq!(
            root["stream"],
            json!({"job": LOKI_JOB, "function": "f", "collection_path": "_", "level": "info"})
        );
        assert_eq!(root["values"].as_array().unwrap().len(), 2);
        assert_eq!(root["values"][0][0], "1767323045006000000");
        let line: serde_json::Value = serde_json::from_str(root["values"][0][1].as_str().unwrap()).unwrap();
        assert_eq!(line["message"], "a");
    }

    /// Reads one HTTP request (headers + Content-Length body) from a socket.
    async fn read_request(sock: &mut tokio::net::TcpStream) -> (String, String) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before a full request");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let head = text[..end].to_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                    return (head, body);
                }
            }
        }
    }

    #[tokio::test]
    async fn pushes_batches_with_tenant_to_a_loopback_receiver() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, mut seen_rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen_tx = seen_tx.clone();
                tokio::spawn(async move {
                    let request = read_request(&mut sock).await;
                    let _ = sock
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    let _ = seen_tx.send(request).await;
                });
            }
        });
        let sink = LokiSink::new(LokiConfig {
            tenant: Some("team-a".into()),
            batch_wait: Duration::from_millis(50),
            ..LokiConfig::new(format!("http://{addr}/"))
        })
        .unwrap();
        sink.emit(&[
            entry("f", "", LogLevel::Log, "hello 1"),
            entry("f", "", LogLevel::Warn, "w"),
        ])
        .await
        .unwrap();
        let (head, body) = seen_rx.recv().await.unwrap();
        assert!(head.starts_with("POST /loki/api/v1/push HTTP/1.1"), "{head}");
        assert!(head.to_lowercase().contains("x-scope-orgid: team-a"), "{head}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let streams = body["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 2, "one stream per level");
        for s in streams {
            assert_eq!(s["stream"]["job"], LOKI_JOB);
            assert!(s["values"][0][0].as_str().unwrap().chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_blocking() {
        // Nothing listens on this port: pushes fail; the queue of 2 overflows.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let sink = LokiSink::new(LokiConfig {
            queue_capacity: 2,
            batch_size: 1,
            timeout: Duration::from_millis(200),
            ..LokiConfig::new(format!("http://127.0.0.1:{port}"))
        })
        .unwrap();
        let many: Vec<LogEntry> = (0..50).map(|i| entry("f", "", LogLevel::Log, &i.to_string())).collect();
        sink.emit(&many).await.unwrap();
        assert!(
            sink.stats().dropped.load(Ordering::Relaxed) >= 40,
            "entries beyond the queue are dropped"
        );
    }
}
