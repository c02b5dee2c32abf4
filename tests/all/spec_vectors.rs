//! The 15 public test vectors of `docs/reference-policies.md`, through the
//! library and through the CLI.

use flowgate::sdk::FlowRecord;
use serde_json::{Value, json};

use crate::{flowgate, reference_host, repo_path};

/// The expected combined decisions, as the spec's table gives them.
fn expected() -> Vec<Value> {
    let allow = |id: &str| json!({"id": id, "effect": "allow", "obligations": [], "remedies": []});
    let deny = |id: &str, remedies: Value| json!({"id": id, "effect": "deny", "obligations": [], "remedies": remedies});
    let oblige = |id: &str, obligations: Value| json!({"id": id, "effect": "allow_with_obligations", "obligations": obligations, "remedies": []});
    vec![
        allow("v1"),
        deny("v2", json!(["obtain_consent"])),
        deny("v3", json!(["obtain_consent"])),
        allow("v4"),
        deny("v5", json!(["obtain_separate_consent"])),
        oblige("v6", json!([{"kind": "encrypt_in_transit"}])),
        deny("v7", json!(["route_via_credit_bureau"])),
        oblige("v8", json!([{"kind": "encrypt_in_transit"}, {"kind": "log_to_regulator"}, {"kind": "notify_subject"}])),
        oblige("v9", json!([{"kind": "aggregate", "k": 50}])),
        oblige("v10", json!([{"kind": "log_to_regulator"}])),
        deny("v11", json!(["security_assessment_required"])),
        oblige("v12", json!([{"kind": "limit_retention", "days": 365}])),
        oblige(
            "v13",
            json!([{"kind": "encrypt_in_transit"}, {"kind": "flag_incomplete_report"}, {"kind": "log_to_regulator"}]),
        ),
        json!({"id": "v14", "effect": "not_applicable", "obligations": [], "remedies": []}),
        allow("v15"),
    ]
}

/// A decision's JSON without its reasons (the spec's table does not give them).
fn without_reasons(json: &str) -> Value {
    let mut value: Value = serde_json::from_str(json).unwrap();
    let reasons = value.as_object_mut().unwrap().remove("reasons").unwrap();
    assert!(reasons.is_array());
    value
}

fn vectors() -> String {
    std::fs::read_to_string(repo_path("examples/spec-vectors.jsonl")).unwrap()
}

#[test]
fn library_reproduces_the_spec_vectors() {
    let host = reference_host();
    let got: Vec<Value> = vectors()
        .lines()
        .map(|line| without_reasons(&host.evaluate(&FlowRecord::from_json(line.as_bytes()).unwrap()).to_json()))
        .collect();
    assert_eq!(got, expected());
}

#[test]
fn batches_reproduce_the_spec_vectors() {
    let flows: Vec<FlowRecord> =
        vectors().lines().map(|line| FlowRecord::from_json(line.as_bytes()).unwrap()).collect();
    let got: Vec<Value> =
        reference_host().evaluate_batch(&flows).iter().map(|decision| without_reasons(&decision.to_json())).collect();
    assert_eq!(got, expected());
}

#[test]
fn cli_reproduces_the_spec_vectors() {
    let run = flowgate(&["check", "-"], vectors().as_bytes());
    assert_eq!(run.status, 0, "{}", run.stderr);
    let got: Vec<Value> = run.stdout.lines().map(without_reasons).collect();
    assert_eq!(got, expected());
    assert!(run.stderr.contains("15 records"), "{}", run.stderr);
}

#[test]
fn reasons_name_policy_rule_and_article() {
    let line = vectors().lines().nth(6).unwrap().to_owned();
    let decision = reference_host().evaluate(&FlowRecord::from_json(line.as_bytes()).unwrap());
    let first = &decision.reasons[0];
    assert_eq!(
        (first.policy(), first.version(), first.rule(), first.article()),
        ("credit-via-bureau", "1.0.0", "no-direct-connection", "Credit Reporting Measures (PBoC Order No. 4 [2021])")
    );
    assert_eq!(first.message(), "credit information goes to lenders only through a licensed credit bureau");
    // Reasons come in policy name order.
    let policies: Vec<&str> = decision.reasons.iter().map(|r| r.policy()).collect();
    let mut sorted = policies.clone();
    sorted.sort();
    assert_eq!(policies, sorted);
}
