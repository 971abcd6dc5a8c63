//! Pushes function logs to any HTTP endpoint (the `http` / `webhook` sink,
//! docs/api.md), as the Go version did: one `POST <url>` per entry with the
//! JSON body `{"entry": <entry>}` ([`GoDocument`]) and an optional extra
//! header (`LOWCODE_FAAS_LOG_HTTP_HEADER`, `Name: value`).
//!
//! Queued, bounded and counted like the Loki sink ([`PushQueue`]); the
//! entries of a batch are posted [`CONCURRENT_POSTS`] at a time. A reply
//! other than 2xx counts the entry as failed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{LogEntry, LogSink, PortError};
use futures_util::StreamExt;

use crate::logs::push::{http_client, BatchConfig, Delivery, PushQueue, Transport};
use crate::logs::{GoDocument, QueueLimits};
use crate::outbound::OutboundProxy;
use crate::AdapterError;

/// Bound of one POST (the Go version's 8 s).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(8);

/// Entries of a batch posted at once.
pub const CONCURRENT_POSTS: usize = 4;

/// The extra header of every POST. Its value often is a credential: it
/// never shows in `Debug` or in messages.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookHeader {
    name: reqwest::header::HeaderName,
    value: reqwest::header::HeaderValue,
}

impl fmt::Debug for WebhookHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookHeader")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

impl WebhookHeader {
    /// Parses `Name: value` (split at the first `:`, both sides trimmed).
    /// The message of an error names the variable, never the value.
    pub fn parse(raw: &str) -> Result<Self, AdapterError> {
        let bad = |why: &str| AdapterError::Config(format!("LOWCODE_FAAS_LOG_HTTP_HEADER: {why}"));
        let (name, value) = raw.split_once(':').ok_or_else(|| bad("expected `Name: value`"))?;
        let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| bad("the name is not a valid header name"))?;
        let mut value = reqwest::header::HeaderValue::from_str(value.trim())
            .map_err(|_| bad("the value is not a valid header value"))?;
        value.set_sensitive(true);
        Ok(Self { name, value })
    }

    /// The header's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

/// Settings of the webhook sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Where entries are posted (`LOWCODE_FAAS_LOG_HTTP_URL`).
    pub url: String,
    /// `LOWCODE_FAAS_LOG_HTTP_HEADER`.
    pub header: Option<WebhookHeader>,
    /// Bound of one POST.
    pub timeout: Duration,
    /// Bounds of the queue.
    pub queue: QueueLimits,
    /// How entries are grouped before posting.
    pub batch: BatchConfig,
    /// `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`.
    pub proxy: OutboundProxy,
}

impl WebhookConfig {
    /// Defaults for a URL: no header, 8 s, the default queue and batches, no proxy.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            header: None,
            timeout: WEBHOOK_TIMEOUT,
            queue: QueueLimits::default(),
            batch: BatchConfig::default(),
            proxy: OutboundProxy::none(),
        }
    }

    /// Checks every setting; each message names its variable.
    pub fn validate(&self) -> Result<(), AdapterError> {
        crate::logs::push::validate_url("LOWCODE_FAAS_LOG_HTTP_URL", &self.url)?;
        if reqwest::Url::parse(&self.url).is_err() {
            return Err(AdapterError::Config(format!(
                "LOWCODE_FAAS_LOG_HTTP_URL must be an http(s) URL, got {:?}",
                self.url
            )));
        }
        if self.timeout.is_zero() {
            return Err(AdapterError::Config("the webhook timeout must be above 0".into()));
        }
        crate::logs::push::validate_limits(&self.queue)?;
        self.batch.validate()?;
        self.proxy.validate()
    }
}

/// The webhook sink. Build it inside a tokio runtime (it spawns its sender).
#[derive(Debug)]
pub struct WebhookSink {
    queue: PushQueue,
}

impl WebhookSink {
    /// Starts the background sender.
    pub fn new(config: WebhookConfig) -> Result<Self, AdapterError> {
        config.validate()?;
        let client = http_client(config.timeout, &config.proxy, "LOWCODE_FAAS_LOG_HTTP_URL")?;
        let transport = WebhookPost {
            url: config.url,
            header: config.header,
            client,
        };
        let queue = PushQueue::start("http", config.queue, config.batch, Arc::new(transport))?;
        Ok(Self { queue })
    }

    /// The sink's queue (counters, flush).
    pub fn queue(&self) -> &PushQueue {
        &self.queue
    }
}

#[async_trait]
impl LogSink for WebhookSink {
    async fn emit(&self, entries: &[LogEntry]) -> Result<(), PortError> {
        self.queue.push(entries);
        Ok(())
    }
}

