//! Pushes function logs to Grafana Loki (`POST <url>/loki/api/v1/push`, docs/api.md).
//!
//! `emit` never waits on Loki: entries go into the shared bounded queue
//! ([`PushQueue`]: entries and bytes, a full queue drops and counts); its
//! task sends batches, each push bounded by the configured timeout, and the
//! queue is flushed at shutdown. Labels: `job`, `function`,
//! `collection_path` (`_` for the root), `level`; the line is the entry JSON;
//! timestamps are nanoseconds as strings; the tenant goes in `X-Scope-OrgID`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{LogEntry, LogSink, PortError};
use serde_json::json;

use crate::logs::push::{http_client, BatchConfig, Delivery, PushQueue, Transport};
use crate::logs::{entry_json, QueueLimits};
use crate::outbound::OutboundProxy;
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
    /// Bounds of the queue.
    pub queue: QueueLimits,
    /// How entries are grouped into pushes.
    pub batch: BatchConfig,
    /// `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`.
    pub proxy: OutboundProxy,
}

impl LokiConfig {
    /// Defaults for a URL: 8 s timeout, the default queue and batches, no proxy.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            tenant: None,
            timeout: Duration::from_millis(8000),
            queue: QueueLimits::default(),
            batch: BatchConfig::default(),
            proxy: OutboundProxy::none(),
        }
    }

    /// Checks every setting (the one place they are checked: [`LokiSink::new`]
    /// calls it, and so does the configuration loader at start-up). Each
    /// message names its `LOWCODE_FAAS_*` variable.
    pub fn validate(&self) -> Result<(), AdapterError> {
        crate::logs::push::validate_url("LOWCODE_FAAS_LOG_LOKI_URL", &self.url)?;
        if self.timeout.is_zero() {
            return Err(AdapterError::Config(
                "LOWCODE_FAAS_LOG_LOKI_TIMEOUT_MS must be above 0".into(),
            ));
        }
        crate::logs::push::validate_limits(&self.queue)?;
        self.batch.validate()?;
        self.proxy.validate()
    }
}

/// The Loki sink. Build it inside a tokio runtime (it spawns its sender).
#[derive(Debug)]
pub struct LokiSink {
    queue: PushQueue,
}

impl LokiSink {
    /// Starts the background sender.
    pub fn new(config: LokiConfig) -> Result<Self, AdapterError> {
        config.validate()?;
        let client = http_client(config.timeout, &config.proxy, "LOWCODE_FAAS_LOG_LOKI_URL")?;
        let transport = LokiPush {
            url: format!("{}/loki/api/v1/push", config.url.trim_end_matches('/')),
            tenant: config.tenant.clone(),
            client,
        };
        let queue = PushQueue::start("loki", config.queue, config.batch, Arc::new(transport))?;
        Ok(Self { queue })
    }

    /// The sink's queue (counters, flush).
    pub fn queue(&self) -> &PushQueue {
        &self.queue
    }
}

#[async_trait]
impl LogSink for LokiSink {
    async fn emit(&self, entries: &[LogEntry]) -> Result<(), PortError> {
        self.queue.push(entries);
        Ok(())
    }
}

/// One push to Loki.
#[derive(Debug)]
struct LokiPush {
    url: String,
    tenant: Option<String>,
    client: reqwest::Client,
}

