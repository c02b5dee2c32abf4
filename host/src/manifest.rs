//! The policy manifest (`manifest.toml`): who wrote the policy, what it
//! enforces, its configuration, its limits and its own test vectors.
//!
//! ```toml
//! name = "regulator-jv"
//! version = "1.0.0"
//! regulator = "Financial regulator"
//! articles = ["PIPL Art. 6", "PIPL Art. 51"]
//!
//! [applies_to]        # optional; elsewhere the host skips the policy
//! recipients = ["regulator_jv"]
//!
//! [limits]            # optional; each key overrides the host default
//! deadline_ms = 100
//! memory_bytes = 16_777_216
//!
//! [config]            # handed to the policy once, when an instance starts
//! min_k = 50
//! max_retention_days = 365
//!
//! [[test]]            # the policy's own answer for a record
//! name = "aggregated in groups too small"
//! record = { id = "jv-1", platform = { id = "p" }, action = "share", data = { categories = ["transaction"], deidentification = "aggregated", k = 5 }, purpose = "regulatory_reporting", recipient = { kind = "regulator_jv" } }
//! effect = "allow_with_obligations"
//! obligations = [{ kind = "aggregate", k = 50 }]
//! rules = ["aggregate-k"]
//! ```
//!
//! Unknown keys are errors, as in records: a misspelt limit must not be
//! silently ignored.

use serde::Deserialize;

use flowgate_sdk::{Effect, FlowRecord, Obligation, Remedy};

use crate::error::Error;
use crate::scope::AppliesTo;

/// A parsed `manifest.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The policy's name, lower case with hyphens (`cross-border`).
    pub name: String,
    /// The policy's version (`1.0.0`).
    pub version: String,
    /// Who wrote and enforces it.
    pub regulator: String,
    /// The legal articles it enforces.
    pub articles: Vec<String>,
    /// Where the policy may apply; elsewhere the host skips it (see [`AppliesTo`]).
    #[serde(default)]
    pub applies_to: AppliesTo,
    /// Per-policy overrides of the host's limits.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// The policy's configuration, handed to it as JSON when an instance starts.
    #[serde(default)]
    pub config: toml::Table,
    /// The policy's own test vectors.
    #[serde(default, rename = "test")]
    pub tests: Vec<TestVector>,
}

/// Limits a manifest may set for its own policy; unset ones take the host's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Deadline of one call into the policy, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Cap on the policy's linear memory, in bytes.
    pub memory_bytes: Option<u64>,
    /// Cap on the elements of the policy's tables.
    pub table_elements: Option<u64>,
}

/// One of a policy's own test vectors: a record and the answer the policy
/// itself must give (not the combined decision).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestVector {
    /// What the vector checks.
    pub name: String,
    /// The record.
    pub record: FlowRecord,
    /// The expected effect.
    pub effect: Effect,
    /// The expected obligations, sorted by kind.
    #[serde(default)]
    pub obligations: Vec<Obligation>,
    /// The expected remedies, sorted.
    #[serde(default)]
    pub remedies: Vec<Remedy>,
    /// The names of the rules expected to fire, in rule table order.
    #[serde(default)]
    pub rules: Vec<String>,
}

impl Manifest {
    /// Parses a manifest; `origin` names it in errors (a path, or any label).
    ///
    /// ```
    /// let manifest = flowgate::Manifest::parse("inline", r#"
    ///     name = "lawful-basis"
    ///     version = "1.0.0"
    ///     regulator = "Cyberspace Administration of China"
    ///     articles = ["PIPL Art. 13"]
    /// "#).unwrap();
    /// assert_eq!(manifest.name, "lawful-basis");
    ///
    /// let err = flowgate::Manifest::parse("inline", "name = 7").unwrap_err();
    /// assert!(format!("{:?}", err).contains("invalid type"));
    /// ```
    pub fn parse(origin: &str, text: &str) -> Result<Manifest, Error> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|source| Error::Manifest { origin: origin.to_owned(), source })?;
        manifest.check(origin)?;
        Ok(manifest)
    }

    fn check(&self, origin: &str) -> Result<(), Error> {
        let bad = |field, problem: &str| Error::ManifestValue {
            origin: origin.to_owned(),
            field,
            problem: problem.to_owned(),
        };
        let valid_name = !self.name.is_empty()
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name {
            return Err(bad("name", "must be lower-case letters, digits and hyphens"));
        }
        if self.version.is_empty() || self.version.chars().any(char::is_whitespace) {
            return Err(bad("version", "must be a version such as `1.0.0`"));
        }
        if self.limits.deadline_ms == Some(0) {
            return Err(bad("limits.deadline_ms", "must be at least 1"));
        }
        Ok(())
    }

    /// The configuration as the JSON the guest reads.
    pub fn config_json(&self) -> String {
        serde_json::to_string(&self.config).expect("a TOML table is valid JSON")
    }
}
