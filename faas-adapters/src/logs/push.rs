//! The queue every pushing sink (`loki`, `elasticsearch`, `webhook`) shares:
//! bounded in entries and bytes, drained by one background task that sends
//! batches through the sink's [`Transport`], and flushed at shutdown.
//!
//! `push` never waits: an entry that does not fit is dropped and counted by
//! reason. A batch closes at [`BatchConfig::max_entries`] entries,
//! [`BatchConfig::max_bytes`] bytes or after [`BatchConfig::wait`].
//! [`PushQueue::flush`] sends everything queued now, within a bound; what is
//! still queued when the bound passes is counted as dropped at shutdown.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::LogEntry;
use tokio::sync::{mpsc, oneshot};

use super::stats::{entry_bytes, DropReason, QueueBudget, QueueLimits, SinkStats};
use crate::AdapterError;

/// How entries are grouped into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most entries in one batch.
    pub max_entries: usize,
    /// Most bytes (by [`entry_bytes`]) in one batch; a single larger entry
    /// still goes alone.
    pub max_bytes: usize,
    /// Longest a partial batch waits for more entries
    /// (`LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS`).
    pub wait: Duration,
}

impl Default for BatchConfig {
    /// 500 entries, 4 MiB, 1 s.
    fn default() -> Self {
        Self {
            max_entries: 500,
            max_bytes: 4 * 1024 * 1024,
            wait: Duration::from_secs(1),
        }
    }
}

impl BatchConfig {
    /// Checks the bounds (each above 0; the wait at most a day).
    pub fn validate(&self) -> Result<(), AdapterError> {
        if self.max_entries == 0 || self.max_bytes == 0 || self.wait.is_zero() {
            return Err(AdapterError::Config(
                "the function-log batch size, batch bytes and LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS must be above 0"
                    .into(),
            ));
        }
        if self.wait > Duration::from_secs(24 * 60 * 60) {
            return Err(AdapterError::Config(
                "LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS must be at most a day".into(),
            ));
        }
        Ok(())
    }
}

/// Checks that a pushing sink's URL setting is an http(s) URL; the message
/// names the variable.
pub fn validate_url(variable: &str, url: &str) -> Result<(), AdapterError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(AdapterError::Config(format!(
            "{variable} must be an http(s) URL, got {url:?}"
        )))
    }
}

/// Checks a queue's limits (each above 0).
pub fn validate_limits(limits: &QueueLimits) -> Result<(), AdapterError> {
    if limits.max_entries == 0 || limits.max_bytes == 0 {
        return Err(AdapterError::Config(
            "LOWCODE_FAAS_FUNCTION_LOGS_QUEUE and LOWCODE_FAAS_FUNCTION_LOGS_QUEUE_BYTES must be above 0".into(),
        ));
    }
    Ok(())
}

/// What one send achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Entries the backend accepted.
    pub sent: u64,
    /// Entries lost (refused, unreachable, timed out).
    pub failed: u64,
}

impl Delivery {
    /// Every entry of a batch of `n` accepted.
    pub fn all_sent(n: usize) -> Self {
        Self {
            sent: n as u64,
            failed: 0,
        }
    }

    /// Every entry of a batch of `n` lost.
    pub fn all_failed(n: usize) -> Self {
        Self {
            sent: 0,
            failed: n as u64,
        }
    }
}

/// How a sink sends one batch; each call is bounded by the sink's timeout.
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// Sends the batch (never empty) and says what the backend accepted;
    /// failures are logged here, once, with the sink's name.
    async fn send(&self, batch: &[LogEntry]) -> Delivery;
}

struct Queued {
    entry: LogEntry,
    bytes: usize,
}

/// A sink's bounded queue and its sender task (clones share both).
#[derive(Debug, Clone)]
pub struct PushQueue {
    sink: &'static str,
    tx: mpsc::Sender<Queued>,
    flush_tx: mpsc::Sender<oneshot::Sender<()>>,
    budget: Arc<QueueBudget>,
    stats: Arc<SinkStats>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued").field("bytes", &self.bytes).finish()
    }
}

