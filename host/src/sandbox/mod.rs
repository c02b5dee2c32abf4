//! The wasmtime sandbox: one engine per host with its deadline ticker and
//! module cache, the limits every call runs under, one instance of a module
//! and every call into it, and the records in the binary form policies read
//! (translated into each policy's own vocabulary).
//!
//! Nothing outside this folder touches wasmtime's stores or guest memory.

mod error;
mod limits;
mod cache;
mod runtime;
mod translation;
mod encoded;
mod instance;

pub(crate) use encoded::EncodedRecords;
pub use error::SandboxError;
pub(crate) use instance::{Exports, GuestInstance, abi_version};
pub(crate) use limits::StoreState;
#[cfg(feature = "test-util")]
pub use limits::TICK;
pub use limits::{AboveCeiling, Limits};
pub(crate) use runtime::{DEFAULT_STACK_BYTES, Runtime};
pub(crate) use translation::{Translation, host_word};
