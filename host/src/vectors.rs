//! Running a bundle's own test vectors against its Wasm build.

use std::sync::Arc;

use flowgate_sdk::{Answer, Effect, ObligationSet, RemedySet};

use crate::bundle::Bundle;
use crate::compiled::CompiledPolicy;
use crate::encoded::EncodedRecords;
use crate::error::Error;
use crate::manifest::TestVector;
use crate::sandbox::{Limits, Runtime};
use crate::scope::Facts;

/// Compiles `bundle` on its own and checks every `[[test]]` of its manifest
/// against the policy's own answer: effect, obligations, remedies and the
/// rules that fired. Returns how many vectors passed.
///
/// A bundle that fails any vector is [`Error::VectorsFailed`], with a line
/// per failure saying what was expected and what came back.
pub fn check_vectors(bundle: &Bundle) -> Result<usize, Error> {
    let runtime =
        Arc::new(Runtime::new(256 << 10, None).map_err(|source| Error::InvalidModule {
            origin: "<engine>".into(),
            source: source.into_boxed_dyn_error(),
        })?);
    let policy = CompiledPolicy::load(&runtime, bundle, Limits::default())?;
    check_policy(&policy, &bundle.manifest.tests)
}

/// Checks a compiled policy against `tests`.
pub(crate) fn check_policy(policy: &CompiledPolicy, tests: &[TestVector]) -> Result<usize, Error> {
    let mut failures = Vec::new();
    for vector in tests {
        let records = EncodedRecords::new(std::slice::from_ref(&vector.record));
        let in_scope = policy.scope.covers(&Facts::of(&vector.record));
        let problem = match policy.evaluate(&records, &[0], u32::MAX) {
            Err(fault) => Some(format!("the policy {fault}")),
            Ok(answers) if !in_scope && answers[0].effect() != Effect::NotApplicable => Some(format!(
                "the record is outside the manifest's [applies_to], but the policy answers {}",
                answers[0].effect()
            )),
            Ok(answers) => mismatch(policy, vector, &answers[0]),
        };
        if let Some(problem) = problem {
            failures.push(format!("`{}`: {problem}", vector.name));
        }
    }
    if failures.is_empty() {
        Ok(tests.len())
    } else {
        Err(Error::VectorsFailed { policy: policy.info.name.clone(), failures })
    }
}

/// What differs between the expected answer and `got`, if anything.
fn mismatch(policy: &CompiledPolicy, vector: &TestVector, got: &Answer) -> Option<String> {
    let fired: Vec<&str> =
        got.fired().filter_map(|rule| policy.info.reason(rule).map(|reason| reason.rule())).collect();
    let expected_obligations: ObligationSet = vector.obligations.iter().copied().collect();
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
