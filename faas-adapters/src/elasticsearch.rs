//! Pushes function logs to Elasticsearch (or OpenSearch) with the bulk API
//! (`POST <url>/_bulk`, NDJSON, docs/api.md).
//!
//! Each entry is one `index` action into the configured index followed by
//! the document the Go version wrote ([`GoDocument`]); basic auth when a user
//! is set. Batched, bounded and counted like the Loki sink ([`PushQueue`]).
//! A bulk reply with `"errors": true` counts its failed items as failed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{LogEntry, LogSink, PortError};

use crate::logs::push::{http_client, read_capped, BatchConfig, Delivery, PushQueue, Transport};
use crate::logs::{GoDocument, QueueLimits};
use crate::outbound::OutboundProxy;
use crate::AdapterError;

/// Default index (the Go version's).
pub const DEFAULT_INDEX: &str = "lowcode-faas-logs";

/// Bound of one bulk request (the Go version's 8 s).
pub const ES_TIMEOUT: Duration = Duration::from_secs(8);

/// Most bytes of a bulk reply read to count failed items.
const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// Settings of the Elasticsearch sink.
#[derive(Clone, PartialEq, Eq)]
pub struct EsConfig {
    /// Base URL (`LOWCODE_FAAS_LOG_ES_URL`); `/_bulk` is appended.
    pub url: String,
    /// Index (`LOWCODE_FAAS_LOG_ES_INDEX`, default [`DEFAULT_INDEX`]).
    pub index: String,
    /// Basic-auth user (`LOWCODE_FAAS_LOG_ES_USER`).
    pub user: Option<String>,
    /// Basic-auth password (`LOWCODE_FAAS_LOG_ES_PASSWORD`).
    pub password: Option<String>,
    /// Bound of one request.
    pub timeout: Duration,
    /// Bounds of the queue.
    pub queue: QueueLimits,
    /// How entries are grouped into bulk requests.
    pub batch: BatchConfig,
    /// `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`.
    pub proxy: OutboundProxy,
}

impl fmt::Debug for EsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsConfig")
            .field("url", &self.url)
            .field("index", &self.index)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("queue", &self.queue)
            .field("batch", &self.batch)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl EsConfig {
    /// Defaults for a URL: the default index, no auth, 8 s, the default
    /// queue and batches, no proxy.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            index: DEFAULT_INDEX.into(),
            user: None,
            password: None,
            timeout: ES_TIMEOUT,
            queue: QueueLimits::default(),
            batch: BatchConfig::default(),
            proxy: OutboundProxy::none(),
        }
    }

    /// Checks every setting; each message names its variable (never a
    /// password).
    pub fn validate(&self) -> Result<(), AdapterError> {
        crate::logs::push::validate_url("LOWCODE_FAAS_LOG_ES_URL", &self.url)?;
        let index = &self.index;
        let bad_char = index
            .chars()
            .find(|c| c.is_whitespace() || c.is_uppercase() || "\\/*?\"<>|,#:".contains(*c));
        if index.is_empty()
            || index.len() > 255
            || index.starts_with(['-', '_', '+'])
            || index == "."
            || index == ".."
            || bad_char.is_some()
        {
            return Err(AdapterError::Config(format!(
                "LOWCODE_FAAS_LOG_ES_INDEX={index:?} is not a valid index name (lowercase, no spaces or \\/*?\"<>|,#:, not starting with -, _ or +)"
            )));
        }
        if self.password.is_some() && self.user.is_none() {
            return Err(AdapterError::Config(
                "LOWCODE_FAAS_LOG_ES_PASSWORD is set without LOWCODE_FAAS_LOG_ES_USER".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(AdapterError::Config("the Elasticsearch timeout must be above 0".into()));
        }
        crate::logs::push::validate_limits(&self.queue)?;
        self.batch.validate()?;
        self.proxy.validate()
    }
}

/// The Elasticsearch sink. Build it inside a tokio runtime (it spawns its sender).
#[derive(Debug)]
pub struct EsSink {
    queue: PushQueue,
}

impl EsSink {
    /// Starts the background sender.
    pub fn new(config: EsConfig) -> Result<Self, AdapterError> {
        config.validate()?;
        let client = http_client(config.timeout, &config.proxy, "LOWCODE_FAAS_LOG_ES_URL")?;
        let action = serde_json::to_string(&serde_json::json!({"index": {"_index": config.index}}))
            .map_err(|e| AdapterError::Config(format!("LOWCODE_FAAS_LOG_ES_INDEX: {e}")))?;
        let transport = EsBulk {
            url: format!("{}/_bulk", config.url.trim_end_matches('/')),
            action,
            auth: config.user.map(|user| (user, config.password)),
            client,
        };
        let queue = PushQueue::start("elasticsearch", config.queue, config.batch, Arc::new(transport))?;
        Ok(Self { queue })
    }

    /// The sink's queue (counters, flush).
    pub fn queue(&self) -> &PushQueue {
        &self.queue
    }
}

#[async_trait]
impl LogSink for EsSink {
    async fn emit(&self, entries: &[LogEntry]) -> Result<(), PortError> {
        self.queue.push(entries);
        Ok(())
    }
}

/// One bulk request.
struct EsBulk {
    url: String,
    /// The action line, the same for every entry.
    action: String,
    auth: Option<(String, Option<String>)>,
    client: reqwest::Client,
}

impl fmt::Debug for EsBulk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsBulk").field("url", &self.url).finish()
    }
}

