//! The peers of the benchmarks do the same work: the Rego version of the
//! reference set agrees with Flowgate on whole decisions, and the Cedar
//! version on effects and on the deny rules it names.

use flowgate::sdk::Effect;
use flowgate_peers::{CedarPolicies, RegoPolicies, comparable};
use flowgate_reference_set::sample;

use crate::{reference_host, repo_path};

#[test]
fn rego_agrees_on_the_spec_vectors() {
    let mut rego = RegoPolicies::new().unwrap();
    for line in std::fs::read_to_string(repo_path("examples/spec-vectors.jsonl")).unwrap().lines() {
        let flow = flowgate::sdk::FlowRecord::from_json(line.as_bytes()).unwrap();
        let flowgate = comparable(&reference_host().evaluate(&flow).to_json());
        assert_eq!(rego.decide(&flow).unwrap(), flowgate, "{line}");
    }
}

#[test]
fn rego_agrees_with_flowgate_on_10_000_records() {
    let mut rego = RegoPolicies::new().unwrap();
    let flows = sample::flows(31, 10_000);
    let decisions = reference_host().evaluate_batch(&flows);
    for (flow, decision) in flows.iter().zip(&decisions) {
        assert_eq!(rego.decide(flow).unwrap(), comparable(&decision.to_json()), "{}", flow.to_json());
    }
}

#[test]
fn cedar_agrees_on_effects_with_flowgate_on_10_000_records() {
    let cedar = CedarPolicies::new().unwrap();
    let flows = sample::flows(37, 10_000);
    let decisions = reference_host().evaluate_batch(&flows);
    let mut denied = 0;
    for (flow, decision) in flows.iter().zip(&decisions) {
        let answer = cedar.decide(flow).unwrap();
        assert_eq!(cedar.decide_from_json(flow).unwrap(), answer, "the two contexts differ on {}", flow.to_json());
        assert_eq!(answer.deny, decision.effect == Effect::Deny, "{}", flow.to_json());
        for (policy, rule) in &answer.rules {
            assert!(
                decision.reasons.iter().any(|r| r.policy() == policy && r.rule() == rule),
                "cedar names {policy}/{rule}, flowgate does not: {}",
                flow.to_json()
            );
        }
        assert_eq!(answer.deny, !answer.rules.is_empty());
        denied += usize::from(answer.deny);
    }
    assert!(denied > 1_000 && denied < 9_900, "both effects are exercised ({denied} denied)");
}
