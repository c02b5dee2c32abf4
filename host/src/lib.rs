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

// The modules in layers, each using only modules above it in this list
// (`tests/all/layers.rs` checks that no module imports one below it;
// `rustfmt.toml` keeps this order). Values shared by every layer:
mod hex;
mod digest;
mod fault;
mod translation;
mod encoded;
mod load_limits;
mod reason;
mod scope;
mod text;
mod expectation;
mod health;
mod policy_info;
mod shape;
mod error;
// Bundles, their manifests and signatures, read from disk within caps,
// and the trust policy they are verified against:
mod files;
mod keys;
mod manifest;
mod signature;
mod bundle;
mod trust;
// The sandbox and the module cache:
mod cache;
mod sandbox;
// One instance of a module, and every call into it:
mod instance;
// A compiled, checked policy with its instances and health:
mod compiled;
// Decisions, the policy set, and admission (a bundle's own vectors):
mod decision;
mod combine;
mod policy_set;
mod events;
mod vectors;
// The decision log: receipts, checkpoints, segments, and their audit:
mod receipt;
mod checkpoint;
mod segments;
mod decision_log;
mod audit;
mod archive;
// The host, then the watcher that drives it:
mod host;
mod watch;

#[doc(hidden)]
pub mod testing;

pub use archive::Archive;
pub use audit::{Audit, Break, BreakKind, LoggedRecord, SegmentVerified, Stats, Verified};
pub use bundle::{Bundle, MANIFEST_FILE, MODULE_FILE};
pub use checkpoint::Checkpoint;
pub use combine::Unmatched;
pub use compiled::Isolation;
pub use decision::{Decision, PolicyAnswer, PolicyVerdict, Verdict};
pub use decision_log::{DecisionLog, Durability, LogOptions, Recovery};
pub use digest::Digest;
pub use error::{BoxError, Error, FileProblem, TrustError};
pub use events::PolicyEvent;
pub use expectation::{Expected, Hint, VectorFailure, VectorProblem};
pub use fault::{AnswerError, Fault, Quarantine};
pub use host::{Host, HostBuilder, PolicyStatus};
pub use keys::{PublicKey, SecretKey};
pub use load_limits::LoadLimits;
pub use manifest::{LimitOverrides, Manifest, TestVector};
pub use policy_info::{PolicyInfo, Signer};
pub use reason::{Reason, RuleOutcome};
pub use receipt::{Receipt, record_digest};
pub use sandbox::{Limits, TICK};
pub use scope::AppliesTo;
pub use shape::ShapeError;
pub use signature::{BundleSignature, SIGNATURES_FILE};
pub use text::escape;
pub use trust::TrustPolicy;
pub use vectors::{VectorReport, VectorResult, check_vectors, run_vectors};
pub use watch::{POLL_INTERVAL, QUIET, Watcher};

/// The policy-facing types, re-exported so one dependency is enough.
pub use flowgate_sdk as sdk;
