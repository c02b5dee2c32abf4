//! The limits every call into a policy runs under, and the store state
//! that enforces the memory and table caps from inside `memory.grow` and
//! `table.grow`.

use std::time::Duration;

use wasmtime::ResourceLimiter;

use crate::bundle::LimitOverrides;

/// How often the ticker advances the engine's epoch.
pub const TICK: Duration = Duration::from_millis(1);

/// The limits one call into a policy runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Wall-clock deadline of one call (a batch of up to
    /// [`HostBuilder::max_batch`](crate::HostBuilder::max_batch) records), in milliseconds.
    pub deadline_ms: u64,
    /// Cap on linear memory, in bytes.
    pub memory_bytes: u64,
    /// Cap on table elements.
    pub table_elements: u64,
}

impl Default for Limits {
    /// Generous for per-record work that takes microseconds: the ten
    /// reference policies together take about 0.3 ms for a batch of 256
    /// records (BENCHMARKS.md), and each fits in the memory cap with room.
    fn default() -> Self {
        Limits { deadline_ms: 100, memory_bytes: 16 << 20, table_elements: 10_000 }
    }
}

impl Limits {
    /// The most a platform allows by default, whatever a manifest asks:
    /// one second per call, 64 MiB of memory, 100,000 table elements.
    pub const DEFAULT_CEILINGS: Limits = Limits { deadline_ms: 1_000, memory_bytes: 64 << 20, table_elements: 100_000 };

    /// These limits with a manifest's `[limits]` applied, each no higher
    /// than `ceilings`; a request above a ceiling is refused, not lowered,
    /// so the regulator who wrote the manifest learns of it.
    pub(crate) fn with(self, overrides: LimitOverrides, ceilings: &Limits) -> Result<Limits, AboveCeiling> {
        let pick = |field, requested: Option<u64>, default: u64, ceiling: u64| match requested {
            Some(requested) if requested > ceiling => Err(AboveCeiling { field, requested, ceiling }),
            Some(requested) => Ok(requested),
            None => Ok(default.min(ceiling)),
        };
        Ok(Limits {
            deadline_ms: pick("deadline_ms", overrides.deadline_ms, self.deadline_ms, ceilings.deadline_ms)?,
            memory_bytes: pick("memory_bytes", overrides.memory_bytes, self.memory_bytes, ceilings.memory_bytes)?,
            table_elements: pick(
                "table_elements",
                overrides.table_elements,
                self.table_elements,
                ceilings.table_elements,
            )?,
        })
    }

    /// The shortest deadline a record retried after a batch's deadline gets.
    pub(crate) const MIN_RETRY_MS: u64 = 2;

    /// A deadline in epoch ticks (at least one).
    pub(crate) fn ticks(deadline_ms: u64) -> u64 {
        let tick_ms = TICK.as_millis().max(1) as u64;
        deadline_ms.div_ceil(tick_ms).max(1)
    }
}

/// A manifest's `[limits]` asks for more than the platform's ceiling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`[limits] {field} = {requested}` is above the host's ceiling of {ceiling}")]
pub struct AboveCeiling {
    /// The limit.
    pub field: &'static str,
    /// What the manifest asks for.
    pub requested: u64,
    /// The most the host allows.
    pub ceiling: u64,
}

/// What a store knows about its own limits; also its resource limiter.
pub(crate) struct StoreState {
    pub(crate) limits: Limits,
}

/// Raised from inside `memory.grow` so the call traps with a cause we can name.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes exceeded")]
pub(crate) struct MemoryLimitExceeded(pub(crate) u64);

/// Raised from inside `table.grow`, likewise.
#[derive(Debug, thiserror::Error)]
#[error("table limit of {0} elements exceeded")]
pub(crate) struct TableLimitExceeded(pub(crate) u64);

impl ResourceLimiter for StoreState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.memory_bytes {
            return Err(MemoryLimitExceeded(self.limits.memory_bytes).into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.table_elements {
            return Err(TableLimitExceeded(self.limits.table_elements).into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}
