//! The values every layer shares: digests, decisions and their reasons,
//! faults, scopes, test-vector expectations, a policy's identity, and the
//! one escape for text from outside.
//!
//! Nothing here reads a file or runs a policy; everything above builds on it.

mod digest;
mod text;
mod suggest;
mod fault;
mod reason;
mod scope;
mod expectation;
mod policy_info;
mod decision;

pub use decision::{Decision, PolicyAnswer, PolicyVerdict, Verdict};
pub use digest::Digest;
pub use expectation::{Expected, Hint, VectorFailure, VectorProblem};
pub use fault::{AnswerError, Fault, Quarantine};
/// Hex as keys and signatures are written in files: the log crate's.
pub(crate) use flowgate_log::hex;
pub use policy_info::{PolicyInfo, Signer};
pub use reason::{Reason, RuleOutcome};
pub use scope::AppliesTo;
pub(crate) use scope::{Facts, Scope};
pub(crate) use suggest::{nearest, with_suggestion};
pub(crate) use text::is_printable;
pub use text::{escape, escape_json};

/// A boxed error from a lower layer (wasmtime, the guest's own messages).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
