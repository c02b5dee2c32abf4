//! Combining the answers of several policies (`docs/flow-record.md`, "Combining").
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

use crate::model::{Decision, PolicyAnswer, Reason, RuleOutcome};

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
    .with_outcome(Some(RuleOutcome::Deny))
});

/// Combines the answers of every loaded policy about `flow` into one decision.
///
/// The answers must be in policy name order; reasons keep that order.
pub(crate) fn combine(flow: &FlowRecord, answers: Vec<PolicyAnswer>, unmatched: Unmatched) -> Decision {
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
        policy_set: Default::default(),
        activation: 0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flowgate_sdk::{Answer, Obligation, Remedy, RuleId};

    use super::*;
    use crate::model::{Digest, Fault, PolicyInfo};

    const RULE: RuleId = RuleId::new(0);

    fn policy(name: &str) -> Arc<PolicyInfo> {
        Arc::new(PolicyInfo {
            name: name.into(),
            version: "1".into(),
            digest: Digest::of(name.as_bytes()),
            bundle_digest: Digest::of(name.as_bytes()),
            content_digest: Digest::of(name.as_bytes()),
            signers: Vec::new(),
            regulator: "r".into(),
            articles: Vec::new(),
            reasons: vec![Reason::new(name, "1", &format!("{name}-rule"), "art", "msg")],
        })
    }

    fn answer(name: &str, outcome: Result<Answer, Fault>) -> PolicyAnswer {
        PolicyAnswer { policy: policy(name), outcome }
    }

    fn flow(categories: &str) -> FlowRecord {
        let json = format!(
            r#"{{"id":"f","platform":{{"id":"p"}},"action":"use","data":{{"categories":[{categories}]}},"purpose":"service"}}"#
        );
        FlowRecord::from_json(json.as_bytes()).unwrap()
    }

    fn obliged(obligation: Obligation) -> Answer {
        let mut answer = Answer::applies();
        answer.oblige(RULE, obligation);
        answer
    }

    fn denied(remedy: Remedy) -> Answer {
        let mut answer = Answer::applies();
        answer.deny(RULE, &[remedy]);
        answer
    }

    fn rules(decision: &Decision) -> Vec<&str> {
        decision.reasons.iter().map(Reason::rule).collect()
    }

    #[test]
    fn deny_overrides_and_drops_obligations_but_keeps_every_reason() {
        let answers = vec![
            answer("a", Ok(obliged(Obligation::LimitRetention { days: 30 }))),
            answer("b", Ok(denied(Remedy::ObtainConsent))),
            answer("c", Ok(denied(Remedy::GiveNotice))),
        ];
        let decision = combine(&flow(r#""contact""#), answers, Unmatched::Deny);
        assert_eq!(decision.effect, Effect::Deny);
        assert!(decision.obligations.is_empty());
        assert_eq!(decision.remedies, [Remedy::GiveNotice, Remedy::ObtainConsent], "merged and sorted");
        assert_eq!(rules(&decision), ["a-rule", "b-rule", "c-rule"], "in policy order");
    }

    #[test]
    fn a_fault_counts_as_deny_and_names_the_policy() {
        let answers = vec![answer("a", Ok(Answer::applies())), answer("b", Err(Fault::Deadline(5)))];
        let decision = combine(&flow(r#""contact""#), answers, Unmatched::Allow);
        assert_eq!(decision.effect, Effect::Deny);
        assert_eq!(rules(&decision), ["policy-fault"]);
        assert_eq!(decision.reasons[0].policy(), "b");
        assert!(decision.reasons[0].message().contains("deadline of 5 ms"), "{:?}", decision.reasons[0]);
    }

    #[test]
    fn obligations_merge_one_per_kind_most_protective() {
        let answers = vec![
            answer("a", Ok(obliged(Obligation::LimitRetention { days: 365 }))),
            answer("b", Ok(obliged(Obligation::LimitRetention { days: 30 }))),
            answer("c", Ok(obliged(Obligation::Aggregate { k: 50 }))),
            answer("d", Ok(obliged(Obligation::Aggregate { k: 10 }))),
        ];
        let decision = combine(&flow(r#""contact""#), answers, Unmatched::Deny);
        assert_eq!(decision.effect, Effect::AllowWithObligations);
        assert_eq!(decision.obligations, [Obligation::Aggregate { k: 50 }, Obligation::LimitRetention { days: 30 }]);
        assert!(decision.remedies.is_empty());
    }

    #[test]
    fn allow_without_obligations_is_plain_allow() {
        let decision = combine(&flow(r#""contact""#), vec![answer("a", Ok(Answer::applies()))], Unmatched::Deny);
        assert_eq!(decision.effect, Effect::Allow);
        assert!(decision.reasons.is_empty());
    }

    #[test]
    fn when_nothing_applies_personal_data_fails_closed() {
        let skipped = || vec![answer("a", Ok(Answer::not_applicable()))];
        let personal = combine(&flow(r#""contact""#), skipped(), Unmatched::Deny);
        assert_eq!(personal.effect, Effect::Deny);
        assert_eq!(rules(&personal), ["no-policy-applied"]);
        assert_eq!(combine(&flow(r#""contact""#), skipped(), Unmatched::Allow).effect, Effect::Allow);
        let platform_data = combine(&flow(r#""non_personal""#), skipped(), Unmatched::Deny);
        assert_eq!(platform_data.effect, Effect::NotApplicable);
        assert!(platform_data.reasons.is_empty());
    }
}