/// The NDJSON body: an action line and a document line per entry.
pub fn bulk_body(action: &str, entries: &[LogEntry]) -> String {
    let mut body = String::new();
    for e in entries {
        body.push_str(action);
        body.push('\n');
        body.push_str(&serde_json::to_string(&GoDocument::of(e)).unwrap_or_default());
        body.push('\n');
    }
    body
}

/// How many items of a bulk reply failed (`None`: the reply says nothing usable).
fn failed_items(reply: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(reply).ok()?;
    if v.get("errors")?.as_bool()? {
        let items = v.get("items")?.as_array()?;
        let failed = items
            .iter()
            .filter(|item| {
                item.as_object()
                    .and_then(|o| o.values().next())
                    .is_none_or(|r| r.get("error").is_some() || r["status"].as_u64().is_none_or(|s| s >= 300))
            })
            .count();
        Some(failed as u64)
    } else {
        Some(0)
    }
}

#[async_trait]
impl Transport for EsBulk {
    async fn send(&self, batch: &[LogEntry]) -> Delivery {
        let n = batch.len();
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(bulk_body(&self.action, batch));
        if let Some((user, password)) = &self.auth {
            req = req.basic_auth(user, password.as_ref());
        }
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => {
                tracing::warn!(error = %faas_ports::report::Report(&e), entries = n, "elasticsearch bulk push failed");
                return Delivery::all_failed(n);
            }
        };
        let status = res.status();
        if !status.is_success() {
            tracing::warn!(
                status = status.as_u16(),
                entries = n,
                "elasticsearch refused a bulk push"
            );
            return Delivery::all_failed(n);
        }
        let failed = match read_capped(res, MAX_REPLY_BYTES)
            .await
            .ok()
            .as_deref()
            .and_then(failed_items)
        {
            Some(failed) => failed.min(n as u64),
            None => {
                tracing::warn!(
                    entries = n,
                    "elasticsearch bulk reply unreadable; counting the batch as sent"
                );
                0
            }
        };
        if failed > 0 {
            tracing::warn!(failed, entries = n, "elasticsearch refused some log documents");
        }
        Delivery {
            sent: n as u64 - failed,
            failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::test_entry as entry;
    use crate::logs::test_receiver as receiver;

    fn es(url: String) -> EsConfig {
        EsConfig {
            batch: BatchConfig {
                wait: Duration::from_secs(3600),
                ..BatchConfig::default()
            },
            ..EsConfig::new(url)
        }
    }

    fn ok_reply(req: &receiver::Request) -> (u16, String) {
        let docs = req.text().lines().count() / 2;
        let items: Vec<serde_json::Value> = (0..docs)
            .map(|_| serde_json::json!({"index": {"status": 201}}))
            .collect();
        (
            200,
            serde_json::json!({"took": 1, "errors": false, "items": items}).to_string(),
        )
    }

    #[tokio::test]
    async fn bulk_ndjson_with_index_and_basic_auth_in_one_batch() {
        let (addr, mut seen) = receiver::start(ok_reply).await;
        let sink = EsSink::new(EsConfig {
            index: "fn-logs".into(),
            user: Some("elastic".into()),
            password: Some("s3cret".into()),
            ..es(format!("http://{addr}/"))
        })
        .unwrap();
        let mut second = entry("run-2", "g", "second");
        second.collection_path = "team".into();
        sink.emit(&[entry("run-1", "f", "first"), second]).await.unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        let req = seen.try_recv().unwrap();
        assert!(seen.try_recv().is_err(), "one bulk request for the batch");
        assert_eq!(req.line, "POST /_bulk HTTP/1.1");
        assert_eq!(req.header("content-type"), Some("application/x-ndjson"));
        // base64("elastic:s3cret")
        assert_eq!(req.header("authorization"), Some("Basic ZWxhc3RpYzpzM2NyZXQ="));
        let text = req.text();
        assert!(text.ends_with('\n'), "NDJSON ends with a newline");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], serde_json::json!({"index": {"_index": "fn-logs"}}));
        assert_eq!(lines[2], lines[0]);
        assert_eq!(lines[1]["run_id"], "run-1");
        assert_eq!(lines[1]["function_name"], "f");
        assert!(
            lines[1].get("collection_path").is_none(),
            "empty fields left out as Go did"
        );
        assert_eq!(lines[3]["collection_path"], "team");
        assert_eq!(lines[3]["message"], "second");
        for key in ["execution_id", "deployment_version", "deployment_id", "ts", "level"] {
            assert!(lines[3].get(key).is_some(), "{key}");
        }
        assert_eq!(sink.queue().stats().sent(), 2);
    }

    #[tokio::test]
    async fn no_user_no_authorization_header() {
        let (addr, mut seen) = receiver::start(ok_reply).await;
        let sink = EsSink::new(es(format!("http://{addr}"))).unwrap();
        sink.emit(&[entry("r", "f", "m")]).await.unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        let req = seen.try_recv().unwrap();
        assert!(req.header("authorization").is_none());
        assert!(req.text().starts_with(r#"{"index":{"_index":"lowcode-faas-logs"}}"#));
    }

    #[tokio::test]
    async fn failures_are_counted_per_item_per_status_and_when_down() {
        // Item errors in a 200 reply.
        let (addr, _seen) = receiver::start(|_| {
            (
                200,
                r#"{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":400,"error":{"type":"mapper_parsing_exception"}}}]}"#.into(),
            )
        })
        .await;
        let sink = EsSink::new(es(format!("http://{addr}"))).unwrap();
        sink.emit(&[entry("r", "f", "a"), entry("r", "f", "b")]).await.unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        assert_eq!((sink.queue().stats().sent(), sink.queue().stats().failed()), (1, 1));

        // A 500.
        let (addr, _seen) = receiver::start(|_| (500, "{}".into())).await;
        let sink = EsSink::new(es(format!("http://{addr}"))).unwrap();
        sink.emit(&[entry("r", "f", "a"), entry("r", "f", "b")]).await.unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        assert_eq!((sink.queue().stats().sent(), sink.queue().stats().failed()), (0, 2));

        // Nobody listening.
        let sink = EsSink::new(es(format!("http://127.0.0.1:{}", receiver::closed_port()))).unwrap();
        sink.emit(&[entry("r", "f", "a")]).await.unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        assert_eq!(sink.queue().stats().failed(), 1);
    }

    #[test]
    fn settings_are_checked_and_the_password_never_shown() {
        let ok = EsConfig {
            user: Some("u".into()),
            password: Some("hunter2".into()),
            ..EsConfig::new("https://es:9200")
        };
        assert!(ok.validate().is_ok());
        assert!(!format!("{ok:?}").contains("hunter2"));
        for (config, variable) in [
            (EsConfig::new("es:9200"), "LOWCODE_FAAS_LOG_ES_URL"),
            (
                EsConfig {
                    index: "Logs".into(),
                    ..EsConfig::new("http://es")
                },
                "LOWCODE_FAAS_LOG_ES_INDEX",
            ),
            (
                EsConfig {
                    index: "_x".into(),
                    ..EsConfig::new("http://es")
                },
                "LOWCODE_FAAS_LOG_ES_INDEX",
            ),
            (
                EsConfig {
                    password: Some("hunter2".into()),
                    ..EsConfig::new("http://es")
                },
                "LOWCODE_FAAS_LOG_ES_PASSWORD",
            ),
        ] {
            let text = config.validate().unwrap_err().to_string();
            assert!(text.contains(variable) && !text.contains("hunter2"), "{text}");
        }
    }
}
