//! Why a decision came out as it did: one rule that fired, with its policy
//! and legal article (the reason object of `docs/flow-record.md`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

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
    /// Left out when the policy's manifest does not declare it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<RuleOutcome>,
    article: String,
    message: String,
}

/// What a rule does when it fires, as its policy's manifest declares it
/// (`[rules]`), so a reader of a decision sees at once which rules denied
/// and which only attached obligations or allowed. The guest's answer
/// format is unchanged: the declaration is static, per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOutcome {
    /// The rule denies the flow.
    Deny,
    /// The rule attaches an obligation if the flow goes ahead.
    Obligation,
    /// The rule allows the flow (it fires to say why).
    Allow,
}

impl Reason {
    /// A reason from its five parts.
    pub fn new(policy: &str, version: &str, rule: &str, article: &str, message: &str) -> Reason {
        Reason(Arc::new(ReasonText {
            policy: policy.to_owned(),
            version: version.to_owned(),
            rule: rule.to_owned(),
            outcome: None,
            article: article.to_owned(),
            message: message.to_owned(),
        }))
    }

    /// This reason, saying what its rule does (see [`RuleOutcome`]).
    pub fn with_outcome(self, outcome: Option<RuleOutcome>) -> Reason {
        let text = &self.0;
        Reason(Arc::new(ReasonText {
            policy: text.policy.clone(),
            version: text.version.clone(),
            rule: text.rule.clone(),
            outcome,
            article: text.article.clone(),
            message: text.message.clone(),
        }))
    }

    /// What its rule does, if its policy declares it.
    pub fn outcome(&self) -> Option<RuleOutcome> {
        self.0.outcome
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_serialised_after_the_rule_only_when_declared() {
        let reason = Reason::new("p", "1.0.0", "r", "PIPL Art. 13", "m");
        let plain = r#"{"policy":"p","version":"1.0.0","rule":"r","article":"PIPL Art. 13","message":"m"}"#;
        assert_eq!(serde_json::to_string(&reason).unwrap(), plain);
        let denying = reason.with_outcome(Some(RuleOutcome::Deny));
        let json = serde_json::to_string(&denying).unwrap();
        assert_eq!(json, plain.replace(r#""rule":"r","#, r#""rule":"r","outcome":"deny","#));
        assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), denying);
        assert_eq!(serde_json::from_str::<Reason>(plain).unwrap().outcome(), None, "older reasons still read");
    }
}