impl PushQueue {
    /// Starts the sender task of sink `sink` (its metrics label). Call it
    /// inside a tokio runtime.
    pub fn start(
        sink: &'static str,
        limits: QueueLimits,
        batch: BatchConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, AdapterError> {
        validate_limits(&limits)?;
        batch.validate()?;
        let (tx, rx) = mpsc::channel(limits.max_entries);
        let (flush_tx, flush_rx) = mpsc::channel(4);
        let budget = Arc::new(QueueBudget::new(limits));
        let stats = Arc::new(SinkStats::default());
        let sender = Sender {
            rx,
            flush_rx,
            budget: Arc::clone(&budget),
            stats: Arc::clone(&stats),
            batch,
            transport,
            capacity: limits.max_entries,
            carry: None,
        };
        tokio::spawn(sender.run());
        Ok(Self {
            sink,
            tx,
            flush_tx,
            budget,
            stats,
        })
    }

    /// The sink's metrics label.
    pub fn sink(&self) -> &'static str {
        self.sink
    }

    /// The sink's counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        Arc::clone(&self.stats)
    }

    /// Entries waiting now.
    pub fn queued(&self) -> usize {
        self.budget.entries()
    }

    /// Queues entries without waiting; what does not fit is dropped and counted.
    pub fn push(&self, entries: &[LogEntry]) {
        for entry in entries {
            let bytes = entry_bytes(entry);
            if let Err(reason) = self.budget.try_reserve(1, bytes) {
                self.stats.add_dropped(reason, 1);
                continue;
            }
            let queued = Queued {
                entry: entry.clone(),
                bytes,
            };
            if self.tx.try_send(queued).is_err() {
                self.budget.release(1, bytes);
                self.stats.add_dropped(DropReason::QueueFull, 1);
            }
        }
    }

    /// Sends everything queued now (the shutdown path), waiting at most
    /// `within`. True when the queue was emptied in time; otherwise what is
    /// still queued is counted as [`DropReason::Shutdown`].
    pub async fn flush(&self, within: Duration) -> bool {
        let done = async {
            let (ack, acked) = oneshot::channel();
            if self.flush_tx.send(ack).await.is_err() {
                return false;
            }
            acked.await.is_ok()
        };
        let flushed = tokio::time::timeout(within, done).await.unwrap_or(false);
        if !flushed {
            let left = self.budget.entries();
            self.stats.add_dropped(DropReason::Shutdown, left as u64);
            tracing::warn!(
                sink = self.sink,
                entries = left,
                within_ms = u64::try_from(within.as_millis()).unwrap_or(u64::MAX),
                "function logs still queued at shutdown are lost"
            );
        }
        flushed
    }
}

/// The background half: batches entries and hands them to the transport.
struct Sender {
    rx: mpsc::Receiver<Queued>,
    flush_rx: mpsc::Receiver<oneshot::Sender<()>>,
    budget: Arc<QueueBudget>,
    stats: Arc<SinkStats>,
    batch: BatchConfig,
    transport: Arc<dyn Transport>,
    capacity: usize,
    /// An entry that did not fit the last batch's bytes: it opens the next.
    carry: Option<Queued>,
}

impl Sender {
    async fn run(mut self) {
        loop {
            let first = match self.carry.take() {
                Some(first) => first,
                None => tokio::select! {
                    biased;
                    Some(ack) = self.flush_rx.recv() => {
                        self.drain().await;
                        let _ = ack.send(());
                        continue;
                    }
                    next = self.rx.recv() => match next {
                        Some(q) => self.taken(q),
                        None => return,
                    },
                },
            };
            let mut batch = vec![first.entry];
            let mut bytes = first.bytes;
            let deadline = tokio::time::Instant::now() + self.batch.wait;
            let mut flush = None;
            while batch.len() < self.batch.max_entries && bytes < self.batch.max_bytes {
                tokio::select! {
                    biased;
                    Some(ack) = self.flush_rx.recv() => { flush = Some(ack); break; }
                    next = tokio::time::timeout_at(deadline, self.rx.recv()) => match next {
                        Ok(Some(q)) => {
                            let q = self.taken(q);
                            if bytes.saturating_add(q.bytes) > self.batch.max_bytes {
                                self.carry = Some(q);
                                break;
                            }
                            bytes += q.bytes;
                            batch.push(q.entry);
                        }
                        Ok(None) | Err(_) => break,
                    },
                }
            }
            self.send(&batch).await;
            if let Some(ack) = flush {
                self.drain().await;
                let _ = ack.send(());
            }
        }
    }

