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
