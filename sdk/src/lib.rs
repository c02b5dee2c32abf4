//! The Flowgate guest SDK: write a data-handling policy in plain Rust and
//! build it as a WebAssembly module that any Flowgate host can load.
//!
//! The SDK holds the contract of `flow-record.md` as typed Rust, shared by
//! guests and the host so the two cannot drift:
//!
//! - [`FlowRecord`]: the question a platform asks, parsed from canonical JSON
//!   with errors that name the field ([`FlowRecord::from_json`]), with the
//!   derived notions [`FlowRecord::is_personal`] and [`FlowRecord::is_sensitive`];
//! - [`FlowView`]: the same record as a policy reads it, a view over the
//!   bytes the host wrote, each field read when it is asked for
//!   (`flow.purpose()`, `flow.data().categories()`);
//! - [`Answer`]: a policy's answer, built with `deny` (with remedies),
//!   `oblige` (with parameters) and `fire`, naming rules declared with [`rules!`];
//! - [`Policy`]: the trait a policy implements; its type is its configuration;
//! - [`export_policy!`]: the one macro that makes a crate a policy module.
//!
//! A policy crate is a `cdylib` (the Wasm module) and an `rlib` (the same
//! code natively, for unit tests and native/Wasm agreement checks):
//!
//! ```
//! use flowgate_sdk::{Answer, FlowRecord, FlowView, Obligation, Policy, rules};
//!
//! rules! {
//!     RETENTION_CAP = "retention-cap", "PIPL Art. 19", "kept no longer than needed";
//! }
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct RetentionCap {
//!     max_days: u32,
//! }
//!
//! impl Policy for RetentionCap {
//!     const RULES: &'static [flowgate_sdk::Rule] = RULES;
//!
//!     fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
//!         if !flow.is_personal() {
//!             return Answer::not_applicable();
//!         }
//!         let mut answer = Answer::applies();
//!         if flow.retention_days() > self.max_days {
//!             answer.oblige(RETENTION_CAP, Obligation::LimitRetention { days: self.max_days });
//!         }
//!         answer
//!     }
//! }
//!
//! flowgate_sdk::export_policy!(RetentionCap);
//!
//! let policy = RetentionCap::from_config_json(r#"{"max_days": 30}"#).unwrap();
//! let flow = FlowRecord::from_json(br#"{"id":"f","platform":{"id":"p"},"action":"retain",
//!     "data":{"categories":["contact"]},"purpose":"service","retention_days":90}"#).unwrap();
//! assert_eq!(
//!     policy.answer(&flow).obligations().iter().collect::<Vec<_>>(),
//!     [Obligation::LimitRetention { days: 30 }],
//! );
//! ```

// The only `unsafe` of the guest side is the `#[unsafe(no_mangle)]` of the
// exports that `export_policy!` generates in the policy crate.
#![deny(unsafe_code)]

#[doc(hidden)]
pub mod abi;
mod answer;
mod policy;
mod record;
pub mod schema;
pub mod text;
#[cfg(feature = "vectors")]
pub mod vectors;
mod view;
mod vocabulary;
pub mod wire;

pub use abi::ABI_VERSION;
pub use answer::{Answer, InconsistentAnswer, Obligation, ObligationSet, RemedySet, Rule, RuleId};
pub use policy::{ConfigError, DynPolicy, Policy};
pub use record::{
    Categories, Consent, CountryCode, Data, FlowRecord, MAX_STRING_BYTES, Platform, Recipient, RecordError, Volume,
};
pub use schema::StringFields;
pub use serde;
pub use view::{ConsentView, DataView, FlowView, PlatformView, RecipientView, VolumeView};
pub use vocabulary::{
    Action, Category, ConsentKind, ConsentState, Deidentification, DslClass, Effect, ExportMechanism, LawfulBasis,
    ObligationKind, Purpose, RecipientKind, Regime, Remedy, Sector,
};

/// The result type of policy helper code.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;
