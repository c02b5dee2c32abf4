//! Why a log directory cannot be opened, read, written or proved from.

use std::path::PathBuf;

use thiserror::Error;

use crate::checkpoint::CheckpointError;
use crate::digest::Digest;
use crate::fs::FileError;

/// What is wrong with the framing of the `entries` file at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
pub enum FrameProblem {
    /// The file ends inside an entry (a write cut short).
    #[error("the file ends inside an entry")]
    Torn,
    /// A length of zero, or not in its shortest form.
    #[error("an entry length that is zero or not in its shortest form")]
    BadLength,
    /// A length beyond the largest entry.
    #[error("an entry length of {0} bytes, more than any entry")]
    TooLarge(u64),
}

/// A log directory that cannot be used as asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file could not be read or written, or is not one Flowgate uses.
    #[error(transparent)]
    File(#[from] FileError),
    /// The directory holds no log (`entries` is missing).
    #[error("`{dir}` is not a decision log: it has no `entries` file")]
    NotALog {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory holds a log in the hash-chain format of Flowgate 0.1.
    #[error(
        "`{dir}` is a decision log in the hash-chain format of Flowgate 0.1 (`segment-*.jsonl`); this release reads and writes transparency logs only: verify it with `flowgate audit verify` of Flowgate 0.1, and start a new log in another directory"
    )]
    OldFormat {
        /// The directory.
        dir: PathBuf,
    },
    /// Another process writes the log.
    #[error("`{dir}` is being written by another process: one log has one writer")]
    Busy {
        /// The directory.
        dir: PathBuf,
    },
    /// The `entries` file is damaged at some offset.
    #[error("`entries` at byte {offset}: {problem}")]
    Frame {
        /// Where.
        offset: u64,
        /// What.
        problem: FrameProblem,
    },
    /// No checkpoint signed by the log key (that the log's tree holds).
    #[error("no checkpoint signed by the key given that the log holds: {problems}")]
    NoCheckpoint {
        /// Why each checkpoint found failed.
        problems: String,
    },
    /// A checkpoint that does not open (not a note, not signed as needed).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Fewer entries than a signed checkpoint covers.
    #[error(
        "the log holds {entries} entries, fewer than the {signed} a signed checkpoint covers: entries were deleted"
    )]
    Truncated {
        /// Entries found.
        entries: u64,
        /// Entries signed.
        signed: u64,
    },
    /// The stored tree holds fewer leaves than needed.
    #[error("the stored tree holds {stored} leaves, {needed} are needed (a host's next start rebuilds it)")]
    TreeShort {
        /// Leaves stored.
        stored: u64,
        /// Leaves needed.
        needed: u64,
    },
    /// The tree of some size is not the one a checkpoint signed.
    #[error(
        "the tree of {size} entries has root {stored}, but a checkpoint signed root {signed}: the log was changed after it was signed"
    )]
    Rewritten {
        /// The size.
        size: u64,
        /// The root the log's files give.
        stored: Digest,
        /// The root signed.
        signed: Digest,
    },
    /// Two checkpoints of one size with different roots.
    #[error("equivocation: the log signed two trees of {size} entries, with roots {} and {}", .roots.0, .roots.1)]
    Equivocation {
        /// The size.
        size: u64,
        /// The two roots.
        roots: (Digest, Digest),
    },
    /// An entry the log is checked on is damaged.
    #[error("entry {index}: {problem}")]
    Damaged {
        /// The entry.
        index: u64,
        /// What is wrong.
        problem: String,
    },
    /// An entry asked for that the tree does not hold.
    #[error("entry {index} is not in the tree of {size} entries")]
    OutOfRange {
        /// The entry asked for.
        index: u64,
        /// The tree's size.
        size: u64,
    },
    /// A checkpoint or option of another log.
    #[error("the log is `{log}`, not `{given}`")]
    OtherOrigin {
        /// The log's origin.
        log: String,
        /// The origin given.
        given: String,
    },
    /// A kept-records file others can read, or one that is damaged.
    #[error("kept records: {0}")]
    Records(String),
    /// The log is refused for what it is, not for a file.
    #[error("{0}")]
    Refused(String),
}
