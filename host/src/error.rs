//! The host's own failures: loading, compiling and validating policies.
//!
//! A policy that denies a flow is not an error (that is a [`Decision`](crate::Decision)),
//! and neither is a policy that faults while evaluating (that is a `deny`
//! naming the [`Fault`](crate::Fault)). Errors are for what stops a policy
//! from being loaded at all.

use std::path::PathBuf;

use crate::expectation::VectorFailure;
use crate::fault::Fault;
use crate::shape::ShapeError;

/// A boxed error from a lower layer (wasmtime, the guest's own messages).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a policy could not be loaded, or a host not built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The wasmtime engine could not be set up (or its ticker thread started).
    #[error("cannot start the wasm engine")]
    Engine(#[source] BoxError),

    /// The module cache's directory or key could be changed by someone
    /// other than the user the host runs as.
    #[error("`{path}` cannot hold the module cache: it {problem}")]
    UnsafeCache {
        /// The directory or key file.
        path: PathBuf,
        /// What is wrong with it.
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

    /// A key file is missing, malformed, or not private.
    #[error("`{path}` {problem}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A bundle does not meet the trust policy.
    #[error("`{origin}` is refused: {source}")]
    Untrusted {
        /// The bundle.
        origin: String,
        /// Which rule it breaks.
        #[source]
        source: TrustError,
    },

    /// A trust file is not valid.
    #[error("`{origin}`: invalid trust file: {problem}")]
    TrustFile {
        /// The file.
        origin: String,
        /// What is wrong, with line and column where known.
        problem: String,
    },

    /// A policy the trust file requires is not loaded and verified.
    #[error("required policy `{0}` is not loaded: the trust file requires it, verified")]
    RequiredMissing(String),

    /// The decision log cannot take receipts: decisions fail closed.
    #[error("decision log `{dir}`: {problem}")]
    DecisionLog {
        /// The log's directory.
        dir: PathBuf,
        /// What went wrong.
        problem: String,
    },

    /// A decision log is damaged in a way a crash cannot explain; the log
    /// is not written over (run `flowgate audit verify` to see what happened).
    #[error("decision log `{path}` line {line}: {problem}; run `flowgate audit verify` on it")]
    BrokenLog {
        /// The segment.
        path: PathBuf,
        /// The damaged line (1-based).
        line: u64,
        /// What is wrong with it.
        problem: String,
    },

    /// A file or directory could not be read.
    #[error("cannot read `{path}`")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },

    /// A bundle file is not one the host will read.
    #[error("`{path}` {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FileProblem,
    },

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

    /// A manifest asks for more than the platform's ceiling allows.
    #[error("`{origin}`: `[limits] {field} = {requested}` is above the host's ceiling of {ceiling}")]
    AboveCeiling {
        /// The manifest's file.
        origin: String,
        /// The limit.
        field: &'static str,
        /// What the manifest asks for.
        requested: u64,
        /// The most the host allows.
        ceiling: u64,
    },

    /// The module's shape exceeds a load cap (see [`LoadLimits`](crate::LoadLimits)).
    #[error("`{origin}` is refused before compiling: {source}")]
    Shape {
        /// The module's file, or the name given to bytes.
        origin: String,
        /// Which cap.
        #[source]
        source: ShapeError,
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

    /// The module exports none of the Flowgate ABI: the policy crate does
    /// not call `export_policy!`, or was built with its `library` feature.
    #[error(
        "`{origin}` exports no policy: the crate must call `flowgate_sdk::export_policy!(YourPolicy);` once \
         (in `src/lib.rs`, beside `impl Policy`), and must not be built with its `library` feature"
    )]
    NoPolicyExported {
        /// The module's file.
        origin: String,
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
    #[error(
        "`{origin}` speaks Flowgate ABI version {found}; this host speaks version {expected}: \
         rebuild the policy against flowgate-sdk {sdk} (`flowgate build DIR`, then sign it again)",
        sdk = env!("CARGO_PKG_VERSION")
    )]
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
        source: Fault,
    },

    /// The module's schema (the strings it reads, the words it knows) is not valid.
    #[error("`{origin}` has an invalid schema: {problem}")]
    Schema {
        /// The module's file.
        origin: String,
        /// What is wrong with it.
        problem: String,
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
    #[error("policy `{policy}` fails {} of its test vectors:{}", failures.len(), join(failures))]
    VectorsFailed {
        /// The policy's name.
        policy: String,
        /// Each failing vector, and why.
        failures: Vec<VectorFailure>,
    },
}

/// Why a bundle does not meet the trust policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// It carries no signature at all.
    #[error("it is unsigned, and the trust file accepts only signed bundles")]
    Unsigned,
    /// A signature by a trusted key does not match the bundle's files:
    /// a file was changed after signing, or the signature was made for
    /// another bundle or version.
    #[error(
        "the signature of key `{key}` does not match this bundle's name, version and files (tampered, or signed for another bundle)"
    )]
    Tampered {
        /// The trust file's id of the key.
        key: String,
    },
    /// Every signature is by a key the trust file does not list.
    #[error("it is signed only by keys the trust file does not list ({keys})")]
    UnknownKeys {
        /// The keys, as `ed25519:...`.
        keys: String,
    },
    /// A signing key was revoked.
    #[error("key `{key}` that signed it is revoked")]
    Revoked {
        /// The key's id.
        key: String,
    },
    /// A signing key expired.
    #[error("key `{key}` that signed it expired after {not_after}")]
    Expired {
        /// The key's id.
        key: String,
        /// Its last valid day.
        not_after: String,
    },
    /// No grant of the trust file covers the policy's name.
    #[error("no grant of the trust file covers policy `{policy}`")]
    NotGranted {
        /// The policy's name.
        policy: String,
    },
    /// A grant that covers the policy is not met.
    #[error("grant {grant} needs {threshold} distinct keys of [{keys}] for `{policy}`; valid signatures by {found}")]
    BelowThreshold {
        /// The policy's name.
        policy: String,
        /// Which grant (1-based, in trust file order).
        grant: usize,
        /// Distinct keys needed.
        threshold: usize,
        /// The keys it accepts.
        keys: String,
        /// How many distinct accepted keys signed validly.
        found: usize,
    },
    /// A lower version than the one serving, or than the trust file's minimum.
    #[error("version {offered} is older than {floor} ({why}); a downgrade is refused")]
    Downgrade {
        /// The bundle's version.
        offered: String,
        /// The version it may not go below.
        floor: String,
        /// Where the floor comes from.
        why: &'static str,
    },
    /// The version is not a semantic version, so it cannot be ordered.
    #[error("version `{0}` is not a semantic version (such as `1.2.0`), so downgrades could not be told")]
    Unordered(String),
}

/// Why a bundle file was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// It is a symbolic link; bundle files are read only as themselves.
    #[error("is a symbolic link; a bundle's files must be regular files inside its directory")]
    Link,
    /// It is a directory, FIFO, socket or device.
    #[error("is not a regular file")]
    NotRegular,
    /// It is larger than the cap.
    #[error("is {size} bytes, more than the {cap} allowed")]
    TooLarge {
        /// Its size (or as much as was read).
        size: u64,
        /// The cap.
        cap: u64,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, problem: FileProblem) -> Error {
        Error::File { path: path.into(), problem }
    }
}

fn join(failures: &[VectorFailure]) -> String {
    failures.iter().map(|failure| format!("\n  {}", failure.to_string().replace('\n', "\n  "))).collect()
}
