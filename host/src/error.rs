//! The host's own failures, one type per area, wrapped by [`Error`].
//!
//! A policy that denies a flow is not an error (that is a [`Decision`](crate::Decision)),
//! and neither is a policy that faults while evaluating (that is a `deny`
//! naming the [`Fault`](crate::Fault)). Errors are for what stops a host
//! from starting, a policy from being loaded, or a receipt from being written.

use crate::bundle::{BundleError, KeyError, TrustFileError};
use crate::fs::FileError;
use crate::log::LogError;
use crate::policy::LoadError;
use crate::sandbox::SandboxError;

/// Why a host could not be built, a policy loaded, or a decision logged.
///
/// Each area's failure keeps its own type, so a caller can match on what
/// concerns it (`Error::Load(LoadError::AbiVersion { .. })`); the message
/// is the area's own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bundle's files could not be read as a bundle.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A key could not be read, made or written.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A trust file could not be read or is not valid.
    #[error(transparent)]
    TrustFile(#[from] TrustFileError),
    /// The sandbox (engine, ticker, module cache) could not start.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// A bundle could not become a serving policy.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The decision log or archive could not be used.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A file or directory (a policies directory, say) could not be used.
    #[error(transparent)]
    File(#[from] FileError),
    /// A thread the host needs could not be started.
    #[error("cannot start the `{name}` thread")]
    Thread {
        /// The thread's name.
        name: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A policy the trust file requires is not loaded and verified.
    #[error("required policy `{0}` is not loaded: the trust file requires it, verified")]
    RequiredMissing(String),
}
