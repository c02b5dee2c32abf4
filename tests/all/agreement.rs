//! Native and Wasm builds of every policy agree, and records survive the
//! Wasm boundary unchanged, on 10,000 generated records.

use flowgate::sdk::{FlowRecord, FlowView, StringFields, wire};
use flowgate::testing::NativeSet;
use flowgate_reference_set::sample;

use crate::reference_host;

const RECORDS: usize = 10_000;

#[test]
fn native_and_wasm_give_the_same_decisions() {
    let natives = NativeSet::new(
        flowgate_reference_set::native()
            .into_iter()
            .map(|(name, policy)| (flowgate_reference_set::manifest(name).unwrap(), policy)),
    )
    .unwrap();
    let flows = sample::flows(7, RECORDS);
    let decisions = reference_host().evaluate_batch(&flows);
    let mut effects = std::collections::BTreeMap::new();
    for (flow, wasm) in flows.iter().zip(&decisions) {
        let outcomes: Vec<_> = natives.answers(flow).into_iter().map(|a| a.outcome).collect();
        let native = natives.decide(flow);
        assert_eq!(native.to_json(), wasm.to_json(), "record {}", flow.to_json());
        assert_eq!(outcomes, wasm.answers.iter().map(|a| a.outcome.clone()).collect::<Vec<_>>());
        *effects.entry(wasm.effect).or_insert(0) += 1;
    }
    // The sample must exercise every effect, or agreement proves little.
    assert_eq!(effects.len(), 4, "{effects:?}");
}

#[test]
fn batches_and_single_calls_agree() {
    let flows = sample::flows(11, 600);
    let batch = reference_host().evaluate_batch(&flows);
    for (flow, batched) in flows.iter().zip(&batch) {
        assert_eq!(&reference_host().evaluate(flow), batched);
    }
}

/// Records at the edges of what crosses the boundary, alternating long and
/// short strings so that a decoder reusing its buffers without clearing
/// them shows it: strings of exactly 1,024 bytes (the cap) in three- and
/// four-byte characters, one-byte strings, counts of `u64::MAX` and 0. The
/// first four go to a credit bureau, whose policy compares the recipient's
/// id and licence with its registry: a licence read with a tail left over
/// from the record before would make a licensed bureau unlicensed.
fn edge_records() -> Vec<FlowRecord> {
    let cjk = "征".repeat(341) + "x";
    let crabs = "🦀".repeat(256);
    assert_eq!((cjk.len(), crabs.len()), (1024, 1024));
    let bureau = |id: &str, platform: &str, bureau: &str, licence: &str, subjects: u64| {
        format!(
            r#"{{"id":"{id}","platform":{{"id":"{platform}","sector":"consumer_credit"}},"action":"share",
            "data":{{"categories":["loan_record"],"credit_information":true}},"purpose":"credit_assessment",
            "lawful_basis":"consent","consent":{{"state":"given"}},
            "recipient":{{"kind":"credit_bureau","id":"{bureau}","licence":"{licence}"}},
            "volume":{{"subjects":{subjects},"ytd_export_subjects":{subjects},"ytd_export_sensitive_subjects":{subjects}}}}}"#
        )
    };
    let export = |id: &str, subjects: u64| {
        format!(
            r#"{{"id":"{id}","platform":{{"id":"{crabs}"}},"action":"export","data":{{"categories":["location"]}},
            "purpose":"service","lawful_basis":"consent","consent":{{"state":"given","kind":"separate",
            "covers_purpose":true,"covers_recipient":true}},"recipient":{{"kind":"overseas","id":"{cjk}"}},
            "destination":"SG","notice_given":true,"impact_assessment":true,
            "volume":{{"subjects":{subjects},"ytd_export_subjects":{subjects},"ytd_export_sensitive_subjects":{subjects}}}}}"#
        )
    };
    [
        bureau(&cjk, &crabs, "baihang", &cjk, u64::MAX),
        bureau("短", "p", "baihang", "PBOC-CR-2018-001", 1),
        bureau(&crabs, "p", &crabs, "PBOC-CR-2020-002", u64::MAX),
        bureau("e", "滴", "pudao", "PBOC-CR-2020-002", 0),
        export(&crabs, u64::MAX),
        export("x", 1),
    ]
    .iter()
    .map(|json| FlowRecord::from_json(json.replace('\n', "").as_bytes()).unwrap())
    .collect()
}

#[test]
fn edge_records_decide_alike_in_one_wasm_batch() {
    let mut flows = edge_records();
    flows.extend(edge_records());
    let natives = crate::native_reference();
    // One batch: each guest reads every record through a view where it lies.
    let decisions = reference_host().evaluate_batch(&flows);
    for (flow, decision) in flows.iter().zip(&decisions) {
        assert_eq!(decision.to_json(), natives.decide(flow).to_json(), "{}", flow.to_json());
        assert_eq!(decision, &reference_host().evaluate(flow), "batch and single call differ");
    }
    // The short, registered bureaus are read as such after the long ones.
    let rules = |n: usize| decisions[n].reasons.iter().map(|r| r.rule().to_owned()).collect::<Vec<_>>();
    for long in [0, 2] {
        assert!(rules(long).contains(&"unlicensed-bureau".to_owned()), "{}", decisions[long].to_json());
    }
    for short in [1, 3] {
        assert!(rules(short).contains(&"bureau-log".to_owned()), "{}", decisions[short].to_json());
        assert!(!rules(short).contains(&"unlicensed-bureau".to_owned()), "{}", decisions[short].to_json());
    }
}

#[test]
fn records_cross_the_boundary_unchanged() {
    let mut flows = sample::flows(3, RECORDS);
    flows.extend(edge_records());
    flows.extend(edge_records().into_iter().rev());
    for flow in &flows {
        let reparsed = FlowRecord::from_json(flow.to_json().as_bytes()).unwrap();
        assert_eq!(&reparsed, flow);
    }
    // Encoded as the host encodes a batch, read as a guest reads one: a
    // view of each record where it lies, every field read back.
    let mut bytes = Vec::new();
    for flow in &flows {
        wire::encode_record(flow, &mut bytes);
    }
    let mut rest = &bytes[..];
    for flow in &flows {
        let (view, after) = FlowView::split_first(rest, StringFields::ALL).unwrap();
        assert_eq!(view.to_flow_record().to_json(), flow.to_json());
        rest = after;
    }
    assert!(rest.is_empty());
}

#[test]
fn truncated_wire_records_are_errors_not_panics() {
    let flow = &sample::flows(5, 1)[0];
    let mut bytes = Vec::new();
    wire::encode_record(flow, &mut bytes);
    for cut in 0..bytes.len() {
        assert!(FlowView::new(&bytes[..cut], StringFields::ALL).is_err(), "cut at {cut}");
    }
}
