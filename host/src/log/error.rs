//! Why a decision log (or the archive beside it) could not be written or read.

use std::path::PathBuf;

use crate::fs::FileError;
use crate::model::Digest;

/// A decision log or archive that cannot be used: its files, a log that
/// refuses receipts (decisions then fail closed), damage a crash cannot
/// explain, or an archive entry that is not what its name says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// One of its files could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),

    /// The decision log cannot take receipts: decisions fail closed.
    #[error("decision log `{dir}`: {problem}")]
    Refused {
        /// The log's directory.
        dir: PathBuf,
        /// What went wrong.
        problem: String,
    },

    /// A decision log is damaged in a way a crash cannot explain; the log
    /// is not written over (run `flowgate audit verify` to see what happened).
    #[error("decision log `{path}` line {line}: {problem}; run `flowgate audit verify` on it")]
    Broken {
        /// The segment.
        path: PathBuf,
        /// The damaged line (1-based).
        line: u64,
        /// What is wrong with it.
        problem: String,
    },

    /// An archived bundle's files are not the ones its digest names.
    #[error("archived bundle `{dir}` does not match the digest it is kept under: found {found}")]
    ArchiveMismatch {
        /// The bundle's directory in the archive.
        dir: PathBuf,
        /// The digest its files have.
        found: Digest,
    },

    /// An archived policy set's list cannot be read as one.
    #[error("archived policy set `{path}` line {line}: {problem}")]
    ArchiveSet {
        /// The set's file.
        path: PathBuf,
        /// The line (1-based; 0 for the file as a whole).
        line: usize,
        /// What is wrong.
        problem: &'static str,
    },

    /// An archived bundle could not be read back as a bundle.
    #[error("archived bundle `{dir}` cannot be read")]
    ArchiveBundle {
        /// The bundle's directory in the archive.
        dir: PathBuf,
        /// Why.
        #[source]
        source: crate::bundle::BundleError,
    },
}

/// Why one line of a log is not a receipt or checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line is not the JSON of a receipt (or of a checkpoint).
    #[error("not a {kind}: {message}")]
    Malformed {
        /// `receipt` or `checkpoint`.
        kind: &'static str,
        /// What the JSON parser said.
        message: String,
    },
    /// A receipt's `hash` member is not the last one, exactly as written.
    #[error("its `hash` is not its last member")]
    HashNotLast,
}