#[async_trait]
impl Transport for LokiPush {
    async fn send(&self, batch: &[LogEntry]) -> Delivery {
        let n = batch.len();
        let mut req = self.client.post(&self.url).json(&push_body(batch));
        if let Some(tenant) = &self.tenant {
            req = req.header("X-Scope-OrgID", tenant);
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => Delivery::all_sent(n),
            Ok(res) => {
                tracing::warn!(status = res.status().as_u16(), entries = n, "loki refused a log push");
                Delivery::all_failed(n)
            }
            Err(e) => {
                tracing::warn!(error = %faas_ports::report::Report(&e), entries = n, "loki push failed");
                Delivery::all_failed(n)
            }
        }
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

    use super::*;
    use crate::logs::test_receiver as receiver;

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

    #[tokio::test]
    async fn pushes_batches_with_tenant_to_a_loopback_receiver() {
        let (addr, mut seen) = receiver::start(|_| (204, String::new())).await;
        let sink = LokiSink::new(LokiConfig {
            tenant: Some("team-a".into()),
            batch: BatchConfig {
                wait: Duration::from_millis(50),
                ..BatchConfig::default()
            },
            ..LokiConfig::new(format!("http://{addr}/"))
        })
        .unwrap();
        sink.emit(&[
            entry("f", "", LogLevel::Log, "hello 1"),
            entry("f", "", LogLevel::Warn, "w"),
        ])
        .await
        .unwrap();
        let req = seen.recv().await.unwrap();
        assert_eq!(req.line, "POST /loki/api/v1/push HTTP/1.1");
        assert_eq!(req.header("x-scope-orgid"), Some("team-a"));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        let streams = body["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 2, "one stream per level");
        for s in streams {
            assert_eq!(s["stream"]["job"], LOKI_JOB);
            assert!(s["values"][0][0].as_str().unwrap().chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[tokio::test]
    async fn entries_queued_for_an_hour_arrive_when_the_queue_is_flushed() {
        let (addr, mut seen) = receiver::start(|_| (204, String::new())).await;
        let sink = LokiSink::new(LokiConfig {
            batch: BatchConfig {
                wait: Duration::from_secs(3600),
                ..BatchConfig::default()
            },
            ..LokiConfig::new(format!("http://{addr}"))
        })
        .unwrap();
        sink.emit(&[entry("f", "", LogLevel::Log, "last words")]).await.unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        let req = seen.try_recv().expect("the flush returns once the push is answered");
        assert!(req.text().contains("last words"));
        assert_eq!(sink.queue().stats().sent(), 1);
    }

    #[tokio::test]
    async fn refused_and_unreachable_pushes_are_counted_as_failed() {
        let (addr, _seen) = receiver::start(|_| (500, "{}".into())).await;
        let sink = LokiSink::new(LokiConfig::new(format!("http://{addr}"))).unwrap();
        sink.emit(&[entry("f", "", LogLevel::Log, "a")]).await.unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        assert_eq!((sink.queue().stats().sent(), sink.queue().stats().failed()), (0, 1));

        let down = LokiSink::new(LokiConfig::new(format!("http://127.0.0.1:{}", receiver::closed_port()))).unwrap();
        down.emit(&[entry("f", "", LogLevel::Log, "a"), entry("f", "", LogLevel::Log, "b")])
            .await
            .unwrap();
        assert!(down.queue().flush(Duration::from_secs(30)).await);
        assert_eq!(down.queue().stats().failed(), 2);
    }

    #[tokio::test]
    async fn pushes_go_through_the_configured_proxy() {
        // The "proxy" answers itself and records what it was asked for.
        let (proxy, mut seen) = receiver::start(|_| (204, String::new())).await;
        let target = receiver::closed_port();
        let sink = LokiSink::new(LokiConfig {
            proxy: OutboundProxy {
                http: Some(format!("http://{proxy}")),
                ..OutboundProxy::none()
            },
            ..LokiConfig::new(format!("http://127.0.0.1:{target}"))
        })
        .unwrap();
        sink.emit(&[entry("f", "", LogLevel::Log, "via proxy")]).await.unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        let req = seen.try_recv().unwrap();
        assert_eq!(
            req.line,
            format!("POST http://127.0.0.1:{target}/loki/api/v1/push HTTP/1.1"),
            "absolute-form request to the proxy"
        );
        assert_eq!(sink.queue().stats().sent(), 1);

        // NO_PROXY sends it straight to the (closed) target instead.
        let direct = LokiSink::new(LokiConfig {
            proxy: OutboundProxy {
                http: Some(format!("http://{proxy}")),
                https: None,
                no_proxy: Some("127.0.0.1".into()),
            },
            ..LokiConfig::new(format!("http://127.0.0.1:{target}"))
        })
        .unwrap();
        direct.emit(&[entry("f", "", LogLevel::Log, "direct")]).await.unwrap();
        assert!(direct.queue().flush(Duration::from_secs(30)).await);
        assert_eq!(direct.queue().stats().failed(), 1);
        assert!(seen.try_recv().is_err(), "the proxy saw nothing");
    }
}
