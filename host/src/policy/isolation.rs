//! How much a policy can carry from one record to the next, and where the
//! instances kept between calls live.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sandbox::GuestInstance;

/// How much a policy can carry from one record to the next.
///
/// An instance's memory outlives a call, so a policy could remember what
/// it saw: answer differently depending on earlier records, or carry bytes
/// of one record into the answer about another. Each level trades that
/// against the cost of a fresh instance (instantiation and a configuration
/// parse, measured in BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// Every record is answered by a fresh instance: a policy sees one
    /// record and its configuration, nothing else. The strictest level.
    PerRecord,
    /// Every call (a batch of up to `max_batch` records, or one record) is
    /// answered by a fresh instance: a policy sees the records of that call
    /// only. Nothing crosses from one call, or one caller, to the next.
    PerCall,
    /// Instances are kept and reused across calls (the default): the
    /// fastest, and a policy could keep state between records, which
    /// rechecks catch ([`HostBuilder::recheck_every`](crate::HostBuilder::recheck_every)).
    /// A fresh instance costs an instantiation and a configuration parse,
    /// so `PerCall` doubles the cost of a batch of 256 and makes a
    /// single-record call some 70 times dearer (BENCHMARKS.md).
    #[default]
    Reuse,
}

/// One instance slot per core, so that threads calling the same policy at
/// once do not queue on one lock: a thread takes the slot its index falls
/// on, and only when another thread holds that slot does it use the shared
/// pool. As many slots as cores, not threads: threads come and go (a pool
/// of a server's, `check`'s workers per chunk), and a slot per thread ever
/// seen would keep an instance of every policy for each.
pub(crate) struct ThreadSlots(Box<[Mutex<Option<GuestInstance>>]>);

impl ThreadSlots {
    pub(crate) fn new() -> ThreadSlots {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        ThreadSlots((0..cores.clamp(1, 64)).map(|_| Mutex::new(None)).collect())
    }

    /// The calling thread's slot, unless another thread holds it.
    pub(crate) fn of_this_thread(&self) -> Option<std::sync::MutexGuard<'_, Option<GuestInstance>>> {
        static NEXT_THREAD: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            static THREAD: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
        }
        let slot = &self.0[THREAD.with(|n| *n) as usize % self.0.len()];
        match slot.try_lock() {
            Ok(kept) => Some(kept),
            // A panic while it was held cannot have left a half-used
            // instance behind: the instance is taken out during a call.
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}
