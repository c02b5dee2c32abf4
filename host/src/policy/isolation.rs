//! How much a policy can carry from one record to the next, whose records
//! may share an instance (tenants), and where instances kept between calls
//! live.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sandbox::{Allocation, GuestInstance, Limits, POOL_SLOTS};

/// How much a policy can carry from one record to the next.
///
/// An instance's memory outlives a call, so a policy could remember what
/// it saw: answer differently depending on earlier records, or carry bytes
/// of one record into the answer about another. Each level trades that
/// against the cost of a fresh instance (measured in BENCHMARKS.md). At
/// every level, records of different tenants (`platform.id`, and the key a
/// caller adds with [`Host::evaluate_batch_in`](crate::Host::evaluate_batch_in))
/// never meet in one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// Every record is answered by a fresh instance: a policy sees one
    /// record and its configuration, nothing else. The strictest level.
    PerRecord,
    /// Every call (a batch of up to `max_batch` records of one tenant, or
    /// one record) is answered by a fresh instance: a policy sees the
    /// records of that call only. Nothing crosses from one call, or one
    /// caller, to the next. A fresh instance (instantiated, from a pool,
    /// out of a snapshot of the configured instance taken at load) costs a
    /// few microseconds per policy (BENCHMARKS.md); a batch mixing
    /// platforms takes one per platform.
    PerCall,
    /// Instances are kept and reused across calls of the same tenant (the
    /// default): the fastest, and a policy could keep state between that
    /// tenant's records, which rechecks catch
    /// ([`HostBuilder::recheck_every`](crate::HostBuilder::recheck_every)).
    #[default]
    Reuse,
}

impl Isolation {
    /// Where instances get their memory at this level: from a pool where
    /// every call starts fresh instances (few live at once), on demand
    /// where instances are kept (as many as cores × policies × tenants,
    /// which no fixed pool could promise to hold).
    pub(crate) fn allocation(self, ceilings: Limits) -> Allocation {
        match self {
            Isolation::PerRecord | Isolation::PerCall => Allocation::Pooled { slots: POOL_SLOTS, ceilings },
            Isolation::Reuse => Allocation::OnDemand,
        }
    }
}

/// Whose records a call carries: the platform that sent them and, when the
/// caller gives one, a key of its own (a `serve` token, say). Records of
/// different tenants never share an instance's state, at any level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tenant<'a> {
    /// The caller's key ("" when it gives none).
    pub(crate) key: &'a str,
    /// The records' `platform.id`.
    pub(crate) platform: &'a str,
}

/// A tenant's identity kept beside its instance: compared in full, never
/// by a hash, so no two tenants can be taken for one.
struct TenantId {
    key: Box<str>,
    platform: Box<str>,
}

impl TenantId {
    fn is(&self, tenant: Tenant<'_>) -> bool {
        same(&self.key, tenant.key) && same(&self.platform, tenant.platform)
    }
}

/// String equality that never hands `memcmp` an empty `Box<str>`: its
/// pointer is dangling, and glibc's AVX-512 `memcmp` reads it with a masked
/// load, which faults into a slow microcode path (measured: a quarter of a
/// one-record evaluation went there, the empty caller key compared once per
/// kept instance).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// The most tenants whose instances one slot keeps. A host serving more
/// tenants on one thread starts fresh instances for the least recent ones
/// (a few microseconds each): memory stays at cores × policies × this many
/// instances whatever the number of tenants.
pub(crate) const TENANTS_PER_SLOT: usize = 8;

/// Instances kept in one slot, most recently used last.
#[derive(Default)]
pub(crate) struct Kept {
    instances: Vec<(TenantId, GuestInstance)>,
    /// The identity of the instance last taken, to put it back without
    /// allocating its copy again (a call takes and puts back on every call).
    taken: Option<TenantId>,
}

impl Kept {
    /// The instance kept for `tenant`, taken out of the slot.
    pub(crate) fn take(&mut self, tenant: Tenant<'_>) -> Option<GuestInstance> {
        let at = self.instances.iter().position(|(id, _)| id.is(tenant))?;
        let (id, instance) = self.instances.remove(at);
        self.taken = Some(id);
        Some(instance)
    }

    /// Keeps `instance` for `tenant`, dropping the least recently used one
    /// if the slot is full.
    pub(crate) fn put(&mut self, tenant: Tenant<'_>, instance: GuestInstance) {
        if self.instances.len() >= TENANTS_PER_SLOT {
            self.instances.remove(0);
        }
        let id = match self.taken.take() {
            Some(id) if id.is(tenant) => id,
            _ => TenantId { key: tenant.key.into(), platform: tenant.platform.into() },
        };
        self.instances.push((id, instance));
    }
}

/// One instance slot per core, so that threads calling the same policy at
/// once do not queue on one lock: a thread takes the slot its index falls
/// on, and when another thread holds that slot it uses a fresh instance.
/// As many slots as cores, not threads: threads come and go (a pool of a
/// server's, `check`'s workers per chunk), and a slot per thread ever seen
/// would keep an instance of every policy for each.
pub(crate) struct ThreadSlots(Box<[Mutex<Kept>]>);

impl ThreadSlots {
    pub(crate) fn new() -> ThreadSlots {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        ThreadSlots((0..cores.clamp(1, 64)).map(|_| Mutex::default()).collect())
    }

    /// The calling thread's slot, unless another thread holds it.
    pub(crate) fn of_this_thread(&self) -> Option<std::sync::MutexGuard<'_, Kept>> {
        static NEXT_THREAD: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            static THREAD: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
        }
        let slot = &self.0[THREAD.with(|n| *n) as usize % self.0.len()];
        match slot.try_lock() {
            Ok(kept) => Some(kept),
            // A panic while it was held cannot have left a half-used
            // instance behind: an instance is taken out during a call.
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}
