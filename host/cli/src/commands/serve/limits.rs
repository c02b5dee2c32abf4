//! Admission and evaluation: a bounded queue in front of a fixed set of
//! evaluation threads.
//!
//! A decision request holds a place in the queue from the moment it is
//! admitted until its answer is taken whole: while its body arrives, while
//! it waits for a thread, while it is decided, and while the client reads
//! the answer. With every place taken, a request is answered 503 with
//! `Retry-After` at once, so memory stays bounded by the queue times what
//! one request may hold (its body, its records and a few chunks of answer;
//! see `batch`) however fast requests come and however slowly answers are
//! read. Evaluation is CPU-bound and blocking: it runs on tokio's blocking
//! pool, at most `workers` at a time, never on the threads that drive
//! connections; a batch takes a thread a part at a time.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;

/// What bounds a request, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The largest request body (a batch); a single record is also capped at a line's limit.
    pub max_body_bytes: usize,
    /// A request head (from the accept, or from the last answer), a body
    /// (from its head), and each piece of an answer must arrive or be taken within this.
    pub read_timeout: Duration,
    /// Decision requests admitted at once.
    pub queue: usize,
    /// Evaluation threads.
    pub workers: usize,
    /// Open connections at once; a newcomer waits for a slot, or takes that
    /// of the connection that has gone longest without progress.
    pub max_connections: usize,
    /// How long shutdown waits for the requests in flight.
    pub shutdown_timeout: Duration,
}

/// The queue and the evaluation threads.
pub struct Admission {
    queue: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

/// A place in the queue, held until the request is answered.
pub struct Ticket {
    _place: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The evaluation panicked (a bug in the host, never a policy's doing).
#[derive(Debug)]
pub struct Panicked;

impl Admission {
    pub fn new(bounds: &Bounds, metrics: Arc<Metrics>) -> Admission {
        Admission {
            queue: Arc::new(Semaphore::new(bounds.queue.max(1))),
            workers: Arc::new(Semaphore::new(bounds.workers.max(1))),
            metrics,
        }
    }

    /// A place in the queue, or `None` when it is full.
    pub fn admit(&self) -> Option<Ticket> {
        let place = Arc::clone(&self.queue).try_acquire_owned().ok()?;
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Ticket { _place: place, metrics: Arc::clone(&self.metrics) })
    }

    /// Runs `work` on an evaluation thread once one is free.
    ///
    /// If the caller goes away meanwhile (the client disconnected), work
    /// already started still finishes on its thread, holding it: the
    /// number of threads deciding stays bounded.
    pub async fn evaluate<T: Send + 'static>(
        &self,
        _ticket: &Ticket,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Panicked> {
        self.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
        let thread = Arc::clone(&self.workers).acquire_owned().await;
        self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
        let thread = thread.map_err(|_| Panicked)?; // the semaphore is never closed
        tokio::task::spawn_blocking(move || {
            let _thread = thread;
            work()
        })
        .await
        .map_err(|_| Panicked)
    }
}
