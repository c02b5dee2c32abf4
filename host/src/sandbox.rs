//! The wasmtime sandbox: one engine per host, one ticker thread for
//! deadlines, and the limits every call runs under.
//!
//! Deadlines use epoch interruption rather than fuel: fuel instruments every
//! basic block and slows all policy code, while an epoch check is a load and
//! a compare at function entries and loop heads. The ticker advances the
//! epoch every [`TICK`]; a call's deadline is a number of ticks, so it is
//! enforced to within one tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use std::path::Path;

use wasmtime::{Config, Engine, Module, ResourceLimiter};

use crate::cache::ModuleCache;

use crate::manifest::LimitOverrides;

/// How often the ticker advances the engine's epoch.
pub const TICK: Duration = Duration::from_millis(1);

/// The limits one call into a policy runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// These limits with a manifest's overrides applied.
    pub fn with(self, overrides: LimitOverrides) -> Limits {
        Limits {
            deadline_ms: overrides.deadline_ms.unwrap_or(self.deadline_ms),
            memory_bytes: overrides.memory_bytes.unwrap_or(self.memory_bytes),
            table_elements: overrides.table_elements.unwrap_or(self.table_elements),
        }
    }

    /// The deadline in epoch ticks (at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick_ms = TICK.as_millis().max(1) as u64;
        self.deadline_ms.div_ceil(tick_ms).max(1)
    }
}

/// The engine and its ticker. Dropping the last handle stops the ticker.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    cache: Option<ModuleCache>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Runtime {
    pub(crate) fn new(stack_bytes: usize, cache_dir: Option<&Path>) -> Result<Runtime, wasmtime::Error> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(stack_bytes);
        // Threads, GC and components are compiled out of wasmtime (see the
        // workspace features): policies are plain core modules, and every
        // proposal left off is attack surface left off.
        let engine = Engine::new(&config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("flowgate-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(wasmtime::Error::from)?
        };
        let cache = cache_dir.map(|dir| ModuleCache::new(dir, &engine));
        Ok(Runtime { engine, cache, stop, ticker: Some(ticker) })
    }

    /// Compiles `wasm`, through the on-disk cache when there is one.
    pub(crate) fn compile(&self, wasm: &[u8]) -> wasmtime::Result<Module> {
        match &self.cache {
            Some(cache) => cache.module(&self.engine, wasm),
            None => Module::new(&self.engine, wasm),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

/// What a store knows about its own limits; also its resource limiter.
pub(crate) struct StoreState {
    memory_bytes: u64,
    table_elements: u64,
}

impl StoreState {
    pub(crate) fn new(limits: &Limits) -> StoreState {
        StoreState { memory_bytes: limits.memory_bytes, table_elements: limits.table_elements }
    }
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
        if desired as u64 > self.memory_bytes {
            return Err(MemoryLimitExceeded(self.memory_bytes).into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.table_elements {
            return Err(TableLimitExceeded(self.table_elements).into());
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
