//! Capacity limits (docs/api.md): at most N runs at once, at most M waiting,
//! refusal beyond that. The wait counts against the run's own deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::DomainError;

/// Run slots and the bounded queue in front of them.
#[derive(Debug)]
pub struct Capacity {
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    max_queued: usize,
    queued: AtomicUsize,
}

/// A held run slot; the slot is free again when this is dropped.
#[derive(Debug)]
pub struct RunSlot {
    _permit: OwnedSemaphorePermit,
}

/// What [`Capacity::acquire`] came to.
#[derive(Debug)]
pub enum Admission {
    /// A slot is held.
    Admitted(RunSlot),
    /// The deadline passed while waiting in the queue.
    TimedOut,
}

impl Capacity {
    /// `max_concurrent` slots (at least 1) and room for `max_queued` waiters.
    pub fn new(max_concurrent: usize, max_queued: usize) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Self {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            max_queued,
            queued: AtomicUsize::new(0),
        }
    }

    /// Takes a slot, waiting at most `wait` in the queue.
    /// `TooManyRequests` when every slot is busy and the queue is full.
    pub async fn acquire(&self, wait: Duration) -> Result<Admission, DomainError> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(Admission::Admitted(RunSlot { _permit: permit }));
        }
        let before = self.queued.fetch_add(1, Ordering::SeqCst);
        let _queued = QueueGuard(&self.queued);
        if before >= self.max_queued {
            return Err(DomainError::TooManyRequests {
                in_flight: self.in_flight(),
                queued: before,
            });
        }
        match tokio::time::timeout(wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Admission::Admitted(RunSlot { _permit: permit })),
            // The semaphore is never closed; treat it like a full queue if it ever is.
            Ok(Err(_closed)) => Err(DomainError::TooManyRequests {
                in_flight: self.in_flight(),
                queued: self.queued(),
            }),
            Err(_elapsed) => Ok(Admission::TimedOut),
        }
    }

    /// Runs holding a slot now.
    pub fn in_flight(&self) -> usize {
        self.max_concurrent.saturating_sub(self.slots.available_permits())
    }

    /// Invokes waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

struct QueueGuard<'a>(&'a AtomicUsize);

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(a: Admission) -> RunSlot {
        match a {
            Admission::Admitted(slot) => slot,
            Admission::TimedOut => panic!("expected a slot"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn admits_up_to_the_limit_then_queues_then_refuses() {
        let cap = Arc::new(Capacity::new(2, 1));
        let a = admitted(cap.acquire(Duration::from_secs(1)).await.unwrap());
        let _b = admitted(cap.acquire(Duration::from_secs(1)).await.unwrap());
        assert_eq!(cap.in_flight(), 2);

        // Third waits in the queue.
        let waiter = {
            let cap = Arc::clone(&cap);
            tokio::spawn(async move { cap.acquire(Duration::from_secs(60)).await })
        };
        while cap.queued() == 0 {
            tokio::task::yield_now().await;
        }
        // Fourth finds the queue full.
        let err = cap.acquire(Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.code(), "TOO_MANY_REQUESTS");

        drop(a);
        let third = waiter.await.unwrap().unwrap();
        assert!(matches!(third, Admission::Admitted(_)));
        assert_eq!(cap.queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn queue_wait_times_out_at_the_deadline() {
        let cap = Capacity::new(1, 4);
        let _held = admitted(cap.acquire(Duration::from_secs(1)).await.unwrap());
        let got = cap.acquire(Duration::from_millis(50)).await.unwrap();
        assert!(matches!(got, Admission::TimedOut));
        assert_eq!(cap.queued(), 0, "a timed-out waiter leaves the queue");
    }

    #[tokio::test]
    async fn zero_queue_refuses_immediately() {
        let cap = Capacity::new(1, 0);
        let _held = admitted(cap.acquire(Duration::from_secs(1)).await.unwrap());
        assert!(cap.acquire(Duration::from_secs(1)).await.is_err());
    }
}
