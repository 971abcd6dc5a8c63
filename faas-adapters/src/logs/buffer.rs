//! The bounded in-memory buffer of the newest entries, behind
//! `GET /function-logs`: capped in entries and in bytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use faas_ports::{LogEntry, LogSink, PortError};

use super::stats::{entry_bytes, DropReason, SinkStats};

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

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<(LogEntry, usize)>,
    bytes: usize,
}

/// The bounded in-memory buffer of the newest entries.
///
/// Holds at most `capacity` entries and `max_bytes` bytes (by
/// [`entry_bytes`]); the oldest entries make room for new ones (counted as
/// [`DropReason::Evicted`]); an entry larger than `max_bytes` is not kept
/// ([`DropReason::TooLarge`]).
#[derive(Debug)]
pub struct LogBuffer {
    ring: Mutex<Ring>,
    capacity: usize,
    max_bytes: usize,
    stats: Arc<SinkStats>,
}

impl LogBuffer {
    /// A buffer keeping the newest `capacity` entries within `max_bytes`.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            ring: Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.min(4096)),
                bytes: 0,
            }),
            capacity,
            max_bytes,
            stats: Arc::default(),
        }
    }

    /// The buffer's counters (`sent` = stored).
    pub fn stats(&self) -> Arc<SinkStats> {
        Arc::clone(&self.stats)
    }

    /// Appends entries, dropping the oldest past either cap.
    pub fn push(&self, entries: &[LogEntry]) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        for entry in entries {
            let size = entry_bytes(entry);
            if self.capacity == 0 || size > self.max_bytes {
                self.stats.add_dropped(DropReason::TooLarge, 1);
                continue;
            }
            while ring.entries.len() >= self.capacity || ring.bytes.saturating_add(size) > self.max_bytes {
                let Some((_, old)) = ring.entries.pop_front() else {
                    break;
                };
                ring.bytes = ring.bytes.saturating_sub(old);
                self.stats.add_dropped(DropReason::Evicted, 1);
            }
            ring.entries.push_back((entry.clone(), size));
            ring.bytes = ring.bytes.saturating_add(size);
            self.stats.add_sent(1);
        }
    }

    /// Matching entries, newest first, at most `limit`.
    pub fn query(&self, filter: &LogFilter, limit: usize) -> Vec<LogEntry> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.entries
            .iter()
            .rev()
            .map(|(e, _)| e)
            .filter(|e| filter.matches(e))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner).entries.len()
    }

    /// Bytes held now (by [`entry_bytes`]).
    pub fn bytes(&self) -> usize {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner).bytes
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

#[cfg(test)]
mod tests {
    use super::super::test_entry as entry;
    use super::*;

    #[test]
    fn buffer_is_bounded_and_searched_newest_first() {
        let buf = LogBuffer::new(3, 1 << 20);
        buf.push(&[
            entry("r1", "f", "one"),
            entry("r1", "f", "Two"),
            entry("r2", "g", "three"),
        ]);
        buf.push(&[entry("r3", "f", "four")]);
        assert_eq!(buf.len(), 3, "oldest dropped");
        assert_eq!(buf.stats().dropped(DropReason::Evicted), 1);
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

    #[test]
    fn buffer_is_bounded_in_bytes_too() {
        let one = entry_bytes(&entry("r", "f", &"x".repeat(1000)));
        // Room for 2.5 big entries, however many entries are allowed.
        let buf = LogBuffer::new(10_000, one * 5 / 2);
        let big: Vec<LogEntry> = (0..5)
            .map(|i| entry("r", "f", &format!("{i}{}", "x".repeat(999))))
            .collect();
        buf.push(&big);
        assert_eq!(buf.len(), 2, "bytes, not entries, bound the buffer");
        assert!(buf.bytes() <= one * 5 / 2);
        assert!(
            buf.query(&LogFilter::default(), 10)[0].message.starts_with('4'),
            "newest kept"
        );
        assert_eq!(buf.stats().dropped(DropReason::Evicted), 3);
        // An entry larger than the whole buffer is refused, the others stay.
        buf.push(&[entry("r", "f", &"y".repeat(one * 3))]);
        assert_eq!(buf.stats().dropped(DropReason::TooLarge), 1);
        assert_eq!(buf.len(), 2);
        assert_eq!(buf.stats().sent(), 5);
    }
}
