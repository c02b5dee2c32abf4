//! Why a bundle's files could not be read as a bundle.

use crate::fs::FileError;

/// A bundle (or a manifest given as text) that is not one: a file that
/// cannot be read, a manifest that does not parse or holds a value outside
/// what it allows, a signatures file that is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// One of its files could not be read, or is not one the host reads.
    #[error(transparent)]
    File(#[from] FileError),

    /// A manifest is not valid TOML, or not a valid manifest.
    #[error("`{origin}` line {line}, column {column}: {message}")]
    Manifest {
        /// The manifest's file, or the name given to bytes.
        origin: String,
        /// Where the problem is (1-based).
        line: usize,
        /// Where on that line (1-based, in characters).
        column: usize,
        /// What is wrong. The offending line itself is not quoted, so an
        /// error never carries more of a file than a value it names.
        message: String,
    },

    /// A manifest field holds a value outside what it allows.
    #[error("`{origin}`: manifest field `{field}` {problem}")]
    ManifestValue {
        /// The manifest's file, or the name given to bytes.
        origin: String,
        /// The offending field.
        field: &'static str,
        /// What it should be.
        problem: String,
    },

    /// A bundle's `signatures.toml` is not valid.
    #[error("`{origin}`: invalid signatures file: {problem}")]
    Signatures {
        /// The file.
        origin: String,
        /// What is wrong.
        problem: String,
    },
}
