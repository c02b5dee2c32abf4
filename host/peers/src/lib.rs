//! The reference policies in the engines people would otherwise pick, so
//! benchmarks compare the same work and tests check that it is the same:
//!
//! - [`RegoPolicies`]: the ten policies and the combining rules in Rego
//!   (`rego/*.rego`), evaluated by regorus; its decisions must equal
//!   Flowgate's whole decisions;
//! - [`CedarPolicies`]: the deny rules in Cedar (`cedar/reference.cedar`);
//!   its effect must equal Flowgate's, and the rules it names must be among
//!   Flowgate's reasons.
//!
//! Both sides are compared through [`Comparable`]: effect, obligations with
//! parameters, remedies, and the rules that fired as `(policy, rule)` (the
//! articles and messages are Flowgate's own text).

use flowgate_sdk::FlowRecord;
use serde_json::{Value, json};

mod cedar;
mod rego;

pub use cedar::{CedarDecision, CedarPolicies};
pub use rego::RegoPolicies;

/// A decision reduced to what every engine can state.
pub type Comparable = Value;

/// The comparable form of a Flowgate decision's JSON.
pub fn comparable(decision_json: &str) -> Comparable {
    let decision: Value = serde_json::from_str(decision_json).expect("decisions are JSON");
    let reasons: Vec<Value> = decision["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|reason| json!({"policy": reason["policy"], "rule": reason["rule"]}))
        .collect();
    json!({
        "effect": decision["effect"],
        "obligations": decision["obligations"],
        "remedies": decision["remedies"],
        "reasons": reasons,
    })
}

/// The JSON of a record as an engine without Flowgate's types sees it.
pub fn input_json(flow: &FlowRecord) -> String {
    flow.to_json()
}
