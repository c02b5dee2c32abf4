//! Admission: the one way a bundle becomes a serving policy, at start-up,
//! on [`Host::load`](crate::Host::load), from the watcher and in
//! `flowgate build` and `flowgate test` alike. A check added here holds
//! everywhere: compiled and checked, then run against its own test vectors.

use std::sync::Arc;

use flowgate_sdk::Effect;

use crate::bundle::Bundle;
use crate::compiled::{CompiledPolicy, PolicySettings};
use crate::encoded::EncodedRecords;
use crate::error::Error;
use crate::expectation::{Expected, VectorFailure, VectorProblem};
use crate::manifest::TestVector;
use crate::sandbox::{DEFAULT_STACK_BYTES, Runtime};
use crate::scope::Facts;
use crate::trust::TrustPolicy;

/// Compiles `bundle` on its own and checks every `[[test]]` of its manifest
/// against the policy's own answer: effect, obligations, remedies and the
/// rules that fired. Returns how many vectors passed.
///
/// A bundle that fails any vector is [`Error::VectorsFailed`], with each
/// failing vector and what came back instead.
pub fn check_vectors(bundle: &Bundle) -> Result<usize, Error> {
    let runtime = Arc::new(Runtime::new(DEFAULT_STACK_BYTES, None)?);
    // Vectors never quarantine: each failure is reported on its own.
    let settings = PolicySettings { quarantine_after: u32::MAX, ..PolicySettings::default() };
    admit(&runtime, bundle, &settings, None)?;
    Ok(bundle.manifest.tests.len())
}

/// What a bundle is verified against before anything else, when the host
/// has a trust policy.
pub(crate) struct TrustCheck<'a> {
    pub(crate) policy: &'a TrustPolicy,
    /// The version of the same policy serving now, which nothing older replaces.
    pub(crate) serving: Option<&'a str>,
}

/// Verifies `bundle` (with a trust policy, before its module is even
/// compiled), compiles and checks it, then runs its own vectors against it.
pub(crate) fn admit(
    runtime: &Arc<Runtime>,
    bundle: &Bundle,
    settings: &PolicySettings,
    trust: Option<TrustCheck<'_>>,
) -> Result<Arc<CompiledPolicy>, Error> {
    let signers = match trust {
        Some(check) => check
            .policy
            .verify(bundle, check.serving)
            .map_err(|source| Error::Untrusted { origin: bundle.origin.clone(), source })?,
        None => Vec::new(),
    };
    let policy = CompiledPolicy::load(runtime, bundle, settings, signers)?;
    check_policy(&policy, &bundle.manifest.tests)?;
    Ok(Arc::new(policy))
}

/// Checks a compiled policy against `tests`.
fn check_policy(policy: &CompiledPolicy, tests: &[TestVector]) -> Result<usize, Error> {
    let failures: Vec<VectorFailure> = tests
        .iter()
        .filter_map(|vector| {
            let problem = check_one(policy, vector).err()?;
            Some(VectorFailure { vector: vector.name.clone(), problem })
        })
        .collect();
    if failures.is_empty() {
        Ok(tests.len())
    } else {
        Err(Error::VectorsFailed { policy: policy.info.name.clone(), failures })
    }
}

fn check_one(policy: &CompiledPolicy, vector: &TestVector) -> Result<(), VectorProblem> {
    let records = EncodedRecords::new(std::slice::from_ref(&vector.record));
    let answer = policy.answer_each(&records, &[0]).remove(0).map_err(VectorProblem::Fault)?;
    let in_scope = policy.scope.covers(&Facts::of(&vector.record));
    if !in_scope && answer.effect() != Effect::NotApplicable {
        return Err(VectorProblem::OutsideScope { effect: answer.effect() });
    }
    vector.expected().check(Expected::of_answer(&answer, |rule| policy.info.rule_name(rule)))
}
