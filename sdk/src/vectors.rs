//! A policy's own `[[test]]` vectors, run natively inside `cargo test`
//! (cargo feature `vectors`, for `[dev-dependencies]` only).
//!
//! ```
//! # use flowgate_sdk::{Answer, FlowView, Policy, Remedy, Rule, rules};
//! # rules! { NO_BASIS = "no-basis", "PIPL Art. 13", "the flow has no lawful basis"; }
//! # #[derive(serde::Deserialize)] struct NeedsBasis {}
//! # impl Policy for NeedsBasis {
//! #     const RULES: &'static [Rule] = RULES;
//! #     fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
//! #         let mut answer = Answer::applies();
//! #         if flow.lawful_basis() == flowgate_sdk::LawfulBasis::None { answer.deny(NO_BASIS, &[Remedy::ObtainConsent]); }
//! #         answer
//! #     }
//! # }
//! let manifest = r#"
//! name = "needs-basis"
//! [[test]]
//! name = "no basis"
//! record = { id = "t", platform = { id = "p" }, action = "use", data = { categories = ["contact"] }, purpose = "service" }
//! effect = "allow"
//! "#;
//! let err = flowgate_sdk::vectors::check::<NeedsBasis>(manifest).unwrap_err().to_string();
//! assert!(err.contains("`no basis` (manifest line 3)"), "{err}");
//! assert!(err.contains("effect       expected `allow`, got `deny`"), "{err}");
//! assert!(err.contains(r#"remedies     expected [], got ["obtain_consent"]"#), "{err}");
//! ```
//!
//! The comparison is the host's (effect, obligations and remedies as sets,
//! rules in rule table order), reported in the manifest's words. What only
//! the host knows, `[applies_to]` and the Wasm build itself, is checked by
//! `flowgate build` and `flowgate test`.

use std::fmt;

use serde::Deserialize;

use crate::answer::{Obligation, ObligationSet, RemedySet};
use crate::policy::Policy;
use crate::record::FlowRecord;
use crate::vocabulary::{Effect, Remedy};

/// The parts of a manifest the vectors need; the host checks the rest.
#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    config: toml::Table,
    #[serde(default, rename = "test")]
    tests: Vec<Vector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    name: String,
    record: FlowRecord,
    effect: Effect,
    #[serde(default)]
    obligations: Vec<Obligation>,
    #[serde(default)]
    remedies: Vec<Remedy>,
    #[serde(default)]
    rules: Vec<String>,
}

/// Why the vectors did not pass: the manifest or configuration is invalid,
/// or some vectors fail, each told in the manifest's words.
///
/// `Debug` prints the same text as `Display`, so `.unwrap()` in a test
/// shows it readably.
pub struct VectorsFailed(String);

impl fmt::Display for VectorsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VectorsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VectorsFailed {}

/// Builds `P` from the manifest's `[config]` and checks its answer to the
/// record of every `[[test]]`; returns how many passed (all of them).
pub fn check<P: Policy>(manifest: &str) -> Result<usize, VectorsFailed> {
    let parsed: Manifest = toml::from_str(manifest).map_err(|err| VectorsFailed(format!("manifest: {err}")))?;
    let config = serde_json::to_string(&parsed.config).map_err(|err| VectorsFailed(format!("[config]: {err}")))?;
    let policy = P::from_config_json(&config).map_err(|err| VectorsFailed(format!("[config]: {err}")))?;
    let lines = header_lines(manifest);
    let declared: Vec<&str> = P::RULES.iter().map(|rule| rule.name).collect();
    let mut failures = Vec::new();
    for (index, vector) in parsed.tests.iter().enumerate() {
        // What the Wasm build would be handed: only the strings it declares.
        let answer = policy.answer(&vector.record);
        let got_obligations: Vec<Obligation> = answer.obligations().iter().collect();
        let got_remedies: Vec<Remedy> = answer.remedies().iter().collect();
        let got_rules: Vec<String> =
            answer.fired().filter_map(|rule| declared.get(rule.index())).map(|name| (*name).to_owned()).collect();
        let expected_obligations: ObligationSet = vector.obligations.iter().copied().collect();
        let expected_remedies: RemedySet = vector.remedies.iter().copied().collect();
        let mut parts = Vec::new();
        if vector.effect != answer.effect() {
            parts.push(format!("effect       expected `{}`, got `{}`", vector.effect, answer.effect()));
        }
        if !expected_obligations.iter().eq(got_obligations.iter().copied()) {
            parts.push(format!(
                "obligations  expected {}, got {}",
                words(&vector.obligations, obligation_word),
                words(&got_obligations, obligation_word)
            ));
        }
        if !expected_remedies.iter().eq(got_remedies.iter().copied()) {
            let remedy = |r: &Remedy| format!("\"{r}\"");
            parts.push(format!(
                "remedies     expected {}, got {}",
                words(&vector.remedies, remedy),
                words(&got_remedies, remedy)
            ));
        }
        if vector.rules != got_rules {
            let rule = |r: &String| format!("\"{r}\"");
            parts.push(format!(
                "rules        expected {}, got {}",
                words(&vector.rules, rule),
                words(&got_rules, rule)
            ));
            for undeclared in vector.rules.iter().filter(|r| !declared.contains(&r.as_str())) {
                parts.push(format!("hint: rule `{undeclared}` is not declared in the policy's `rules!` table"));
            }
            let (mut a, mut b) = (vector.rules.clone(), got_rules.clone());
            a.sort();
            b.sort();
            if a == b {
                parts.push("hint: the same rules fired; list them in rule table order".to_owned());
            }
        }
        if !parts.is_empty() {
            let line = lines.get(index).map_or(String::new(), |line| format!(" (manifest line {line})"));
            failures.push(format!(
                "`{}`{line}: natively, the answer differs\n    {}",
                vector.name,
                parts.join("\n    ")
            ));
        }
    }
    if failures.is_empty() {
        Ok(parsed.tests.len())
    } else {
        Err(VectorsFailed(format!(
            "{} of {} vectors fail:\n{}",
            failures.len(),
            parsed.tests.len(),
            failures.join("\n")
        )))
    }
}

/// The 1-based lines of the `[[test]]` headers.
fn header_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim();
            line.strip_prefix("[[").and_then(|rest| rest.split_once("]]")).is_some_and(|(name, after)| {
                name.trim() == "test" && (after.trim().is_empty() || after.trim().starts_with('#'))
            })
        })
        .map(|(index, _)| index + 1)
        .collect()
}

fn words<T>(items: &[T], word: impl Fn(&T) -> String) -> String {
    format!("[{}]", items.iter().map(word).collect::<Vec<_>>().join(", "))
}

fn obligation_word(obligation: &Obligation) -> String {
    match obligation {
        Obligation::Aggregate { k } => format!("{{ kind = \"{}\", k = {k} }}", obligation.kind()),
        Obligation::LimitRetention { days } => format!("{{ kind = \"{}\", days = {days} }}", obligation.kind()),
        other => format!("{{ kind = \"{}\" }}", other.kind()),
    }
}
