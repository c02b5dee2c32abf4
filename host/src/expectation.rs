//! What a test vector expects of one policy's own answer, and how an answer
//! can fall short of it.
//!
//! This is the one comparison of vectors: the host uses it on a bundle's
//! Wasm build (at every load and in `flowgate test`), and tests use it on
//! the native build of the same policy crate, so the two cannot drift.

use std::fmt;

use flowgate_sdk::{Answer, Effect, Obligation, ObligationSet, Remedy, RemedySet, RuleId};

use crate::fault::Fault;

/// A policy's answer as a vector states it: effect, obligations, remedies,
/// and the names of the rules that fired, in rule table order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The effect.
    pub effect: Effect,
    /// The obligations, one per kind, sorted by kind.
    pub obligations: Vec<Obligation>,
    /// The remedies, sorted, without repeats.
    pub remedies: Vec<Remedy>,
    /// The names of the rules that fired, in rule table order.
    pub rules: Vec<String>,
}

impl Expected {
    /// What `answer` amounts to; `rule_name` names each fired rule (a rule
    /// it cannot name is left out, and so makes a mismatch).
    pub fn of_answer<'a>(answer: &Answer, rule_name: impl Fn(RuleId) -> Option<&'a str>) -> Expected {
        Expected {
            effect: answer.effect(),
            obligations: answer.obligations().iter().collect(),
            remedies: answer.remedies().iter().collect(),
            rules: answer.fired().filter_map(rule_name).map(str::to_owned).collect(),
        }
    }

    /// Compares `got` with this expectation. Obligations and remedies are
    /// sets, so the order a vector lists them in does not matter.
    pub fn check(&self, got: Expected) -> Result<(), VectorProblem> {
        let obligations: ObligationSet = self.obligations.iter().copied().collect();
        let remedies: RemedySet = self.remedies.iter().copied().collect();
        let same = self.effect == got.effect
            && obligations.iter().eq(got.obligations.iter().copied())
            && remedies.iter().eq(got.remedies.iter().copied())
            && self.rules == got.rules;
        if same { Ok(()) } else { Err(VectorProblem::Mismatch { expected: self.clone(), got }) }
    }
}

/// One test vector that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorFailure {
    /// The vector's name.
    pub vector: String,
    /// What went wrong.
    pub problem: VectorProblem,
}

/// Why a vector failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VectorProblem {
    /// The policy faulted instead of answering.
    Fault(Fault),
    /// The record is outside the manifest's `[applies_to]`, so the host
    /// would never ask, yet the policy answers something other than
    /// `not_applicable`: the scope promises what the policy does not keep.
    OutsideScope {
        /// What the policy answered.
        effect: Effect,
    },
    /// The answer differs from the expectation.
    Mismatch {
        /// What the vector expects.
        expected: Expected,
        /// What the policy answered.
        got: Expected,
    },
}

impl fmt::Display for VectorFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.vector, self.problem)
    }
}

impl fmt::Display for VectorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VectorProblem::Fault(fault) => write!(f, "the policy {fault}"),
            VectorProblem::OutsideScope { effect } => {
                write!(f, "the record is outside the manifest's [applies_to], but the policy answers {effect}")
            }
            VectorProblem::Mismatch { expected, got } => write!(
                f,
                "expected {} {:?} {:?} rules {:?}, got {} {:?} {:?} rules {:?}",
                expected.effect,
                expected.obligations,
                expected.remedies,
                expected.rules,
                got.effect,
                got.obligations,
                got.remedies,
                got.rules
            ),
        }
    }
}
