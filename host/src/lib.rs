//! Flowgate: a host for data-handling policies compiled to WebAssembly.
//!
//! Regulators write policies with the guest SDK ([`flowgate_sdk`]) and
//! publish them as bundles (a `manifest.toml` and a `policy.wasm`).
//! Platforms build a [`Host`] once and ask it, for every proposed flow of
//! data, whether the flow may go ahead:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempdir_with_reference_bundles()?;
//! use flowgate::Host;
//! use flowgate_sdk::{Effect, FlowRecord};
//!
//! let host = Host::builder().policy_dir(&dir).build()?;
//!
//! let flow = FlowRecord::from_json(br#"{"id":"f-7","platform":{"id":"alipay"},
//!     "action":"share","data":{"categories":["loan_record"]},"purpose":"credit_assessment",
//!     "lawful_basis":"consent","consent":{"state":"given","kind":"separate",
//!     "covers_purpose":true,"covers_recipient":true},
//!     "recipient":{"kind":"financial_institution"},
//!     "notice_given":true,"impact_assessment":true}"#)?;
//!
//! let decision = host.evaluate(&flow);
//! assert_eq!(decision.effect, Effect::Deny);
//! assert_eq!(decision.reasons[0].rule(), "no-direct-connection");
//! println!("{}", decision.to_json());
//! # Ok(()) }
//! # fn tempdir_with_reference_bundles() -> std::io::Result<std::path::PathBuf> {
//! #     let dir = std::env::temp_dir().join(format!("flowgate-doc-{}", std::process::id()));
//! #     for (name, manifest, wasm) in flowgate_reference_set::bundles() {
//! #         std::fs::create_dir_all(dir.join(name))?;
//! #         std::fs::write(dir.join(name).join("manifest.toml"), manifest)?;
//! #         std::fs::write(dir.join(name).join("policy.wasm"), wasm)?;
//! #     }
//! #     Ok(dir)
//! # }
//! ```
//!
//! The record, the decision and the combining rules are specified in
//! `docs/flow-record.md` in the repository; the reference policies in
//! `docs/reference-policies.md`.
//!
//! A [`Decision`] is a value, not an error: a deny carries its remedies and
//! reasons. Errors ([`Error`]) are for the host's own failures, such as a
//! module that cannot be loaded. A policy that traps, runs out of time or
//! memory, or answers nonsense gives a `deny` naming it and the [`Fault`]
//! (fail closed), and never a panic.
//!
//! # Where the spec is silent
//!
//! - A rule that allows (`deletion`, `anonymised`, `aggregate-k` with a large
//!   enough k, `statutory-report`) still adds its reason: reasons explain
//!   every decision, not only denials.
//! - Obligations that the reference policies attach "otherwise" have rule
//!   names of their own (`encrypt-in-transit`, `notify-subject`, `export-log`,
//!   `important-export-log`, `bureau-log`) so they can be reasoned about.
//! - A policy that denies reports every deny rule that fired, so the
//!   platform sees every remedy at once.
//! - [`Decision::answers`] lists the policies that applied (or faulted), not
//!   those answering `not_applicable`.
//! - The fault reason is rule `policy-fault`; the fail-closed deny for
//!   personal data no policy applies to is rule `no-policy-applied` of
//!   policy `flowgate` (switch with [`HostBuilder::unmatched`]).

// The folders in layers, each using only the ones above it in this list
// (`tests/all/layers.rs` checks it, and that each folder's files use only
// the siblings its `mod.rs` lists before them; `rustfmt.toml` keeps the order):
mod model;
mod fs;
mod bundle;
mod sandbox;
mod policy;
mod decide;
mod log;
mod error;
mod host;

#[cfg(feature = "test-util")]
pub mod testing;

pub use bundle::{
    Bundle, BundleError, BundleSignature, KeyError, LimitOverrides, LoadLimits, MANIFEST_FILE, MODULE_FILE, Manifest,
    PublicKey, SIGNATURES_FILE, SecretKey, ShapeError, TestVector, TrustError, TrustFileError, TrustPolicy,
    UnmatchedEntry,
};
pub use decide::Unmatched;
pub use error::Error;
pub use fs::{FileAction, FileError, FileProblem, read_through_links};
pub use host::{Host, HostBuilder, PinnedSet, PolicyEvent, PolicyStatus, Watcher};
pub use log::{
    Archive, Audit, Break, BreakKind, Changes, DecisionLog, Durability, Head, KeptRecords, LogError, LogOptions,
    LoggedRecord, Recovery, Stats, UnitVerified, Verified, VerifyOptions, record_digest,
};
pub use model::{
    AnswerError, AppliesTo, BoxError, Decision, Digest, Expected, Fault, Hint, PolicyAnswer, PolicyInfo, PolicyVerdict,
    Quarantine, Reason, RuleOutcome, Signer, VectorFailure, VectorProblem, Verdict, escape, escape_json,
};
pub use policy::{Isolation, LoadError, VectorReport, VectorResult, run_vectors};
pub use sandbox::{AboveCeiling, CompileSandbox, Limits, SandboxError, compile_child};

/// The policy-facing types, re-exported so one dependency is enough.
pub use flowgate_sdk as sdk;

/// The decision log's formats, proofs and checks (the `flowgate-log`
/// crate), re-exported so one dependency is enough: what a regulator's own
/// tool links alone.
pub use flowgate_log as transparency;
