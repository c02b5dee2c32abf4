//! The wasmtime sandbox: one engine per host, one ticker thread for
//! deadlines, and the limits every call runs under.
//!
//! Deadlines use epoch interruption rather than fuel: fuel instruments every
//! basic block and slows all policy code, while an epoch check is a load and
//! a compare at function entries and loop heads. The ticker advances the
//! epoch every [`TICK`]; a call's deadline is a number of ticks, so it is
//! enforced to within one tick.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, Module, ResourceLimiter};

use crate::cache::ModuleCache;
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::LimitOverrides;

/// How often the ticker advances the engine's epoch.
pub const TICK: Duration = Duration::from_millis(1);

/// The default cap on the wasm stack of every call, in bytes.
pub(crate) const DEFAULT_STACK_BYTES: usize = 256 << 10;

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
    /// The most a platform allows by default, whatever a manifest asks:
    /// one second per call, 64 MiB of memory, 100,000 table elements.
    pub const DEFAULT_CEILINGS: Limits = Limits { deadline_ms: 1_000, memory_bytes: 64 << 20, table_elements: 100_000 };

    /// These limits with a manifest's `[limits]` applied, each no higher
    /// than `ceilings`; a request above a ceiling is refused, not lowered,
    /// so the regulator who wrote the manifest learns of it.
    pub(crate) fn with(self, overrides: LimitOverrides, ceilings: &Limits, origin: &str) -> Result<Limits, Error> {
        let pick = |field, requested: Option<u64>, default: u64, ceiling: u64| match requested {
            Some(requested) if requested > ceiling => {
                Err(Error::AboveCeiling { origin: origin.to_owned(), field, requested, ceiling })
            }
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

/// The engine and its ticker. Dropping the last handle stops the ticker.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    cache: Option<ModuleCache>,
    /// Modules in use, by the digest of their bytes: the variants of one
    /// module (the same code under other manifests, as per-sector variants
    /// are) share one compiled copy of its code instead of one each, so a
    /// thousand of them do not crowd the caches with copies. Held weakly:
    /// a module no policy uses any more is freed.
    compiled: Mutex<HashMap<Digest, Weak<Module>>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Runtime {
    pub(crate) fn new(stack_bytes: usize, cache_dir: Option<&Path>) -> Result<Runtime, Error> {
        let mut runtime = Runtime::start(stack_bytes).map_err(|source| Error::Engine(source.into_boxed_dyn_error()))?;
        if let Some(dir) = cache_dir {
            runtime.cache = Some(ModuleCache::open(dir, &runtime.engine)?);
        }
        Ok(runtime)
    }

    fn start(stack_bytes: usize) -> wasmtime::Result<Runtime> {
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
        Ok(Runtime { engine, cache: None, compiled: Mutex::default(), stop, ticker: Some(ticker) })
    }

    /// Compiles `wasm`, through the on-disk cache when there is one, or
    /// shares the module already compiled from the same bytes.
    pub(crate) fn compile(&self, wasm: &[u8]) -> wasmtime::Result<Arc<Module>> {
        let digest = Digest::of(wasm);
        let in_use = |compiled: &HashMap<Digest, Weak<Module>>| compiled.get(&digest).and_then(Weak::upgrade);
        if let Some(module) = in_use(&self.compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner())) {
            return Ok(module);
        }
        // Compiled outside the lock: other loads go on meanwhile.
        let module = Arc::new(match &self.cache {
            Some(cache) => cache.module(&self.engine, wasm)?,
            None => Module::new(&self.engine, wasm)?,
        });
        let mut compiled = self.compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(theirs) = in_use(&compiled) {
            return Ok(theirs);
        }
        compiled.retain(|_, module| module.strong_count() > 0);
        compiled.insert(digest, Arc::downgrade(&module));
        Ok(module)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_of_the_same_bytes_share_one_compiled_copy_while_in_use() {
        let runtime = Runtime::new(DEFAULT_STACK_BYTES, None).unwrap();
        let wasm = wat::parse_str("(module (func (export \"f\")))").unwrap();
        let other = wat::parse_str("(module (func (export \"g\")))").unwrap();
        let first = runtime.compile(&wasm).unwrap();
        assert!(Arc::ptr_eq(&first, &runtime.compile(&wasm).unwrap()), "the same bytes are compiled once");
        assert!(!Arc::ptr_eq(&first, &runtime.compile(&other).unwrap()), "other bytes get their own");
        // Held weakly: once no policy uses it, it is freed, and compiled anew when asked again.
        drop(first);
        assert!(runtime.compiled.lock().unwrap().values().all(|module| module.strong_count() == 0));
        let again = runtime.compile(&wasm).unwrap();
        assert_eq!(Arc::strong_count(&again), 1, "only the caller holds it");
    }
}
