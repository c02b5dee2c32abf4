//! The reference policies in Rego, evaluated by regorus.

use flowgate_sdk::FlowRecord;
use serde_json::Value;

use crate::Comparable;

/// The Rego sources: the shared notions, the ten policies, the combining.
const SOURCES: [(&str, &str); 12] = [
    ("common.rego", include_str!("../rego/common.rego")),
    ("lawful_basis.rego", include_str!("../rego/lawful_basis.rego")),
    ("sensitive_consent.rego", include_str!("../rego/sensitive_consent.rego")),
    ("third_party_provision.rego", include_str!("../rego/third_party_provision.rego")),
    ("cross_border.rego", include_str!("../rego/cross_border.rego")),
    ("important_data.rego", include_str!("../rego/important_data.rego")),
    ("credit_via_bureau.rego", include_str!("../rego/credit_via_bureau.rego")),
    ("statutory_credit_reporting.rego", include_str!("../rego/statutory_credit_reporting.rego")),
    ("regulator_jv.rego", include_str!("../rego/regulator_jv.rego")),
    ("purpose_minimisation.rego", include_str!("../rego/purpose_minimisation.rego")),
    ("automated_decisions.rego", include_str!("../rego/automated_decisions.rego")),
    ("decision.rego", include_str!("../rego/decision.rego")),
];

/// A regorus engine holding the ten policies, configured from the same
/// manifests as the Wasm policies (`data.config.<policy>`).
#[derive(Clone)]
pub struct RegoPolicies {
    engine: regorus::Engine,
}

impl RegoPolicies {
    /// Parses the policies and loads their configuration.
    pub fn new() -> Result<RegoPolicies, String> {
        let mut engine = regorus::Engine::new();
        for (file, source) in SOURCES {
            engine.add_policy(file.to_owned(), source.to_owned()).map_err(|err| format!("{file}: {err}"))?;
        }
        let mut config = serde_json::Map::new();
        for (name, manifest, _) in flowgate_reference_set::bundles() {
            let table: Value = serde_json::from_str(&flowgate_reference_set::config_json(manifest)).unwrap();
            config.insert(name.replace('-', "_"), table);
        }
        let data = serde_json::json!({ "config": config }).to_string();
        engine.add_data_json(&data).map_err(|err| err.to_string())?;
        Ok(RegoPolicies { engine })
    }

    /// The combined decision about `flow`, as Rego states it.
    pub fn decide(&mut self, flow: &FlowRecord) -> Result<Comparable, String> {
        self.engine.set_input_json(&crate::input_json(flow)).map_err(|err| err.to_string())?;
        let decision =
            self.engine.eval_rule("data.flowgate.decision.decision".to_owned()).map_err(|err| err.to_string())?;
        let json = decision.to_json_str().map_err(|err| err.to_string())?;
        serde_json::from_str(&json).map_err(|err| err.to_string())
    }
}
