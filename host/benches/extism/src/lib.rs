//! The reference policies as Extism plugins, called the way an Extism user
//! would: one plugin call per policy per record, JSON in and JSON out, and
//! the same combining as Flowgate.

use std::sync::Arc;

use flowgate::testing::{combine_answers, native_policy_info};
use flowgate::{Bundle, Decision, Host, HostBuilder, Manifest, PolicyAnswer, PolicyInfo, Unmatched};
use flowgate_sdk::{Answer, Effect, FlowRecord, Obligation, ObligationSet, Remedy, RemedySet};

include!(concat!(env!("OUT_DIR"), "/plugin.rs"));

/// One Extism plugin instance holding the ten policies.
pub struct ExtismPolicies {
    plugin: extism::Plugin,
    /// Per policy: its export, and what its reasons are.
    policies: Vec<(String, Arc<PolicyInfo>)>,
}

#[derive(serde::Deserialize)]
struct AnswerJson {
    effect: Effect,
    obligations: Vec<Obligation>,
    remedies: Vec<Remedy>,
    fired: u64,
}

impl ExtismPolicies {
    /// Loads the plugin, configured from the reference manifests.
    pub fn new() -> ExtismPolicies {
        let mut manifest = extism::Manifest::new([extism::Wasm::data(PLUGIN.to_vec())]);
        let mut policies = Vec::new();
        let natives = flowgate_reference_set::native();
        for (name, text, _) in flowgate_reference_set::bundles() {
            manifest = manifest.with_config_key(name, flowgate_reference_set::config_json(text));
            let parsed = Manifest::parse(name, text).expect("reference manifests parse");
            let rules = natives.iter().find(|(n, _)| *n == name).expect("native build").1.rules();
            policies.push((name.replace('-', "_"), native_policy_info(&parsed, rules)));
        }
        let plugin = extism::Plugin::new(&manifest, [], false).expect("the plugin loads");
        ExtismPolicies { plugin, policies }
    }

    /// The combined decision about `flow`: ten plugin calls.
    pub fn decide(&mut self, flow: &FlowRecord) -> Decision {
        let input = flow.to_json();
        let mut answers = Vec::new();
        for (export, info) in &self.policies {
            let output: &[u8] = self.plugin.call(export, input.as_str()).expect("the plugin answers");
            let json: AnswerJson = serde_json::from_slice(output).expect("answers are JSON");
            let obligations: ObligationSet = json.obligations.into_iter().collect();
            let remedies: RemedySet = json.remedies.into_iter().collect();
            let answer = Answer::from_parts(json.effect, obligations, remedies, json.fired).expect("consistent answer");
            if answer.effect() != Effect::NotApplicable {
                answers.push(PolicyAnswer { policy: Arc::clone(info), outcome: Ok(answer) });
            }
        }
        combine_answers(flow, answers, Unmatched::Deny)
    }
}

/// A Flowgate host with the same ten policies, for the other side of the comparison.
pub fn flowgate_host() -> Host {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| Bundle::from_bytes(name, manifest, wasm.to_vec()).expect("reference bundles load"))
        .fold(Host::builder(), HostBuilder::bundle)
        .build()
        .expect("reference policies load")
}