    /// An entry taken off the channel no longer counts against the queue.
    fn taken(&self, q: Queued) -> Queued {
        self.budget.release(1, q.bytes);
        q
    }

    async fn send(&self, batch: &[LogEntry]) {
        let delivery = self.transport.send(batch).await;
        self.stats.add_sent(delivery.sent);
        self.stats.add_failed(delivery.failed);
    }

    /// Sends what is queued now, in batches; at most one queue's worth, so a
    /// flush ends even while entries keep coming.
    async fn drain(&mut self) {
        let mut left = self.capacity.saturating_add(1);
        loop {
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            while batch.len() < self.batch.max_entries && left > 0 {
                let next = match self.carry.take() {
                    Some(q) => q,
                    None => match self.rx.try_recv() {
                        Ok(q) => self.taken(q),
                        Err(_) => break,
                    },
                };
                if !batch.is_empty() && bytes.saturating_add(next.bytes) > self.batch.max_bytes {
                    self.carry = Some(next);
                    break;
                }
                left -= 1;
                bytes = bytes.saturating_add(next.bytes);
                batch.push(next.entry);
            }
            if batch.is_empty() {
                return;
            }
            self.send(&batch).await;
        }
    }
}

/// A reqwest client for a pushing sink: `timeout` bounds each request and
/// its connect; proxies only as `proxy` says (never the process's variables
/// behind its back).
pub fn http_client(
    timeout: Duration,
    proxy: &crate::outbound::OutboundProxy,
    variable: &str,
) -> Result<reqwest::Client, AdapterError> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("lowcode-faas/", env!("CARGO_PKG_VERSION")));
    proxy
        .apply(builder)?
        .build()
        .map_err(|e| AdapterError::Config(format!("{variable}: {e}")))
}

