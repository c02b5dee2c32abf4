//! Connections: each must keep making progress, and when every slot is
//! taken, the one making the least gives its slot up.
//!
//! A peer can hold a connection without ever finishing anything: silence
//! before the first byte, half a TLS handshake, part of the HTTP/2 preface,
//! part of a request head, a HEADERS frame without END_HEADERS, a body
//! that stalls, an idle keep-alive, an HTTP/2 connection with no stream, a
//! stream that never ends, an answer never read. Rather than a timer per
//! protocol state, each connection records its *steps* (accepted, a request
//! head complete, a body read, a piece of an answer taken by the client),
//! and its deadline follows from them:
//!
//! - with no request open, a request head must be complete within the read
//!   timeout of the last step (the accept, or the end of the last answer);
//!   whatever the peer sends meanwhile (bytes of a head, pings, TLS
//!   records) is not a step;
//! - a request body must arrive within the read timeout of its head (the
//!   handler answers 408 then; the connection is closed if even that stalls);
//! - each piece of an answer must be taken within the read timeout of the
//!   piece before;
//! - the time a request waits for and spends on an evaluation thread is
//!   the server's, and counts against nobody.
//!
//! One reaper task looks at every connection a few times per timeout and
//! closes those past their deadline. When every slot is taken, a new
//! connection is accepted but not served until a slot frees, or until some
//! connection has gone [`reclaim_after`](Connections::new) without a step:
//! then the one that has gone longest is closed in its favour. A connection
//! with a request being decided is never closed to make room, and a new one
//! always has `reclaim_after` to send its first request head, so peers that
//! reconnect as fast as they are cut take turns with each other, not with
//! clients that send requests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::metrics::{Cut, Metrics};

/// The connections being served, and their slots.
pub struct Connections {
    open: Mutex<Vec<Arc<Tracker>>>,
    /// A slot was given back.
    freed: Notify,
    capacity: usize,
    timeout: Duration,
    reclaim_after: Duration,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

/// One connection's steps, shared by its task, its requests, the reaper
/// and the accept loop.
pub struct Tracker {
    id: u64,
    progress: Mutex<Progress>,
    closing: AtomicBool,
    close: Notify,
}

struct Progress {
    /// The last step while no request was open: the accept, or the end of the last answer.
    idle_since: Instant,
    /// The requests open: head complete, answer not yet taken.
    requests: Vec<Request>,
    next_request: u64,
}

struct Request {
    id: u64,
    phase: Phase,
    /// Its last step.
    since: Instant,
}

/// Whose time a request is spending.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// The client's: its body is arriving.
    Reading,
    /// The server's: waiting for or on an evaluation thread.
    Deciding,
    /// The client's: it is taking the answer.
    Answering,
}

/// A slot held by one connection's task; given back when dropped.
pub struct Slot {
    connections: Arc<Connections>,
    tracker: Arc<Tracker>,
}

/// One request on a connection, from its complete head to the end of its
/// answer (dropped): what its steps are recorded through.
pub struct RequestSteps {
    tracker: Arc<Tracker>,
    id: u64,
}

impl Connections {
    /// `capacity` slots; heads, bodies and answer pieces within `timeout`;
    /// connections that have gone `reclaim_after` without a step may be
    /// closed to make room.
    pub fn new(capacity: usize, timeout: Duration, reclaim_after: Duration, metrics: Arc<Metrics>) -> Connections {
        Connections {
            open: Mutex::new(Vec::with_capacity(capacity)),
            freed: Notify::new(),
            capacity: capacity.max(1),
            timeout,
            reclaim_after,
            next_id: AtomicU64::new(0),
            metrics,
        }
    }

    /// How long a connection may go without a step before it is reclaimed for
    /// a newcomer, by default: long enough for any client that means to
    /// send a request to send its head, short enough for newcomers not to
    /// wait long.
    pub fn default_reclaim_after(timeout: Duration) -> Duration {
        (timeout / 4).min(Duration::from_millis(250))
    }

    /// How often the reaper looks: a few times per timeout.
    fn tick(&self) -> Duration {
        (self.timeout / 8).clamp(Duration::from_millis(5), Duration::from_millis(250))
    }

