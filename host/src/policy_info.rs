//! A loaded policy's identity (name, version, module digest, author) and
//! the reasons its rules give.

use flowgate_sdk::RuleId;

use crate::digest::Digest;
use crate::fault::Fault;
use crate::reason::Reason;

/// What identifies a loaded policy, and the reasons its rules give.
#[derive(Debug)]
pub struct PolicyInfo {
    /// The policy's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of its Wasm module.
    pub digest: Digest,
    /// The digest of its whole bundle, manifest and module ([`Bundle::digest`](crate::Bundle::digest)).
    pub bundle_digest: Digest,
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
    }
}
