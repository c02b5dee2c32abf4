//! Running a bundle's own test vectors against its Wasm build.

use flowgate_sdk::{ObligationSet, RemedySet};

use crate::bundle::Bundle;
use crate::error::Error;
use crate::host::Host;

/// Loads `bundle` on its own and checks every `[[test]]` of its manifest
/// against the policy's own answer: effect, obligations, remedies and the
/// rules that fired. Returns how many vectors passed.
///
/// A bundle that fails any vector is [`Error::VectorsFailed`], with a line
/// per failure saying what was expected and what came back.
pub fn check_vectors(bundle: &Bundle) -> Result<usize, Error> {
    let host = Host::builder().bundle(bundle.clone()).build()?;
    let mut failures = Vec::new();
    for vector in &bundle.manifest.tests {
        let decision = host.evaluate(&vector.record);
        let answer = &decision.answers[0];
        let problem = match &answer.outcome {
            Err(fault) => Some(format!("the policy {fault}")),
            Ok(got) => {
                let fired: Vec<&str> = got
                    .fired()
                    .filter_map(|rule| answer.policy.reason(rule).map(|reason| reason.rule()))
                    .collect();
                let expected_obligations: ObligationSet =
                    vector.obligations.iter().copied().collect();
                let expected_remedies: RemedySet = vector.remedies.iter().copied().collect();
                let same = got.effect() == vector.effect
                    && got.obligations() == expected_obligations
                    && got.remedies() == expected_remedies
                    && fired == vector.rules;
                (!same).then(|| {
                    format!(
                        "expected {} {:?} {:?} rules {:?}, got {} {:?} {:?} rules {:?}",
                        vector.effect,
                        vector.obligations,
                        vector.remedies,
                        vector.rules,
                        got.effect(),
                        got.obligations().iter().collect::<Vec<_>>(),
                        got.remedies().iter().collect::<Vec<_>>(),
                        fired
                    )
                })
            }
        };
        if let Some(problem) = problem {
            failures.push(format!("`{}`: {problem}", vector.name));
        }
    }
    if failures.is_empty() {
        Ok(bundle.manifest.tests.len())
    } else {
        Err(Error::VectorsFailed {
            policy: bundle.manifest.name.clone(),
            failures,
        })
    }
}
