//! Why a bundle could not become a serving policy.

use crate::bundle::{ShapeError, TrustError};
use crate::model::{BoxError, Fault, VectorFailure};
use crate::sandbox::{AboveCeiling, SandboxError};

/// A bundle refused on its way to serving: by the trust policy, by a load
/// cap, by the compiler, by the ABI's checks, by its own configuration or
/// by its own test vectors. Each names the bundle's file and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bundle does not meet the trust policy.
    #[error("`{origin}` is refused: {source}")]
    Untrusted {
        /// The bundle.
        origin: String,
        /// Which rule it breaks.
        #[source]
        source: TrustError,
    },

    /// A manifest asks for more than the platform's ceiling allows.
    #[error("`{origin}`: {source}")]
    AboveCeiling {
        /// The manifest's file.
        origin: String,
        /// Which limit, what was asked, and the ceiling.
        #[source]
        source: AboveCeiling,
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

    /// Compiling the module in a child process
    /// ([`HostBuilder::compile_in_child`](crate::HostBuilder::compile_in_child))
    /// took more than its CPU time.
    #[error(
        "`{origin}` is refused: compiling it took more than the {cpu_seconds} s of CPU time allowed (set by {set_by})"
    )]
    CompileTimedOut {
        /// The module's file, or the name given to bytes.
        origin: String,
        /// The limit.
        cpu_seconds: u64,
        /// How the limit is set ([`CompileSandbox::limit_set_by`](crate::CompileSandbox::limit_set_by)):
        /// `--max-compile-seconds` for the `flowgate` command.
        set_by: String,
    },

    /// The compile child could not be run, or did not answer as one.
    #[error("cannot compile `{origin}` in a child process")]
    CompileChild {
        /// The module's file, or the name given to bytes.
        origin: String,
        /// Why.
        #[source]
        source: std::io::Error,
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

    /// The manifest's `[rules]` says what a rule does that the policy's
    /// rule table does not have (a misspelt name, or a rule since removed).
    #[error(
        "`{manifest}` line {line}: the manifest's [rules] declares what `{rule}` does, but the rule table has no such rule{}",
        nearest.as_ref().map(|near| format!("; did you mean `{near}`?")).unwrap_or_default()
    )]
    UndeclaredRule {
        /// The manifest's file.
        manifest: String,
        /// The line of the declaration.
        line: usize,
        /// The rule it names.
        rule: String,
        /// The rule of the table nearest to that name, if one is near.
        nearest: Option<String>,
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
    #[error("`{manifest}` line {line}: policy `{policy}` rejects its configuration: {message}")]
    Config {
        /// The manifest's file.
        manifest: String,
        /// The line of the key the policy names (or of `[config]`).
        line: usize,
        /// The policy's name.
        policy: String,
        /// The policy's own message, naming the key.
        message: String,
    },

    /// A bundle's own test vectors fail against its Wasm build.
    #[error("policy `{policy}` fails {} of its test vectors:{}", failures.len(), join(failures))]
    VectorsFailed {
        /// The policy's name.
        policy: String,
        /// Each failing vector, and why.
        failures: Vec<VectorFailure>,
    },

    /// Two bundles carry the same policy name.
    #[error("two bundles are named `{0}`; policy names must be unique")]
    DuplicatePolicy(String),

    /// The sandbox to load it into could not start.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

fn join(failures: &[VectorFailure]) -> String {
    failures.iter().map(|failure| format!("\n  {}", failure.to_string().replace('\n', "\n  "))).collect()
}
