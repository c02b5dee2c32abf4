//! The decision: the host's combined answer about one flow.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use flowgate_sdk::{Answer, Effect, Obligation, Remedy};

use super::digest::Digest;
use super::fault::Fault;
use super::policy_info::PolicyInfo;
use super::reason::Reason;
use super::text::escape_json;

/// The combined answer about one flow, in the canonical form of
/// `docs/flow-record.md`.
///
/// Serialises to exactly the spec's JSON (`id`, `effect`, `obligations`,
/// `remedies`, `reasons`); [`Decision::answers`] and
/// [`Decision::policy_set`] are for the embedding program and not serialised.
/// [`Host::policies`](crate::Host::policies) lists every loaded policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The caller's id of the flow.
    pub id: String,
    /// The combined effect.
    pub effect: Effect,
    /// What the platform must do if it goes ahead, sorted by kind (empty for a deny).
    pub obligations: Vec<Obligation>,
    /// What would make a retry pass, sorted, without repeats (only for a deny).
    pub remedies: Vec<Remedy>,
    /// Every rule that fired, from every policy that applied, in policy name order.
    pub reasons: Vec<Reason>,
    /// The own answer of each policy that applied (or faulted), in policy
    /// name order, with its name, version and digest. Policies that answered
    /// `not_applicable`, or that their `[applies_to]` excluded, are left
    /// out: with a thousand policies loaded, a decision carries only the few
    /// that concern it.
    #[serde(skip)]
    pub answers: Vec<PolicyAnswer>,
    /// The content id of the policy set that decided: a digest over every
    /// active policy's name, version and files, the same on every machine
    /// and after every restart ([`Host::policy_set`](crate::Host::policy_set)).
    #[serde(skip)]
    pub policy_set: Digest,
    /// The activation counter of that set, for ordering within one process.
    #[serde(skip)]
    pub activation: u64,
}

impl Decision {
    /// The decision as one line of canonical JSON.
    pub fn to_json(&self) -> String {
        escape_json(serde_json::to_string(self).expect("a decision always serialises"))
    }
}

/// One policy's own answer about a flow, or the fault that stopped it.
#[derive(Debug, Clone)]
pub struct PolicyAnswer {
    /// The policy: name, version, digest.
    pub policy: Arc<PolicyInfo>,
    /// What it answered.
    pub outcome: Result<Answer, Fault>,
}

impl PolicyAnswer {
    /// The effect this answer counts as: a fault counts as `deny`.
    pub fn effect(&self) -> Effect {
        self.outcome.as_ref().map_or(Effect::Deny, Answer::effect)
    }
}

/// What one loaded policy did about a flow, applied or not: what
/// [`Host::explain`](crate::Host::explain) reports for every policy.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// The manifest's `[applies_to]` excludes the flow: the policy was not called.
    SkippedByScope,
    /// The policy was called and answered (`not_applicable` included).
    Answered(Answer),
    /// The policy faulted; the flow is denied for it.
    Faulted(Fault),
}

/// One policy's [`Verdict`] about a flow.
#[derive(Debug, Clone)]
pub struct PolicyVerdict {
    /// The policy: name, version, digest, rules.
    pub policy: Arc<PolicyInfo>,
    /// What it did.
    pub verdict: Verdict,
}

impl PolicyVerdict {
    /// The verdict as JSON: `policy`, `version`, `verdict` (`skipped_by_scope`,
    /// `answered` or `faulted`) and, for an answer, its `effect`,
    /// `obligations`, `remedies` and the `rules` that fired; for a fault, its `fault`.
    pub fn to_json_value(&self) -> serde_json::Value {
        let info = &self.policy;
        match &self.verdict {
            Verdict::SkippedByScope => {
                serde_json::json!({"policy": info.name, "version": info.version, "verdict": "skipped_by_scope"})
            }
            Verdict::Answered(answer) => {
                let rules: Vec<&str> = answer.fired().filter_map(|rule| info.rule_name(rule)).collect();
                let obligations: Vec<Obligation> = answer.obligations().iter().collect();
                let remedies: Vec<Remedy> = answer.remedies().iter().collect();
                serde_json::json!({"policy": info.name, "version": info.version, "verdict": "answered",
                    "effect": answer.effect(), "obligations": obligations, "remedies": remedies, "rules": rules})
            }
            Verdict::Faulted(fault) => serde_json::json!({"policy": info.name, "version": info.version,
                "verdict": "faulted", "effect": Effect::Deny, "fault": fault.to_string()}),
        }
    }
}

impl PartialEq for PolicyAnswer {
    fn eq(&self, other: &Self) -> bool {
        self.policy.digest == other.policy.digest
            && self.policy.name == other.policy.name
            && self.outcome == other.outcome
    }
}
