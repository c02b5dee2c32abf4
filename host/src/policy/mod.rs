//! Policies: a bundle compiled and checked into a policy that answers
//! (its instances kept as the isolation level allows), the one way a bundle
//! is admitted (trust, load checks, its own test vectors), and each
//! policy's health (faults counted, quarantine).

mod error;
mod interface;
mod isolation;
mod health;
mod recheck;
mod budget;
mod compiled;
mod admit;

use crate::bundle::LoadLimits;
use crate::sandbox::{Allocation, Limits};

#[cfg(feature = "test-util")]
pub use admit::check_vectors;
pub(crate) use admit::{TrustCheck, admit};
pub use admit::{VectorReport, VectorResult, run_vectors};
pub(crate) use compiled::CompiledPolicy;
pub use error::LoadError;
pub use isolation::Isolation;
pub(crate) use isolation::Tenant;

/// What the platform decides for every policy it loads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicySettings {
    /// Limits of a policy whose manifest sets none.
    pub(crate) limits: Limits,
    /// The most a manifest may ask for.
    pub(crate) ceilings: Limits,
    /// Caps on the bundle's module, before compiling.
    pub(crate) load: LoadLimits,
    /// Distinct faulting records that quarantine (see `health`).
    pub(crate) quarantine_after: u32,
    pub(crate) isolation: Isolation,
    /// One record in this many, picked at random, is answered again in a
    /// fresh instance; 0 never.
    pub(crate) recheck_every: u64,
    /// Whether fresh instances start from a snapshot of a configured one
    /// (`sandbox::snapshot`); off only to test that they answer alike.
    pub(crate) snapshots: bool,
}

impl PolicySettings {
    /// Where the instances of policies loaded with these settings get their memory.
    pub(crate) fn allocation(&self) -> Allocation {
        self.isolation.allocation(self.ceilings)
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            limits: Limits::default(),
            ceilings: Limits::DEFAULT_CEILINGS,
            load: LoadLimits::default(),
            quarantine_after: 16,
            isolation: Isolation::default(),
            recheck_every: 4096,
            snapshots: true,
        }
    }
}
