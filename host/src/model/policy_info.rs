//! A loaded policy's identity (name, version, module digest, author) and
//! the reasons its rules give.

use flowgate_sdk::RuleId;

use super::digest::Digest;
use super::fault::Fault;
use super::reason::Reason;

/// What identifies a loaded policy, and the reasons its rules give.
#[derive(Debug)]
pub struct PolicyInfo {
    /// The policy's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of its Wasm module.
    pub digest: Digest,
    /// The digest of its whole bundle, signatures included ([`Bundle::digest`](crate::Bundle::digest)).
    pub bundle_digest: Digest,
    /// What decides: name, version, manifest and module ([`Bundle::content_digest`](crate::Bundle::content_digest)).
    pub content_digest: Digest,
    /// The keys whose valid signatures admitted it (empty without a trust policy).
    pub signers: Vec<Signer>,
    /// Who wrote it.
    pub regulator: String,
    /// The articles it enforces.
    pub articles: Vec<String>,
    /// One reason per rule, indexed by rule id.
    pub(crate) reasons: Vec<Reason>,
}

impl PolicyInfo {
    /// The reason for `rule`, if the policy has it.
    pub fn reason(&self, rule: RuleId) -> Option<&Reason> {
        self.reasons.get(rule.index())
    }

    /// The names of the policy's rules, in rule table order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.reasons.iter().map(Reason::rule)
    }

    /// The name of `rule`, if the policy has it.
    pub fn rule_name(&self, rule: RuleId) -> Option<&str> {
        self.reason(rule).map(Reason::rule)
    }

    /// The reason a fault gives: the policy, and what went wrong.
    pub(crate) fn fault_reason(&self, fault: &Fault) -> Reason {
        Reason::new(
            &self.name,
            &self.version,
            "policy-fault",
            "Flowgate fail-closed rule (flow-record.md, combining rule 1)",
            &format!("policy `{}` {fault}; the flow is denied to fail closed", self.name),
        )
        .with_outcome(Some(super::reason::RuleOutcome::Deny))
    }
}

/// A key whose valid signature admitted a bundle, as the trust file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The trust file's id of the key.
    pub id: String,
    /// Who holds it.
    pub holder: String,
}
