//! The host's own failures: loading, compiling and validating policies.
//!
//! A policy that denies a flow is not an error (that is a [`Decision`](crate::Decision)),
//! and neither is a policy that faults while evaluating (that is a `deny`
//! naming the [`Fault`](crate::Fault)). Errors are for what stops a policy
//! from being loaded at all.

use std::path::PathBuf;

/// A boxed error from a lower layer (wasmtime, the guest's own messages).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a policy could not be loaded, or a host not built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read `{path}`")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },

    /// A manifest is not valid TOML, or not a valid manifest.
    #[error("`{origin}`: invalid manifest")]
    Manifest {
        /// The manifest's file, or the name given to bytes.
        origin: String,
        /// What was wrong, with line and column.
        #[source]
        source: toml::de::Error,
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

    /// The bytes are not a valid WebAssembly module (malformed, truncated, or
    /// using features the host does not enable).
    #[error("`{origin}` is not a valid policy module")]
    InvalidModule {
        /// The module's file, or the name given to bytes.
        origin: String,
        /// What the compiler said.
        #[source]
        source: BoxError,
    },

    /// The module imports something; the host offers no imports (no WASI,
    /// no clock, no randomness, no network).
    #[error("`{origin}` imports `{module}::{name}`; a policy may import nothing, the host offers no imports")]
    ForbiddenImport {
        /// The module's file.
        origin: String,
        /// The import's module name (e.g. `wasi_snapshot_preview1`).
        module: String,
        /// The import's field name.
        name: String,
    },

    /// A required export is missing or has the wrong type.
    #[error("`{origin}` export `{name}`: expected {expected}, found {found}")]
    BadExport {
        /// The module's file.
        origin: String,
        /// The export's name.
        name: &'static str,
        /// What the ABI requires.
        expected: &'static str,
        /// What the module has.
        found: String,
    },

    /// The module speaks another ABI version.
    #[error("`{origin}` speaks Flowgate ABI version {found}; this host speaks version {expected}")]
    AbiVersion {
        /// The module's file.
        origin: String,
        /// The module's version.
        found: i32,
        /// The host's version.
        expected: i32,
    },

    /// The module faulted while starting (start function, ABI probe, rule table).
    #[error("`{origin}` faulted while starting")]
    Start {
        /// The module's file.
        origin: String,
        /// The fault.
        #[source]
        source: crate::Fault,
    },

    /// The module's rule table is not valid.
    #[error("`{origin}` has an invalid rule table: {problem}")]
    Rules {
        /// The module's file.
        origin: String,
        /// What is wrong with it.
        problem: String,
    },

    /// The policy rejected the configuration in its manifest.
    #[error("`{origin}`: policy `{policy}` rejects its configuration: {message}")]
    Config {
        /// The manifest's file.
        origin: String,
        /// The policy's name.
        policy: String,
        /// The policy's own message, naming the key.
        message: String,
    },

    /// Two bundles carry the same policy name.
    #[error("two bundles are named `{0}`; policy names must be unique")]
    DuplicatePolicy(String),

    /// A bundle's own test vectors fail against its Wasm build.
    #[error("policy `{policy}` fails {} of its test vectors: {}", failures.len(), failures.join("; "))]
    VectorsFailed {
        /// The policy's name.
        policy: String,
        /// One line per failing vector.
        failures: Vec<String>,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}
