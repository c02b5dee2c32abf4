//! The Extism wrapper decides exactly as Flowgate does, on 10,000 records.

use flowgate_extism_bench::{ExtismPolicies, flowgate_host};

#[test]
fn extism_agrees_with_flowgate_on_10_000_records() {
    let host = flowgate_host();
    let mut extism = ExtismPolicies::new();
    for flow in flowgate_reference_set::sample::flows(41, 10_000) {
        assert_eq!(extism.decide(&flow).to_json(), host.evaluate(&flow).to_json(), "{}", flow.to_json());
    }
}
