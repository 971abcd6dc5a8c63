//! What every function-log sink counts (entries sent, failed, dropped by
//! reason) and the bound of a sink's queue in entries and bytes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use faas_ports::LogEntry;

/// Fixed allowance per entry for its keys, quotes and numbers, on top of
/// the lengths of its strings (see [`entry_bytes`]).
pub const ENTRY_OVERHEAD_BYTES: usize = 192;

/// The size an entry is charged against byte caps: the lengths of its
/// strings plus [`ENTRY_OVERHEAD_BYTES`], about the size of its JSON.
pub fn entry_bytes(e: &LogEntry) -> usize {
    [
        &e.run_id,
        &e.execution_id,
        &e.function_name,
        &e.collection_path,
        &e.deployment_id,
        &e.ts,
        &e.message,
    ]
    .iter()
    .fold(ENTRY_OVERHEAD_BYTES, |sum, s| sum.saturating_add(s.len()))
}

/// Why a sink dropped entries (the `reason` label of the drop counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The sink's queue held its most entries.
    QueueFull,
    /// The sink's queue held its most bytes.
    QueueBytes,
    /// One entry (or one run's lines, for stdout) is larger than the whole
    /// byte cap (or, for stdout, one run has more lines than the entry cap):
    /// it could never be kept.
    TooLarge,
    /// Pushed out of the memory buffer by newer entries (the ring at work).
    Evicted,
    /// Still queued when the shutdown flush ran out of time.
    Shutdown,
}

impl DropReason {
    /// Every reason, in the order metrics list them.
    pub const ALL: [DropReason; 5] = [
        DropReason::QueueFull,
        DropReason::QueueBytes,
        DropReason::TooLarge,
        DropReason::Evicted,
        DropReason::Shutdown,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::QueueBytes => "queue_bytes",
            DropReason::TooLarge => "too_large",
            DropReason::Evicted => "evicted",
            DropReason::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        match self {
            DropReason::QueueFull => 0,
            DropReason::QueueBytes => 1,
            DropReason::TooLarge => 2,
            DropReason::Evicted => 3,
            DropReason::Shutdown => 4,
        }
    }
}

/// Counters of one sink; the metrics export them per sink.
#[derive(Debug, Default)]
pub struct SinkStats {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: [AtomicU64; 5],
}

impl SinkStats {
    /// Counts entries delivered (written, stored, accepted by the backend).
    pub fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts entries lost in a failed delivery (refused, unreachable, timed out).
    pub fn add_failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts entries dropped before delivery.
    pub fn add_dropped(&self, reason: DropReason, n: u64) {
        self.dropped[reason.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// Entries delivered.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Entries lost in failed deliveries.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Entries dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Ordering::Relaxed)
    }

    /// Entries dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.dropped(*r)).sum()
    }
}

/// How much a sink's queue may hold: entries and bytes (by [`entry_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most entries waiting (`LOWCODE_FAAS_FUNCTION_LOGS_QUEUE`).
    pub max_entries: usize,
    /// Most bytes waiting (`LOWCODE_FAAS_FUNCTION_LOGS_QUEUE_BYTES`).
    pub max_bytes: usize,
}

impl Default for QueueLimits {
    /// 10000 entries and 32 MiB.
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The entries and bytes a queue holds now, reserved before an item goes in
/// and released when it comes out, so both caps hold at every moment.
#[derive(Debug)]
pub(crate) struct QueueBudget {
    limits: QueueLimits,
    used: Mutex<(usize, usize)>,
}

impl QueueBudget {
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            used: Mutex::new((0, 0)),
        }
    }

    /// Reserves room for `entries` entries of `bytes` bytes, or says why not.
    pub(crate) fn try_reserve(&self, entries: usize, bytes: usize) -> Result<(), DropReason> {
        if bytes > self.limits.max_bytes || entries > self.limits.max_entries {
            return Err(DropReason::TooLarge);
        }
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        if used.0.saturating_add(entries) > self.limits.max_entries {
            return Err(DropReason::QueueFull);
        }
        if used.1.saturating_add(bytes) > self.limits.max_bytes {
            return Err(DropReason::QueueBytes);
        }
        used.0 += entries;
        used.1 += bytes;
        Ok(())
    }

    /// Gives back what an item that left the queue had reserved.
    pub(crate) fn release(&self, entries: usize, bytes: usize) {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        used.0 = used.0.saturating_sub(entries);
        used.1 = used.1.saturating_sub(bytes);
    }

    /// Entries held now.
    pub(crate) fn entries(&self) -> usize {
        self.used.lock().unwrap_or_else(PoisonError::into_inner).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_holds_both_caps_and_says_which_one_refused() {
        let budget = QueueBudget::new(QueueLimits {
            max_entries: 3,
            max_bytes: 100,
        });
        assert_eq!(budget.try_reserve(1, 101), Err(DropReason::TooLarge));
        assert_eq!(
            budget.try_reserve(4, 10),
            Err(DropReason::TooLarge),
            "more entries than the queue ever holds"
        );
        assert_eq!(budget.try_reserve(1, 60), Ok(()));
        assert_eq!(budget.try_reserve(1, 50), Err(DropReason::QueueBytes));
        assert_eq!(budget.try_reserve(2, 40), Ok(()));
        assert_eq!(budget.try_reserve(1, 0), Err(DropReason::QueueFull));
        budget.release(1, 60);
        assert_eq!(budget.entries(), 2);
        assert_eq!(budget.try_reserve(1, 60), Ok(()));
    }

    #[test]
    fn stats_count_by_reason() {
        let stats = SinkStats::default();
        stats.add_dropped(DropReason::QueueBytes, 2);
        stats.add_dropped(DropReason::Shutdown, 1);
        stats.add_sent(5);
        stats.add_failed(1);
        assert_eq!(stats.dropped(DropReason::QueueBytes), 2);
        assert_eq!(stats.dropped(DropReason::QueueFull), 0);
        assert_eq!(stats.dropped_total(), 3);
        assert_eq!((stats.sent(), stats.failed()), (5, 1));
        let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["queue_full", "queue_bytes", "too_large", "evicted", "shutdown"]);
    }

    #[test]
    fn entry_bytes_grow_with_the_message() {
        let mut e = LogEntry {
            run_id: "r".into(),
            execution_id: "r".into(),
            function_name: "f".into(),
            collection_path: String::new(),
            deployment_version: 1,
            deployment_id: "f@v1".into(),
            ts: "t".into(),
            level: faas_ports::LogLevel::Log,
            message: String::new(),
            start_kind: faas_ports::StartKind::Cold,
        };
        let small = entry_bytes(&e);
        assert!(small >= ENTRY_OVERHEAD_BYTES);
        e.message = "x".repeat(1000);
        assert_eq!(entry_bytes(&e), small + 1000);
    }
}
