//! The wasmtime sandbox: one engine per process and settings, with its
//! deadline ticker, shared by the hosts built with those settings; a module
//! cache per host, compiling in this process or in a child under a CPU-time
//! limit, the limits every call runs under, one instance of a module
//! and every call into it, the records in the binary form policies read
//! (translated into each policy's own vocabulary), and a configured
//! instance frozen into a module, so fresh instances start configured.
//!
//! Nothing outside this folder touches wasmtime's stores or guest memory.

mod error;
mod limits;
mod engine;
mod child;
mod cache;
mod runtime;
mod translation;
mod encoded;
mod instance;
mod snapshot;

pub(crate) use child::CompileError;
pub use child::{CompileSandbox, compile_child};
pub(crate) use encoded::EncodedRecords;
pub(crate) use engine::{Allocation, POOL_SLOTS};
pub use error::SandboxError;
pub(crate) use instance::{Exports, GuestInstance, abi_version};
pub(crate) use limits::StoreState;
#[cfg(feature = "test-util")]
pub use limits::TICK;
pub use limits::{AboveCeiling, Limits};
pub(crate) use runtime::{DEFAULT_STACK_BYTES, Runtime};
pub(crate) use snapshot::{Configured, Snapshottable};
pub(crate) use translation::{Translation, host_word};
