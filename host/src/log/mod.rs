//! The decision log: a receipt of every decision, chained and written
//! before the decision is returned, signed checkpoints, the files they
//! live in, reading it all back for an audit, and the archive of the
//! bundles and policy sets that decided.

mod error;
mod receipt;
mod checkpoint;
mod segments;
mod writer;
mod audit;
mod archive;

pub use archive::Archive;
pub use audit::{Audit, Break, BreakKind, LoggedRecord, SegmentVerified, Stats, Verified};
pub use checkpoint::Checkpoint;
pub use error::{LineError, LogError};
pub(crate) use receipt::Unsealed;
pub use receipt::{Receipt, record_digest};
pub use writer::{DecisionLog, Durability, LogOptions, Recovery};
