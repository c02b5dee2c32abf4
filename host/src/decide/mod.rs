//! Deciding: the active policy set (one immutable version, swapped whole
//! on a reload), the one loop that asks its policies about records, and
//! the combining rules that make their answers one decision.

mod combine;
mod policy_set;
mod evaluate;

pub use combine::Unmatched;
#[cfg(feature = "test-util")]
pub(crate) use combine::combine;
pub(crate) use evaluate::evaluate;
pub(crate) use policy_set::PolicySet;