#[derive(Debug)]
struct WebhookPost {
    url: String,
    header: Option<WebhookHeader>,
    client: reqwest::Client,
}

impl WebhookPost {
    async fn post(&self, entry: &LogEntry) -> bool {
        let mut req = self
            .client
            .post(&self.url)
            .json(&serde_json::json!({ "entry": GoDocument::of(entry) }));
        if let Some(h) = &self.header {
            req = req.header(h.name.clone(), h.value.clone());
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => true,
            Ok(res) => {
                tracing::warn!(status = res.status().as_u16(), "the log webhook refused an entry");
                false
            }
            Err(e) => {
                tracing::warn!(error = %faas_ports::report::Report(&e), "posting to the log webhook failed");
                false
            }
        }
    }
}

#[async_trait]
impl Transport for WebhookPost {
    async fn send(&self, batch: &[LogEntry]) -> Delivery {
        // Boxed so the stream's item type names no closure lifetime.
        let posts: Vec<futures_util::future::BoxFuture<'_, bool>> =
            batch.iter().map(|entry| Box::pin(self.post(entry)) as _).collect();
        let results: Vec<bool> = futures_util::stream::iter(posts)
            .buffer_unordered(CONCURRENT_POSTS)
            .collect()
            .await;
        let sent = results.iter().filter(|ok| **ok).count() as u64;
        Delivery {
            sent,
            failed: results.len() as u64 - sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::test_entry as entry;
    use crate::logs::test_receiver as receiver;

    fn hook(url: String) -> WebhookConfig {
        WebhookConfig {
            batch: BatchConfig {
                wait: Duration::from_secs(3600),
                ..BatchConfig::default()
            },
            ..WebhookConfig::new(url)
        }
    }

    #[tokio::test]
    async fn one_post_per_entry_with_the_entry_and_the_header() {
        let (addr, mut seen) = receiver::start(|_| (200, "{}".into())).await;
        let sink = WebhookSink::new(WebhookConfig {
            header: Some(WebhookHeader::parse("X-Api-Key:  k-123 ").unwrap()),
            ..hook(format!("http://{addr}/hooks/logs?src=faas"))
        })
        .unwrap();
        sink.emit(&[entry("run-1", "f", "one"), entry("run-1", "f", "two")])
            .await
            .unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        let mut messages = Vec::new();
        while let Ok(req) = seen.try_recv() {
            assert_eq!(req.line, "POST /hooks/logs?src=faas HTTP/1.1");
            assert_eq!(req.header("x-api-key"), Some("k-123"));
            assert_eq!(req.header("content-type"), Some("application/json"));
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let entry = &body["entry"];
            assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
            assert_eq!(entry["run_id"], "run-1");
            assert_eq!(entry["function_name"], "f");
            assert_eq!(entry["level"], "info");
            messages.push(entry["message"].as_str().unwrap().to_owned());
        }
        messages.sort();
        assert_eq!(messages, ["one", "two"], "one POST per entry");
        assert_eq!(sink.queue().stats().sent(), 2);
    }

    #[tokio::test]
    async fn refused_and_unreachable_posts_are_counted_as_failed() {
        let (addr, _seen) = receiver::start(|req| {
            if req.text().contains("bad") {
                (500, "{}".into())
            } else {
                (204, String::new())
            }
        })
        .await;
        let sink = WebhookSink::new(hook(format!("http://{addr}"))).unwrap();
        sink.emit(&[entry("r", "f", "good"), entry("r", "f", "bad")])
            .await
            .unwrap();
        assert!(sink.queue().flush(Duration::from_secs(30)).await);
        assert_eq!((sink.queue().stats().sent(), sink.queue().stats().failed()), (1, 1));

        let down = WebhookSink::new(hook(format!("http://127.0.0.1:{}/", receiver::closed_port()))).unwrap();
        down.emit(&[entry("r", "f", "a")]).await.unwrap();
        assert!(down.queue().flush(Duration::from_secs(30)).await);
        assert_eq!(down.queue().stats().failed(), 1);
    }

    #[test]
    fn header_and_url_are_checked_without_showing_the_value() {
        let h = WebhookHeader::parse("Authorization: Bearer abc").unwrap();
        assert_eq!(h.name(), "authorization");
        assert!(!format!("{h:?}").contains("abc"));
        for raw in ["no colon here", "bad name: v", ": v", "X-Ok: line\nbreak"] {
            let text = WebhookHeader::parse(raw).unwrap_err().to_string();
            assert!(
                text.contains("LOWCODE_FAAS_LOG_HTTP_HEADER") && !text.contains("break"),
                "{text}"
            );
        }
        assert!(WebhookConfig::new("ftp://x").validate().is_err());
        assert!(WebhookConfig::new("http://hooks.example/logs").validate().is_ok());
    }
}
