//! A policy's configured instance, frozen into a module of its own, so that
//! a fresh instance is one instantiation and no call into the guest.
//!
//! Configuring an instance (handing it the manifest's `[config]` to parse)
//! cost more than instantiating it, and every fresh instance paid it. Yet
//! the state configuration leaves is the same every time: the
//! configuration is fixed at load and a policy sees no clock or
//! randomness. So at load the host configures one instance, reads back its
//! memory and mutable globals, and writes them into a copy of the module
//! as its initial state (wasmtime-wizer's `instrument` and `snapshot`, read
//! through our own [`InstanceState`]). The copy has the module's code,
//! imports and exports, its start function already run (so dropped), and
//! its memory image the configured memory: wasmtime maps that image
//! copy-on-write into each fresh instance.
//!
//! The copy is host-produced from an admitted module, and compiled by the
//! host's engine like any module; it is taken before any record is seen,
//! so it carries nothing of one record to another. Every check of the ABI
//! runs on the module the bundle brought, instrumented only to export its
//! mutable globals and memory to the host (the guest cannot see exports).
//! A module wizer cannot snapshot (one that mutates tables or drops
//! segments, say) keeps the old way: each fresh instance is configured.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use wasmtime::{InstancePre, Linker, Module, Store, Val};
use wasmtime_wizer::{InstanceState, ModuleContext, SnapshotVal, ValType, Wizer};

use crate::model::Fault;

use super::instance::GuestInstance;
use super::limits::{Limits, StoreState};
use super::runtime::Runtime;

/// A module instrumented so that the host can read back every mutable
/// global and memory of its instances: what the host compiles and checks.
pub(crate) struct Snapshottable<'a> {
    context: ModuleContext<'a>,
    wasm: Vec<u8>,
}

impl<'a> Snapshottable<'a> {
    /// `wasm` instrumented, or `None` if wizer cannot snapshot it.
    pub(crate) fn of(wasm: &'a [u8]) -> Option<Snapshottable<'a>> {
        // Wizer asserts rather than errs on modules it did not expect:
        // a panic there means no snapshot, never a crashed host.
        let (context, wasm) = catch_unwind(|| wizer().instrument(wasm).ok()).ok().flatten()?;
        Some(Snapshottable { context, wasm })
    }

    /// The instrumented module's bytes.
    pub(crate) fn wasm(&self) -> &[u8] {
        &self.wasm
    }

    /// Configures an instance of `pre` (compiled from [`Self::wasm`]) with
    /// `config` under `limits`, and freezes it into a module compiled by
    /// `runtime`; `None` if any step fails (the policy is then configured
    /// afresh each time).
    pub(crate) fn freeze(
        &self,
        runtime: &Runtime,
        pre: &InstancePre<StoreState>,
        config: &[u8],
        limits: Limits,
    ) -> Option<Configured> {
        let mut instance = GuestInstance::start(pre, limits, limits.deadline_ms).ok()?;
        instance.configure(config, limits.deadline_ms).ok()?.ok()?;
        let input = instance.input();
        let (store, handle) = instance.parts();
        let mut state = State { store, instance: handle, missing: false };
        let wasm = catch_unwind(AssertUnwindSafe(|| ready(wizer().snapshot(&self.context, &mut state))))
            .ok()
            .flatten()?
            .ok()?;
        if state.missing {
            return None;
        }
        let module = runtime.compile(&wasm).ok()?;
        let pre = Linker::new(runtime.engine()).instantiate_pre(&module).ok()?;
        Some(Configured { pre, input, _module: module })
    }
}

/// A policy's configured state, as a module: instances of it start
/// configured.
pub(crate) struct Configured {
    pre: InstancePre<StoreState>,
    /// Where the guest's input buffer was when the snapshot was taken.
    input: (usize, usize),
    /// Keeps the snapshot's compiled code shared with the variants whose
    /// module and configuration are the same.
    _module: Arc<Module>,
}

impl Configured {
    /// A fresh instance, configured, instantiated within `deadline_ms`.
    pub(crate) fn instance(&self, limits: Limits, deadline_ms: u64) -> Result<GuestInstance, Fault> {
        GuestInstance::start(&self.pre, limits, deadline_ms).map(|instance| instance.with_input(self.input))
    }
}

/// The same settings for instrumenting and snapshotting: no function is
/// renamed or removed (the host calls the configuration export itself).
fn wizer() -> Wizer {
    let mut wizer = Wizer::new();
    wizer.keep_init_func(true);
    wizer
}

/// An instance's state as wizer reads it.
struct State<'a> {
    store: &'a mut Store<StoreState>,
    instance: wasmtime::Instance,
    /// An export wizer asked for was not there: no snapshot.
    missing: bool,
}

impl InstanceState for State<'_> {
    async fn global_get(&mut self, name: &str, _: ValType) -> SnapshotVal {
        let value = self.instance.get_global(&mut *self.store, name).map(|global| global.get(&mut *self.store));
        match value {
            Some(Val::I32(x)) => SnapshotVal::I32(x),
            Some(Val::I64(x)) => SnapshotVal::I64(x),
            Some(Val::F32(x)) => SnapshotVal::F32(x),
            Some(Val::F64(x)) => SnapshotVal::F64(x),
            Some(Val::V128(x)) => SnapshotVal::V128(x.as_u128()),
            _ => {
                self.missing = true;
                SnapshotVal::I32(0)
            }
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        match self.instance.get_memory(&mut *self.store, name) {
            Some(memory) => contents(memory.data(&*self.store)),
            None => {
                self.missing = true;
                contents(&[]);
            }
        }
    }
}

/// The value of a future that never waits (wizer's are async for hosts
/// that read state asynchronously; ours reads it in place).
fn ready<T>(future: impl Future<Output = T>) -> Option<T> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => Some(value),
        Poll::Pending => None,
    }
}
