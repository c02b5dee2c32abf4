//! Admission: the one way a bundle becomes a serving policy, at start-up,
//! on [`Host::load`](crate::Host::load), from the watcher and in
//! `flowgate build` and `flowgate test` alike. A check added here holds
//! everywhere: compiled and checked, then run against its own test vectors.

use std::sync::Arc;

use flowgate_sdk::Effect;

use crate::bundle::{Bundle, TestVector, TrustPolicy};
use crate::model::{Expected, Facts, VectorFailure, VectorProblem};
use crate::sandbox::{DEFAULT_STACK_BYTES, EncodedRecords, Runtime};

use super::PolicySettings;
use super::compiled::CompiledPolicy;
use super::error::LoadError;

/// Compiles `bundle` on its own and checks every `[[test]]` of its manifest
/// against the policy's own answer: effect, obligations, remedies and the
/// rules that fired. Returns how many vectors passed.
///
/// A bundle that fails any vector is [`LoadError::VectorsFailed`], with each
/// failing vector and what came back instead.
#[cfg(feature = "test-util")]
pub fn check_vectors(bundle: &Bundle) -> Result<usize, LoadError> {
    let settings = vector_settings();
    let runtime = Arc::new(Runtime::new(DEFAULT_STACK_BYTES, settings.allocation(), None)?);
    admit(&runtime, bundle, &settings, None)?;
    Ok(bundle.manifest.tests.len())
}

/// Vectors never quarantine: each failure is reported on its own.
fn vector_settings() -> PolicySettings {
    PolicySettings { quarantine_after: u32::MAX, ..PolicySettings::default() }
}

/// Every vector of a bundle run against its Wasm build, passing or not,
/// and the rules no vector fired: what `flowgate test` and `flowgate build`
/// report.
#[derive(Debug, Clone)]
pub struct VectorReport {
    /// One entry per `[[test]]`, in manifest order.
    pub results: Vec<VectorResult>,
    /// The rules of the policy's rule table that no vector made fire, in rule table order.
    pub unfired: Vec<String>,
}

/// One vector's outcome.
#[derive(Debug, Clone)]
pub struct VectorResult {
    /// The vector's name.
    pub name: String,
    /// The manifest line where its `[[test]]` starts (0 when unknown).
    pub line: usize,
    /// Why it failed, or `None` if it passed.
    pub problem: Option<VectorProblem>,
}

impl VectorReport {
    /// The failing vectors.
    pub fn failures(&self) -> Vec<VectorFailure> {
        self.results
            .iter()
            .filter_map(|result| {
                let problem = result.problem.clone()?;
                Some(VectorFailure { vector: result.name.clone(), line: result.line, problem })
            })
            .collect()
    }
}

/// Compiles `bundle` and runs every vector, reporting each one (unlike
/// admission, which stops at the first error). Errors are only for
/// a bundle that cannot be loaded at all.
pub fn run_vectors(bundle: &Bundle) -> Result<VectorReport, LoadError> {
    let settings = vector_settings();
    let runtime = Arc::new(Runtime::new(DEFAULT_STACK_BYTES, settings.allocation(), None)?);
    let policy = CompiledPolicy::load(&runtime, bundle, &settings, Vec::new())?;
    let mut fired = 0u64;
    let results = bundle
        .manifest
        .tests
        .iter()
        .map(|vector| {
            let problem = check_one(&policy, vector, &mut fired).err();
            VectorResult { name: vector.name.clone(), line: vector.line, problem }
        })
        .collect();
    let unfired = policy
        .info
        .rule_names()
        .enumerate()
        .filter(|(index, _)| fired & (1 << index) == 0)
        .map(|(_, name)| name.to_owned())
        .collect();
    Ok(VectorReport { results, unfired })
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
) -> Result<Arc<CompiledPolicy>, LoadError> {
    let signers = match trust {
        Some(check) => check
            .policy
            .verify(bundle, check.serving)
            .map_err(|source| LoadError::Untrusted { origin: bundle.source().to_owned(), source })?,
        None => Vec::new(),
    };
    let policy = CompiledPolicy::load(runtime, bundle, settings, signers)?;
    check_policy(&policy, &bundle.manifest.tests)?;
    Ok(Arc::new(policy))
}

/// Checks a compiled policy against `tests`.
fn check_policy(policy: &CompiledPolicy, tests: &[TestVector]) -> Result<usize, LoadError> {
    let failures: Vec<VectorFailure> = tests
        .iter()
        .filter_map(|vector| {
            let problem = check_one(policy, vector, &mut 0).err()?;
            Some(VectorFailure { vector: vector.name.clone(), line: vector.line, problem })
        })
        .collect();
    if failures.is_empty() {
        Ok(tests.len())
    } else {
        Err(LoadError::VectorsFailed { policy: policy.info.name.clone(), failures })
    }
}

/// Checks one vector; the rules its answer fired are added to `fired`.
fn check_one(policy: &CompiledPolicy, vector: &TestVector, fired: &mut u64) -> Result<(), VectorProblem> {
    let records = EncodedRecords::new(std::slice::from_ref(&vector.record));
    let answer = policy.answer_one(&records, 0, &vector.record.platform.id).map_err(VectorProblem::Fault)?;
    *fired |= answer.fired_bits();
    let in_scope = policy.scope.covers(&Facts::of(&vector.record));
    if !in_scope && answer.effect() != Effect::NotApplicable {
        return Err(VectorProblem::OutsideScope { effect: answer.effect() });
    }
    let expected = vector.expected();
    let got = Expected::of_answer(&answer, |rule| policy.info.rule_name(rule));
    expected.check(got).map_err(|problem| match problem {
        VectorProblem::Mismatch { expected, got, .. } => {
            let declared: Vec<&str> = policy.info.rule_names().collect();
            let hints = expected.hints(&got, &declared, in_scope);
            VectorProblem::Mismatch { expected, got, hints }
        }
        other => other,
    })
}
