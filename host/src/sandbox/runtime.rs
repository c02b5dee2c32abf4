//! The engine and its ticker: one per process and engine settings, shared
//! by every policy of every host built with those settings.
//!
//! Deadlines use epoch interruption rather than fuel: fuel instruments every
//! basic block and slows all policy code, while an epoch check is a load and
//! a compare at function entries and loop heads. The ticker advances the
//! epoch every [`TICK`]; a call's deadline is a number of ticks, so it is
//! enforced to within one tick.
//!
//! Modules are compiled in this process, or, with a [`CompileSandbox`], in
//! a child process under a CPU-time limit (see `child`).
//!
//! Why one engine per process: an engine with a pooling allocator reserves
//! the address space of all its slots when it is built (4 GiB and a guard
//! each, `engine`), so an engine per host ran out of address space after
//! about twenty hosts alive at once. Sharing costs nothing a host relies
//! on: stores, instances, limits and module caches stay per host, and a
//! host that finds every slot taken waits for one within its deadline.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::thread::JoinHandle;

use wasmtime::{Engine, Module};

use crate::model::Digest;

use super::cache::ModuleCache;
use super::child::{CompileError, CompileSandbox};
use super::engine::{Allocation, EngineSettings};
use super::error::SandboxError;
use super::limits::TICK;

/// The default cap on the wasm stack of every call, in bytes.
pub(crate) const DEFAULT_STACK_BYTES: usize = 256 << 10;

/// A host's engine (shared, see the module docs), where it compiles, and
/// the modules it has compiled.
pub(crate) struct Runtime {
    /// The engine; holding it keeps its ticker running.
    ticking: Arc<Ticking>,
    settings: EngineSettings,
    /// Where modules are compiled, if not in this process.
    sandbox: Option<CompileSandbox>,
    cache: Option<ModuleCache>,
    /// Modules in use, by the digest of their bytes: the variants of one
    /// module (the same code under other manifests, as per-sector variants
    /// are) share one compiled copy of its code instead of one each, so a
    /// thousand of them do not crowd the caches with copies. Held weakly:
    /// a module no policy uses any more is freed.
    compiled: Mutex<HashMap<Digest, Weak<Module>>>,
}

impl Runtime {
    pub(crate) fn new(
        stack_bytes: usize,
        allocation: Allocation,
        cache_dir: Option<&Path>,
    ) -> Result<Runtime, SandboxError> {
        let settings = EngineSettings { stack_bytes, allocation };
        let mut runtime =
            Runtime::start(settings).map_err(|source| SandboxError::Engine(source.into_boxed_dyn_error()))?;
        if let Some(dir) = cache_dir {
            runtime.cache = Some(ModuleCache::open(dir, runtime.engine())?);
        }
        Ok(runtime)
    }

    /// The engine every module of this runtime is compiled for.
    pub(crate) fn engine(&self) -> &Engine {
        &self.ticking.engine
    }

    /// This runtime, compiling in child processes of `sandbox`.
    pub(crate) fn compiling_in(mut self, sandbox: Option<CompileSandbox>) -> Runtime {
        self.sandbox = sandbox;
        self
    }

    fn start(settings: EngineSettings) -> wasmtime::Result<Runtime> {
        let ticking = Ticking::shared(settings)?;
        Ok(Runtime { ticking, settings, sandbox: None, cache: None, compiled: Mutex::default() })
    }

    /// Compiles `wasm`, through the on-disk cache when there is one, or
    /// shares the module already compiled from the same bytes.
    pub(crate) fn compile(&self, wasm: &[u8]) -> Result<Arc<Module>, CompileError> {
        let digest = Digest::of(wasm);
        let in_use = |compiled: &HashMap<Digest, Weak<Module>>| compiled.get(&digest).and_then(Weak::upgrade);
        if let Some(module) = in_use(&self.compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner())) {
            return Ok(module);
        }
        // Compiled outside the lock: other loads go on meanwhile.
        let compile = || match &self.sandbox {
            Some(sandbox) => sandbox.compile(self.engine(), self.settings, wasm),
            None => Module::new(self.engine(), wasm).map_err(CompileError::Invalid),
        };
        let module = Arc::new(match &self.cache {
            Some(cache) => cache.module(self.engine(), wasm, compile)?,
            None => compile()?,
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

/// An engine and the thread that advances its epoch every [`TICK`]; the
/// last handle dropped stops the thread.
struct Ticking {
    engine: Engine,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Ticking {
    /// The engine of `settings` in use in this process, or a new one.
    fn shared(settings: EngineSettings) -> wasmtime::Result<Arc<Ticking>> {
        static ENGINES: LazyLock<Mutex<HashMap<EngineSettings, Weak<Ticking>>>> = LazyLock::new(Mutex::default);
        let mut engines = ENGINES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(ticking) = engines.get(&settings).and_then(Weak::upgrade) {
            return Ok(ticking);
        }
        let ticking = Arc::new(Ticking::start(settings)?);
        engines.retain(|_, ticking| ticking.strong_count() > 0);
        engines.insert(settings, Arc::downgrade(&ticking));
        Ok(ticking)
    }

    fn start(settings: EngineSettings) -> wasmtime::Result<Ticking> {
        let engine = Engine::new(&settings.config())?;
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
        Ok(Ticking { engine, stop, ticker: Some(ticker) })
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_of_the_same_bytes_share_one_compiled_copy_while_in_use() {
        let runtime = Runtime::new(DEFAULT_STACK_BYTES, Allocation::OnDemand, None).unwrap();
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
