//! The decision log: a receipt of every decision, written before the
//! decision is returned, into a transparency log (the `flowgate-log`
//! crate: an RFC 9162 Merkle tree, C2SP signed checkpoints, proofs); the
//! host's decisions as its compact entries, the group commit that writes
//! them, reading a log back for an audit, and the archive of the bundles
//! and policy sets that decided.

mod error;
mod receipt;
mod writer;
mod audit;
mod archive;

pub use archive::Archive;
pub use audit::{Audit, Changes, KeptRecords, LoggedRecord, Stats};
pub use error::LogError;
pub use flowgate_log::store::{Break, BreakKind, Durability, Head, Recovery, UnitVerified, Verified, VerifyOptions};
pub(crate) use receipt::Batch;
pub use receipt::record_digest;
pub use writer::{DecisionLog, LogOptions};
