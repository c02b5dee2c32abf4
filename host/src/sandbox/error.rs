//! Why the sandbox could not start.

use std::path::PathBuf;

use crate::fs::{FileError, FileProblem};
use crate::model::BoxError;

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The wasmtime engine could not be set up (or its ticker thread started).
    #[error("cannot start the wasm engine")]
    Engine(#[source] BoxError),
    /// The module cache's directory or key could be changed by someone
    /// other than the user the host runs as, or is not what it should be.
    #[error("`{path}` cannot hold the module cache: it {problem}")]
    UnsafeCache {
        /// The directory or key file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FileProblem,
    },
    /// The module cache's directory or key could not be created or read.
    #[error("cannot open the module cache")]
    Cache(#[source] FileError),
}
