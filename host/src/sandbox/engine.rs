//! The engine's configuration: one function, so that a host and a child
//! process compiling for it (`child`) build the same engine, and a module
//! compiled by one loads in the other.
//!
//! Where instances are fresh for every call (`per-call`, `per-record`),
//! they come from wasmtime's pooling allocator: slots of memory reserved
//! once and reused by instances of the same module, with only the pages a
//! call dirtied reset (found with Linux's `PAGEMAP_SCAN` ioctl where the
//! kernel has it) and kept resident, so the next instance takes no page
//! faults on them; memory images are mapped copy-on-write (wasmtime's
//! default, from a memfd on Linux). Live instances there are few (one per
//! thread in a call, at a time), so [`POOL_SLOTS`] is ample, and a thread
//! that finds every slot taken waits for one within its deadline (see
//! `instance`). Where instances are kept (`reuse`: cores × policies ×
//! tenants of them, unbounded in the policy count), each maps its own
//! memory on demand, so no pool can run out.

use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::Limits;

/// Instances the pool holds at once: far more than the threads that call
/// at once (each holds one instance at a time). Each slot reserves address
/// space (4 GiB and a guard, so memory accesses need no bounds checks),
/// not memory.
pub(crate) const POOL_SLOTS: u32 = 1_000;

/// Dirty memory of a slot reset by copying rather than unmapped, so the
/// next instance finds it resident: more than a policy's call dirties.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Where instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Allocation {
    /// Each instance maps its own memory, and unmaps it when dropped.
    OnDemand,
    /// From a pool of `slots` slots ([`POOL_SLOTS`]), each large enough
    /// for the memory and table an instance may grow to under `ceilings`.
    Pooled {
        /// The most instances alive at once.
        slots: u32,
        /// The most any policy's limits may be.
        ceilings: Limits,
    },
}

/// What an engine is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EngineSettings {
    /// Cap on the wasm stack of every call, in bytes.
    pub(crate) stack_bytes: usize,
    pub(crate) allocation: Allocation,
}

impl EngineSettings {
    /// The bytes [`EngineSettings::from_bytes`] reads back.
    pub(crate) const BYTES: usize = 8 + 1 + 4 + 3 * 8;

    pub(crate) fn config(&self) -> Config {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(self.stack_bytes);
        // Threads, GC and components are compiled out of wasmtime (see the
        // workspace features): policies are plain core modules, and every
        // proposal left off is attack surface left off.
        if let Allocation::Pooled { slots, ceilings } = self.allocation {
            let mut pool = PoolingAllocationConfig::new();
            pool.total_core_instances(slots)
                .total_memories(slots)
                .total_tables(slots)
                .max_memory_size(usize::try_from(ceilings.memory_bytes.min(4 << 30)).unwrap_or(usize::MAX))
                .table_elements(usize::try_from(ceilings.table_elements).unwrap_or(usize::MAX))
                .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
                .pagemap_scan(Enabled::Auto);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        config
    }

    /// These settings as bytes, for a compile child.
    pub(crate) fn to_bytes(self) -> [u8; Self::BYTES] {
        let (pooled, slots, ceilings) = match self.allocation {
            Allocation::OnDemand => (0, 0, Limits { deadline_ms: 0, memory_bytes: 0, table_elements: 0 }),
            Allocation::Pooled { slots, ceilings } => (1, slots, ceilings),
        };
        let mut bytes = [0; Self::BYTES];
        bytes[..8].copy_from_slice(&(self.stack_bytes as u64).to_le_bytes());
        bytes[8] = pooled;
        bytes[9..13].copy_from_slice(&slots.to_le_bytes());
        bytes[13..21].copy_from_slice(&ceilings.deadline_ms.to_le_bytes());
        bytes[21..29].copy_from_slice(&ceilings.memory_bytes.to_le_bytes());
        bytes[29..37].copy_from_slice(&ceilings.table_elements.to_le_bytes());
        bytes
    }

    pub(crate) fn from_bytes(bytes: &[u8; Self::BYTES]) -> Option<EngineSettings> {
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let stack_bytes = usize::try_from(u64_at(0)).ok()?;
        let allocation = match bytes[8] {
            0 => Allocation::OnDemand,
            1 => Allocation::Pooled {
                slots: u32::from_le_bytes(bytes[9..13].try_into().expect("4 bytes")),
                ceilings: Limits { deadline_ms: u64_at(13), memory_bytes: u64_at(21), table_elements: u64_at(29) },
            },
            _ => return None,
        };
        Some(EngineSettings { stack_bytes, allocation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_the_trip_to_a_child() {
        for allocation in [Allocation::OnDemand, Allocation::Pooled { slots: 7, ceilings: Limits::DEFAULT_CEILINGS }] {
            let settings = EngineSettings { stack_bytes: 123_456, allocation };
            assert_eq!(EngineSettings::from_bytes(&settings.to_bytes()), Some(settings));
        }
    }
}
