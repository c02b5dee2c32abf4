//! Why a decision log (or the archive beside it) could not be written or read.

use std::path::PathBuf;

use flowgate_log::store::StoreError;

use crate::fs::FileError;
use crate::model::Digest;

/// A decision log or archive that cannot be used: its files, a log that
/// refuses receipts (decisions then fail closed), a log found damaged, or
/// an archive entry that is not what its name says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// One of its files could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),

    /// The log cannot be opened or read: damaged, another log, in use.
    #[error("decision log `{dir}`")]
    Store {
        /// The log's directory.
        dir: PathBuf,
        /// What is wrong.
        #[source]
        source: StoreError,
    },

    /// A group of receipts could not be written (and was cut back): its
    /// decisions fail closed.
    #[error("decision log `{dir}`: the receipts were not written")]
    NotWritten {
        /// The log's directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },

    /// The decision log takes no receipts: decisions fail closed.
    #[error("decision log `{dir}`: {problem}")]
    Refused {
        /// The log's directory.
        dir: PathBuf,
        /// What went wrong.
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

    /// An archived policy set's list is not that set.
    #[error("archived policy set `{path}`: {problem}")]
    ArchiveSet {
        /// The set's file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
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
