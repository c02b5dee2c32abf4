//! The decision: the host's combined answer about one flow.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use flowgate_sdk::{Answer, Effect, Obligation, Remedy};

use crate::compiled::PolicyInfo;
use crate::fault::Fault;

/// The combined answer about one flow, in the canonical form of `flow-record.md`.
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
    /// The version of the policy set that decided (it changes on every reload).
    #[serde(skip)]
    pub policy_set: u64,
}

impl Decision {
    /// The decision as one line of canonical JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a decision always serialises")
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

impl PartialEq for PolicyAnswer {
    fn eq(&self, other: &Self) -> bool {
        self.policy.digest == other.policy.digest
            && self.policy.name == other.policy.name
            && self.outcome == other.outcome
    }
}

/// Why: one rule that fired (or one fault), with its policy and legal article.
///
/// Cheap to clone: a reason is shared by every decision its rule fires in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(Arc<ReasonText>);

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonText {
    policy: String,
    version: String,
    rule: String,
    article: String,
    message: String,
}

impl Reason {
    /// A reason from its five parts.
    pub fn new(policy: &str, version: &str, rule: &str, article: &str, message: &str) -> Reason {
        Reason(Arc::new(ReasonText {
            policy: policy.to_owned(),
            version: version.to_owned(),
            rule: rule.to_owned(),
            article: article.to_owned(),
            message: message.to_owned(),
        }))
    }

    /// The policy that gave it.
    pub fn policy(&self) -> &str {
        &self.0.policy
    }

    /// That policy's version.
    pub fn version(&self) -> &str {
        &self.0.version
    }

    /// The rule's name.
    pub fn rule(&self) -> &str {
        &self.0.rule
    }

    /// The legal article.
    pub fn article(&self) -> &str {
        &self.0.article
    }

    /// What the platform is told.
    pub fn message(&self) -> &str {
        &self.0.message
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ReasonText::deserialize(deserializer).map(|text| Reason(Arc::new(text)))
    }
}