    /// A slot for a connection just accepted: a free one, or one reclaimed
    /// from the connection that has gone longest without a step (at least
    /// `reclaim_after`). Waits until there is one.
    pub async fn slot(self: &Arc<Self>) -> Slot {
        loop {
            let freed = self.freed.notified();
            let now = Instant::now();
            let wait_until = {
                let mut open = lock(&self.open);
                if open.len() < self.capacity {
                    return self.register(&mut open, now);
                }
                let mut oldest: Option<(Instant, usize)> = None;
                for (at, tracker) in open.iter().enumerate() {
                    if tracker.is_closing() {
                        continue;
                    }
                    if let Some(since) = tracker.stalled_since() {
                        if oldest.is_none_or(|(earliest, _)| since < earliest) {
                            oldest = Some((since, at));
                        }
                    }
                }
                match oldest {
                    Some((since, at)) if now.saturating_duration_since(since) >= self.reclaim_after => {
                        // Its slot is the newcomer's now; its task ends at its next poll.
                        let victim = open.swap_remove(at);
                        victim.close();
                        self.metrics.connection_cut(Cut::Reclaimed);
                        return self.register(&mut open, now);
                    }
                    Some((since, _)) => since + self.reclaim_after,
                    None => now + self.tick(),
                }
            };
            tokio::select! {
                () = freed => {}
                () = tokio::time::sleep_until(wait_until.into()) => {}
            }
        }
    }

    fn register(self: &Arc<Self>, open: &mut Vec<Arc<Tracker>>, now: Instant) -> Slot {
        let tracker = Arc::new(Tracker {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            progress: Mutex::new(Progress { idle_since: now, requests: Vec::new(), next_request: 0 }),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        open.push(Arc::clone(&tracker));
        self.metrics.connection_opened();
        Slot { connections: Arc::clone(self), tracker }
    }

    /// Closes every connection past its deadline, a few times per timeout, for ever.
    pub async fn reap(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.tick());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = Instant::now();
            let late: Vec<Arc<Tracker>> = lock(&self.open)
                .iter()
                .filter(|tracker| !tracker.is_closing() && tracker.deadline(self.timeout).is_some_and(|at| at <= now))
                .cloned()
                .collect();
            for tracker in late {
                tracker.close();
                self.metrics.connection_cut(Cut::Stalled);
            }
        }
    }

    /// Connections holding a slot now.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.open).len()
    }
}

impl Slot {
    /// The connection's progress.
    pub fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.connections.open);
        if let Some(at) = open.iter().position(|tracker| tracker.id == self.tracker.id) {
            open.swap_remove(at);
        }
        drop(open);
        self.connections.metrics.connection_closed();
        self.connections.freed.notify_one();
    }
}

impl Tracker {
    /// A request head is complete: a step, and a request open.
    pub fn request(self: &Arc<Self>) -> RequestSteps {
        let mut progress = lock(&self.progress);
        let id = progress.next_request;
        progress.next_request += 1;
        progress.requests.push(Request { id, phase: Phase::Reading, since: Instant::now() });
        RequestSteps { tracker: Arc::clone(self), id }
    }

    /// Resolves once the connection is to be closed (past its deadline, or reclaimed).
    pub async fn closed(&self) {
        loop {
            let notified = self.close.notified();
            if self.is_closing() {
                return;
            }
            notified.await;
        }
    }

    fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.close.notify_waiters();
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// When the connection is past due, if it can be: see the module docs.
    /// A body that stalls gets a timeout's grace beyond its own, in which
    /// its handler answers 408.
    fn deadline(&self, timeout: Duration) -> Option<Instant> {
        let progress = lock(&self.progress);
        if progress.requests.is_empty() {
            return Some(progress.idle_since + timeout);
        }
        progress
            .requests
            .iter()
            .filter_map(|request| match request.phase {
                Phase::Reading => Some(request.since + 2 * timeout),
                Phase::Answering => Some(request.since + timeout),
                Phase::Deciding => None,
            })
            .min()
    }

