//! Every reference policy's own test vectors: at least five each, covering
//! every rule, passing against the Wasm build and the native build alike.

use std::collections::BTreeSet;

use flowgate::Expected;
use flowgate::testing::check_vectors;

use crate::reference_bundles;

#[test]
fn every_policy_passes_its_own_vectors_as_wasm() {
    for bundle in reference_bundles() {
        let passed = check_vectors(&bundle).unwrap_or_else(|err| panic!("{err}"));
        assert!(passed >= 5, "`{}` has only {passed} vectors", bundle.manifest.name);
    }
}

#[test]
fn every_rule_of_every_policy_is_covered_by_a_vector() {
    let natives = flowgate_reference_set::native();
    for bundle in reference_bundles() {
        let (_, native) = natives.iter().find(|(name, _)| *name == bundle.manifest.name).unwrap();
        let covered: BTreeSet<&str> =
            bundle.manifest.tests.iter().flat_map(|test| test.rules.iter().map(String::as_str)).collect();
        for rule in native.rules() {
            assert!(covered.contains(rule.name), "`{}`: no vector fires `{}`", bundle.manifest.name, rule.name);
        }
    }
}

#[test]
fn every_policy_passes_its_own_vectors_natively() {
    let natives = flowgate_reference_set::native();
    for bundle in reference_bundles() {
        let (_, native) = natives.iter().find(|(name, _)| *name == bundle.manifest.name).unwrap();
        for test in &bundle.manifest.tests {
            let answer = native.answer(&test.record);
            let got = Expected::of_answer(&answer, |rule| native.rules().get(rule.index()).map(|rule| rule.name));
            if let Err(problem) = test.expected().check(got) {
                panic!("{} natively: `{}`: {problem}", bundle.manifest.name, test.name);
            }
        }
    }
}

#[test]
fn a_scope_narrower_than_the_policy_is_caught_by_its_vectors() {
    let reference = flowgate_reference_set::manifest("lawful-basis").unwrap();
    // Claims to concern only `use`, but its vectors show it answers `delete` too.
    let narrowed = reference.replace("[applies_to]\npersonal = true", "[applies_to]\nactions = [\"use\"]");
    assert_ne!(narrowed, reference);
    let wasm = reference_bundles().into_iter().find(|b| b.manifest.name == "lawful-basis").unwrap().wasm;
    let bundle = flowgate::Bundle::from_bytes("narrowed", &narrowed, wasm).unwrap();
    let err = check_vectors(&bundle).unwrap_err().to_string();
    assert!(err.contains("outside the manifest's [applies_to], but the policy answers allow"), "{err}");
}