/// Reads at most `cap` bytes of a response body (the rest is not read).
pub async fn read_capped(mut res: reqwest::Response, cap: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::test_entry as entry;
    use super::*;

    /// Records batches; fails when told to; can hold every send until released.
    #[derive(Debug, Default)]
    struct Recorder {
        batches: Mutex<Vec<Vec<String>>>,
        fail: bool,
        gate: Option<tokio::sync::Semaphore>,
    }

    #[async_trait]
    impl Transport for Recorder {
        async fn send(&self, batch: &[LogEntry]) -> Delivery {
            if let Some(gate) = &self.gate {
                let _permit = gate.acquire().await;
            }
            self.batches
                .lock()
                .unwrap()
                .push(batch.iter().map(|e| e.message.clone()).collect());
            if self.fail {
                Delivery::all_failed(batch.len())
            } else {
                Delivery::all_sent(batch.len())
            }
        }
    }

    fn slow_batches() -> BatchConfig {
        BatchConfig {
            max_entries: 3,
            max_bytes: 1 << 20,
            wait: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn flush_sends_a_partial_batch_that_would_wait_an_hour() {
        let recorder = Arc::new(Recorder::default());
        let queue = PushQueue::start("test", QueueLimits::default(), slow_batches(), recorder.clone()).unwrap();
        queue.push(&[
            entry("r", "f", "a"),
            entry("r", "f", "b"),
            entry("r", "f", "c"),
            entry("r", "f", "d"),
        ]);
        assert!(queue.flush(Duration::from_secs(30)).await);
        let batches = recorder.batches.lock().unwrap().clone();
        assert_eq!(
            batches,
            vec![vec!["a", "b", "c"], vec!["d"]],
            "full batches of 3, then the rest"
        );
        assert_eq!(queue.stats().sent(), 4);
        assert_eq!(queue.queued(), 0);
    }

    #[tokio::test]
    async fn batches_close_at_their_byte_bound() {
        let recorder = Arc::new(Recorder::default());
        let one = entry_bytes(&entry("r", "f", &"x".repeat(100)));
        let batch = BatchConfig {
            max_entries: 100,
            max_bytes: one * 2,
            wait: Duration::from_secs(3600),
        };
        let queue = PushQueue::start("test", QueueLimits::default(), batch, recorder.clone()).unwrap();
        let five: Vec<LogEntry> = (0..5)
            .map(|i| entry("r", "f", &format!("{i}{}", "x".repeat(99))))
            .collect();
        queue.push(&five);
        assert!(queue.flush(Duration::from_secs(30)).await);
        let sizes: Vec<usize> = recorder.batches.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }

    #[tokio::test]
    async fn a_full_queue_drops_by_entries_and_by_bytes_and_counts_failures() {
        let recorder = Arc::new(Recorder {
            fail: true,
            gate: Some(tokio::sync::Semaphore::new(0)),
            ..Recorder::default()
        });
        let one = entry_bytes(&entry("r", "f", "m"));
        let limits = QueueLimits {
            max_entries: 3,
            max_bytes: one * 3 + 10,
        };
        let queue = PushQueue::start(
            "test",
            limits,
            BatchConfig {
                max_entries: 1,
                ..slow_batches()
            },
            recorder.clone(),
        )
        .unwrap();
        // The sender takes at most one entry and then waits on the gate, so
        // the queue fills up whatever the scheduling.
        let many: Vec<LogEntry> = (0..10).map(|i| entry("r", "f", &i.to_string())).collect();
        queue.push(&many);
        assert!(queue.stats().dropped(DropReason::QueueFull) >= 6);
        queue.push(&[entry("r", "f", &"x".repeat(one * 4))]);
        assert_eq!(queue.stats().dropped(DropReason::TooLarge), 1);
        let recorder_gate = recorder.gate.as_ref().unwrap();
        recorder_gate.add_permits(100);
        assert!(queue.flush(Duration::from_secs(30)).await);
        let stats = queue.stats();
        assert_eq!(stats.sent(), 0);
        assert_eq!(
            stats.failed() + stats.dropped_total(),
            11,
            "every entry is accounted for"
        );

        // Bytes: three entries fit by count but not by bytes.
        let recorder = Arc::new(Recorder {
            gate: Some(tokio::sync::Semaphore::new(0)),
            ..Recorder::default()
        });
        let queue = PushQueue::start(
            "test",
            QueueLimits {
                max_entries: 100,
                max_bytes: one * 3,
            },
            BatchConfig {
                max_entries: 1,
                ..slow_batches()
            },
            recorder.clone(),
        )
        .unwrap();
        let many: Vec<LogEntry> = (0..10).map(|i| entry("r", "f", &i.to_string())).collect();
        queue.push(&many);
        assert!(queue.stats().dropped(DropReason::QueueBytes) >= 6);
        assert_eq!(queue.stats().dropped(DropReason::QueueFull), 0);
        recorder.gate.as_ref().unwrap().add_permits(100);
        assert!(queue.flush(Duration::from_secs(30)).await);
    }

    #[tokio::test]
    async fn a_flush_that_runs_out_of_time_counts_what_is_left() {
        let recorder = Arc::new(Recorder {
            gate: Some(tokio::sync::Semaphore::new(0)),
            ..Recorder::default()
        });
        let queue = PushQueue::start(
            "test",
            QueueLimits::default(),
            BatchConfig {
                max_entries: 1,
                ..slow_batches()
            },
            recorder.clone(),
        )
        .unwrap();
        let many: Vec<LogEntry> = (0..5).map(|i| entry("r", "f", &i.to_string())).collect();
        queue.push(&many);
        // The transport never answers: the flush gives up.
        assert!(!queue.flush(Duration::from_millis(50)).await);
        let shutdown = queue.stats().dropped(DropReason::Shutdown);
        assert!((4..=5).contains(&shutdown), "{shutdown}");
    }
}