    /// Since when the connection has waited on its peer without a step, or
    /// `None` while one of its requests is being decided.
    fn stalled_since(&self) -> Option<Instant> {
        let progress = lock(&self.progress);
        if progress.requests.iter().any(|request| request.phase == Phase::Deciding) {
            return None;
        }
        Some(progress.requests.iter().map(|request| request.since).min().unwrap_or(progress.idle_since))
    }

    fn step(&self, id: u64, phase: Phase) {
        let mut progress = lock(&self.progress);
        if let Some(request) = progress.requests.iter_mut().find(|request| request.id == id) {
            if request.phase != phase || phase != Phase::Deciding {
                request.since = Instant::now();
            }
            request.phase = phase;
        }
    }
}

impl RequestSteps {
    /// Its body is read: from now on it waits for the server.
    pub fn deciding(&self) {
        self.tracker.step(self.id, Phase::Deciding);
    }

    /// A piece of its answer is ready for the client to take: a step, and
    /// from now on the client's time.
    pub fn answering(&self) {
        self.tracker.step(self.id, Phase::Answering);
    }
}

impl Drop for RequestSteps {
    fn drop(&mut self) {
        let mut progress = lock(&self.tracker.progress);
        progress.requests.retain(|request| request.id != self.id);
        if progress.requests.is_empty() {
            progress.idle_since = Instant::now();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(400);
    const RECLAIM_AFTER: Duration = Duration::from_millis(100);

    fn connections(capacity: usize) -> Arc<Connections> {
        Arc::new(Connections::new(capacity, TIMEOUT, RECLAIM_AFTER, Arc::new(Metrics::new(1))))
    }

    #[tokio::test]
    async fn a_full_house_reclaims_the_longest_stalled_and_never_one_deciding() {
        let connections = connections(3);
        let deciding = connections.slot().await;
        let request = deciding.tracker().request();
        request.deciding();
        // Taken before the slot, so never later than its last step.
        let idle_since = Instant::now();
        let idle = connections.slot().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let answered = connections.slot().await;
        let kept = answered.tracker().request();
        kept.answering();
        assert_eq!(connections.len(), 3);

        // Nobody has gone 100 ms without a step yet: the newcomer waits...
        let newcomer = connections.slot().await;
        // ...until the idle one has (measured from its last step, whatever
        // the scheduler did meanwhile), and it is the one reclaimed: not the
        // one deciding (however long), nor the younger one.
        assert!(idle_since.elapsed() >= RECLAIM_AFTER, "{:?}", idle_since.elapsed());
        assert!(idle.tracker().is_closing());
        assert!(!deciding.tracker().is_closing() && !answered.tracker().is_closing());
        assert!(!newcomer.tracker().is_closing());
        assert_eq!(connections.len(), 3, "the reclaimed slot is the newcomer's");
        // A slot given back is taken at once.
        drop(answered);
        let started = Instant::now();
        let _next = connections.slot().await;
        assert!(started.elapsed() < RECLAIM_AFTER);
        drop(request);
    }

    #[test]
    fn deadlines_follow_the_steps() {
        let connections = connections(4);
        let slot =
            tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(connections.slot());
        let tracker = slot.tracker();
        let within = |deadline: Option<Instant>, from: Instant, after: Duration| {
            let at = deadline.expect("a deadline");
            at >= from + after && at <= Instant::now() + after
        };
        let before = Instant::now();
        assert!(
            within(tracker.deadline(TIMEOUT), before - TIMEOUT, TIMEOUT),
            "a head within the timeout of the accept"
        );
        let before = Instant::now();
        let request = tracker.request();
        assert!(within(tracker.deadline(TIMEOUT), before, 2 * TIMEOUT), "a body, with a grace for its 408");
        request.deciding();
        assert_eq!(tracker.deadline(TIMEOUT), None, "deciding is the server's time");
        assert_eq!(tracker.stalled_since(), None, "and never reclaimed");
        let before = Instant::now();
        request.answering();
        assert!(within(tracker.deadline(TIMEOUT), before, TIMEOUT), "each piece within the timeout");
        let before = Instant::now();
        drop(request);
        assert!(within(tracker.deadline(TIMEOUT), before, TIMEOUT), "the next head, from the answer's end");
    }
}
