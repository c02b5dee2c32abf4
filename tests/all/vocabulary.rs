//! A vocabulary that grows without a flag day: policies built against an
//! older SDK (no category `religion`) and a newer one (a category `genetic`
//! before all others, so every later code moves) run on this host. Each
//! fixture fires one rule per category it sees, named after it, so these
//! tests read back exactly which words reached the policy.

use flowgate::sdk::{Category, Effect, FlowRecord};
use flowgate::{Bundle, Decision, Host};
use flowgate_tests::fixtures::{NEWER_VOCABULARY_POLICY, OLDER_VOCABULARY_POLICY};

fn host(name: &str, wasm: &[u8]) -> Host {
    let manifest = format!("name = \"{name}\"\nversion = \"1.0.0\"\nregulator = \"nobody\"\narticles = []\n");
    Host::builder().bundle(Bundle::from_bytes(name, &manifest, wasm.to_vec()).unwrap()).build().unwrap()
}

fn flow(id: usize, categories: &[Category]) -> FlowRecord {
    let words: Vec<String> = categories.iter().map(|c| format!("\"{c}\"")).collect();
    FlowRecord::from_json(
        format!(
            r#"{{"id":"f-{id}","platform":{{"id":"p"}},"action":"use","data":{{"categories":[{}]}},"purpose":"service"}}"#,
            words.join(",")
        )
        .as_bytes(),
    )
    .unwrap()
}

/// The categories the policy said it saw, as category words.
fn seen(decision: &Decision) -> Vec<String> {
    decision.reasons.iter().map(|r| r.rule().trim_start_matches("saw-").replace('-', "_")).collect()
}

#[test]
fn a_policy_of_an_older_vocabulary_sees_every_word_it_knows_under_its_own_code() {
    let host = host("older", OLDER_VOCABULARY_POLICY);
    // `minor` and `non_personal` come after `religion`: their codes differ
    // between the two builds, so a code handed over as it is would be read
    // as the word before it.
    let known: Vec<Category> = Category::ALL.iter().copied().filter(|c| *c != Category::Religion).collect();
    for (n, category) in known.iter().enumerate() {
        let decision = host.evaluate(&flow(n, &[*category]));
        assert_eq!(seen(&decision), [category.as_str()], "{}", decision.to_json());
    }
    let all = host.evaluate(&flow(99, &known));
    assert_eq!(seen(&all), known.iter().map(|c| c.as_str()).collect::<Vec<_>>());
}

#[test]
fn a_word_the_policy_lacks_fails_closed_naming_it_and_is_not_held_against_the_policy() {
    let host = host("older", OLDER_VOCABULARY_POLICY);
    // Far more distinct records than the quarantine threshold (16).
    for n in 0..64 {
        let decision = host.evaluate(&flow(n, &[Category::Contact, Category::Religion]));
        assert_eq!(decision.effect, Effect::Deny, "{}", decision.to_json());
        let [reason] = decision.reasons.as_slice() else { panic!("one reason: {}", decision.to_json()) };
        assert_eq!((reason.policy(), reason.rule()), ("older", "policy-fault"));
        assert!(
            reason.message().contains("does not know the word `religion` of `data.categories`"),
            "{}",
            reason.message()
        );
    }
    let status = &host.policies()[0];
    assert_eq!((status.faults, status.quarantined), (0, false), "a vocabulary gap is not the policy's fault");
    // Records of words it knows are still asked, in the same batch too.
    let batch = host.evaluate_batch(&[
        flow(1, &[Category::Minor]),
        flow(2, &[Category::Religion]),
        flow(3, &[Category::Health]),
    ]);
    assert_eq!(seen(&batch[0]), ["minor"]);
    assert_eq!(batch[1].effect, Effect::Deny);
    assert_eq!(seen(&batch[2]), ["health"]);
}

#[test]
fn a_policy_of_a_newer_vocabulary_gets_the_host_words_under_its_codes() {
    // Its `genetic` comes first: every code of the host is one less than its own.
    let host = host("newer", NEWER_VOCABULARY_POLICY);
    let info = &host.policies()[0].info;
    assert_eq!(info.rule_names().next(), Some("saw-genetic"), "the fixture was built against the newer vocabulary");
    for (n, category) in Category::ALL.iter().enumerate() {
        let decision = host.evaluate(&flow(n, &[*category]));
        assert_eq!(seen(&decision), [category.as_str()], "{}", decision.to_json());
    }
    let all = host.evaluate(&flow(99, Category::ALL));
    assert_eq!(seen(&all), Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>());
}
