//! The workers and the queue in front of them: at most `workers` queries run at once (jobs and
//! reshapes alike), at most `queue_length` wait, first come first served; beyond that the answer is
//! `Busy`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::query::{EngineError, ErrorKind};

pub struct Pool {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue_length: usize,
}

/// A place in the queue; given back when dropped, whether or not it turned into a permit.
pub struct Ticket {
    waiting: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub fn new(workers: usize, queue_length: usize) -> Pool {
        Pool {
            // Tokio's semaphore is fair: waiters get permits in the order they asked.
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue_length: queue_length.max(1),
        }
    }

    /// Takes a place in the queue, or answers `Busy` when it is full.
    pub fn admit(&self) -> Result<Ticket, EngineError> {
        self.waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.queue_length).then_some(n + 1)
            })
            .map(|_| Ticket {
                waiting: self.waiting.clone(),
            })
            .map_err(|_| {
                EngineError::new(ErrorKind::Busy, "the job queue is full; try again later")
            })
    }

    /// Waits for a worker; `None` once the pool is closed (the engine is stopping).
    pub async fn acquire(&self, ticket: Ticket) -> Option<OwnedSemaphorePermit> {
        let permit = self.permits.clone().acquire_owned().await.ok();
        drop(ticket);
        permit
    }

    /// Refuses every later `acquire`.
    pub fn close(&self) {
        self.permits.close();
    }
}
