//! Native and Wasm builds of every policy agree, and records survive the
//! Wasm boundary unchanged, on 10,000 generated records.

use std::sync::Arc;

use flowgate::sdk::FlowRecord;
use flowgate::sdk::wire;
use flowgate::{Manifest, PolicyAnswer, PolicyInfo, Unmatched, combine};
use flowgate_reference_set::sample;

use crate::reference_host;

const RECORDS: usize = 10_000;

#[test]
fn native_and_wasm_give_the_same_decisions() {
    let natives: Vec<(Arc<PolicyInfo>, Box<dyn flowgate::sdk::DynPolicy>)> = flowgate_reference_set::native()
        .into_iter()
        .map(|(name, policy)| {
            let manifest = Manifest::parse(name, flowgate_reference_set::manifest(name).unwrap()).unwrap();
            (Arc::new(PolicyInfo::native(&manifest, policy.rules())), policy)
        })
        .collect();
    let flows = sample::flows(7, RECORDS);
    let decisions = reference_host().evaluate_batch(&flows);
    let mut effects = std::collections::BTreeMap::new();
    for (flow, wasm) in flows.iter().zip(&decisions) {
        let answers = natives
            .iter()
            .map(|(info, policy)| PolicyAnswer { policy: Arc::clone(info), outcome: Ok(policy.evaluate(flow)) })
            .filter(|answer| answer.effect() != flowgate::sdk::Effect::NotApplicable)
            .collect::<Vec<_>>();
        let outcomes: Vec<_> = answers.iter().map(|a| a.outcome.clone()).collect();
        let native = combine(flow, answers, Unmatched::Deny);
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

#[test]
fn records_cross_the_boundary_unchanged() {
    for flow in sample::flows(3, RECORDS) {
        let mut bytes = Vec::new();
        wire::encode_record(&flow, &mut bytes);
        let decoded = wire::decode_record(&mut wire::Reader::new(&bytes)).unwrap();
        assert_eq!(decoded.to_json(), flow.to_json());
        let reparsed = FlowRecord::from_json(flow.to_json().as_bytes()).unwrap();
        assert_eq!(reparsed, flow);
    }
}

#[test]
fn truncated_wire_records_are_errors_not_panics() {
    let flow = &sample::flows(5, 1)[0];
    let mut bytes = Vec::new();
    wire::encode_record(flow, &mut bytes);
    for cut in 0..bytes.len() {
        assert!(wire::decode_record(&mut wire::Reader::new(&bytes[..cut])).is_err(), "cut at {cut}");
    }
}
