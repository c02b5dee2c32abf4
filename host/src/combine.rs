//! Combining the answers of several policies (`flow-record.md`, "Combining").
//!
//! 1. Deny overrides; a fault counts as deny.
//! 2. Obligations merge over the allowing answers, one per kind, most protective parameter.
//! 3. Remedies merge over the denying answers.
//! 4. If nothing applied: `not_applicable` for non-personal data, otherwise
//!    the configured [`Unmatched`] effect (deny by default: fail closed).
//! 5. `allow_with_obligations` when obligations remain, otherwise `allow`.
//! 6. Obligations sorted by kind, remedies sorted, reasons in policy order.

use std::sync::LazyLock;

use flowgate_sdk::{Effect, FlowRecord, ObligationSet, RemedySet};

use crate::decision::{Decision, PolicyAnswer, Reason};

/// What the host answers for personal data that no policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// Deny, with a reason saying no policy applied (fail closed; the default).
    #[default]
    Deny,
    /// Allow: the platform trusts its policy set to cover everything it must.
    Allow,
}

static NO_POLICY_APPLIED: LazyLock<Reason> = LazyLock::new(|| {
    Reason::new(
        "flowgate",
        env!("CARGO_PKG_VERSION"),
        "no-policy-applied",
        "Flowgate fail-closed rule (flow-record.md, combining rule 4)",
        "no loaded policy applies to this flow of personal data; it is denied to fail closed",
    )
});

/// Combines the answers of every loaded policy about `flow` into one decision.
///
/// The answers must be in policy name order; reasons keep that order.
pub fn combine(flow: &FlowRecord, answers: Vec<PolicyAnswer>, unmatched: Unmatched) -> Decision {
    let mut applied = false;
    let mut denied = false;
    let mut obligations = ObligationSet::EMPTY;
    let mut remedies = RemedySet::EMPTY;
    let mut reasons = Vec::new();
    for answer in &answers {
        match &answer.outcome {
            Ok(policy_answer) => {
                if policy_answer.effect() == Effect::NotApplicable {
                    continue;
                }
                applied = true;
                denied |= policy_answer.is_denied();
                obligations.merge(&policy_answer.obligations());
                remedies.merge(policy_answer.remedies());
                reasons.extend(policy_answer.fired().filter_map(|rule| answer.policy.reason(rule)).cloned());
            }
            Err(fault) => {
                applied = true;
                denied = true;
                reasons.push(answer.policy.fault_reason(fault));
            }
        }
    }
    let effect = if !applied {
        if !flow.is_personal() {
            Effect::NotApplicable
        } else if unmatched == Unmatched::Deny {
            reasons.push(NO_POLICY_APPLIED.clone());
            Effect::Deny
        } else {
            Effect::Allow
        }
    } else if denied {
        Effect::Deny
    } else if obligations.is_empty() {
        Effect::Allow
    } else {
        Effect::AllowWithObligations
    };
    Decision {
        id: flow.id.clone(),
        effect,
        obligations: if effect == Effect::Deny { Vec::new() } else { obligations.iter().collect() },
        remedies: if effect == Effect::Deny { remedies.iter().collect() } else { Vec::new() },
        reasons,
        answers,
        policy_set: 0,
    }
}
