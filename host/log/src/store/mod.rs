//! The log on disk: one directory, append-only files, read by the host
//! that writes it and by anyone who audits it.
//!
//! ```text
//! DIR/entries             every entry, in order: a uint length (LEB128) then its bytes
//! DIR/entries.idx         the byte offset of entry 256·k in `entries`, u64 big-endian, for every k
//! DIR/tree/level-00       the leaf hashes, 32 bytes each, in leaf order
//! DIR/tree/level-08       the hashes of the perfect subtrees of 256 leaves, in order
//! DIR/tree/level-16 …     and of 65,536 leaves, … (every eighth level, see `tiles`)
//! DIR/checkpoint.0        the newest signed checkpoint, in one of two slots written
//! DIR/checkpoint.1          in turn (a torn write spoils one; the larger valid one counts)
//! DIR/checkpoints         signed checkpoints kept for good: one a minute, and at each close
//! DIR/records/records-<k> kept records of entries [k·2^16, (k+1)·2^16) (dir 0700, files 0600):
//!                         one line each, `{"index":N,"record":{...}}`, indexes ascending
//! DIR/lock                held by the one writing process
//! ```
//!
//! The entries are the truth; everything else is derived from them and
//! checked against them: the tree by its root in a signed checkpoint, the
//! index by each entry's own statement of its index, a record by its
//! receipt's digest. So a reader trusts nothing here it has not checked,
//! and a writer that finds them disagreeing refuses to append.
//!
//! - [`Appender`] opens a log for writing: it checks the stored tree
//!   against the last checkpoint in bounded time, cuts what no checkpoint
//!   signed, then appends groups of entries, each ending in a checkpoint.
//! - [`Stored`] reads one: entries by index, stored hashes, checkpoints,
//!   and the proofs built from them ([`Stored::inclusion`],
//!   [`Stored::consistency`]).
//! - [`verify`] checks a whole log on every core, in bounded memory.

mod error;
mod files;
mod records;
mod stored;
mod open;
mod append;
mod audit;

pub use append::{Appender, Durability, Group, Head};
pub use audit::{
    Break, BreakKind, RecordCheck, UnitVerified, Verified, VerifyOptions, find_flow, units, verify, verify_joined,
    verify_unit,
};
pub use error::{FrameProblem, StoreError};
pub use files::{CHUNK, INDEX_STRIDE, OPEN_WINDOW, default_origin, push_frame};
pub use open::{AppendOptions, Recovery};
pub use records::{KeptRecord, RecordLines};
pub use stored::{Entries, Stored, StoredCheckpoint};
