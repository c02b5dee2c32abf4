//! What a test vector expects of one policy's own answer, and how an answer
//! can fall short of it.
//!
//! This is the one comparison of vectors: the host uses it on a bundle's
//! Wasm build (at every load and in `flowgate test`), and tests use it on
//! the native build of the same policy crate, so the two cannot drift.

use std::fmt;

use flowgate_sdk::{Answer, Effect, Obligation, ObligationSet, Remedy, RemedySet, RuleId};

use super::fault::Fault;

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
    /// sets, so the order a vector lists them in does not matter. A
    /// mismatch carries no hints; the caller, who knows the policy's rule
    /// table and scope, adds them ([`Expected::hints`]).
    pub fn check(&self, got: Expected) -> Result<(), VectorProblem> {
        let obligations: ObligationSet = self.obligations.iter().copied().collect();
        let remedies: RemedySet = self.remedies.iter().copied().collect();
        let same = self.effect == got.effect
            && obligations.iter().eq(got.obligations.iter().copied())
            && remedies.iter().eq(got.remedies.iter().copied())
            && self.rules == got.rules;
        if same {
            Ok(())
        } else {
            Err(VectorProblem::Mismatch { expected: Box::new(self.clone()), got: Box::new(got), hints: Vec::new() })
        }
    }

    /// What is known about why `got` differs from this expectation, for a
    /// policy declaring `declared` rules (in rule table order); `in_scope`
    /// says whether the record is inside the manifest's `[applies_to]`.
    pub fn hints(&self, got: &Expected, declared: &[&str], in_scope: bool) -> Vec<Hint> {
        let mut hints: Vec<Hint> = self
            .rules
            .iter()
            .filter(|rule| !declared.contains(&rule.as_str()))
            .map(|rule| Hint::UndeclaredRule {
                rule: rule.clone(),
                declared: declared.iter().map(|name| (*name).to_owned()).collect(),
            })
            .collect();
        if !in_scope && self.effect != Effect::NotApplicable {
            hints.push(Hint::ScopeSkips);
        }
        let mut expected_sorted = self.rules.clone();
        let mut got_sorted = got.rules.clone();
        expected_sorted.sort();
        got_sorted.sort();
        if self.rules != got.rules && expected_sorted == got_sorted {
            hints.push(Hint::RuleOrder { table_order: got.rules.clone() });
        }
        hints
    }
}

/// A known cause of a mismatch, told beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// The vector expects a rule the policy's rule table does not declare,
    /// so it can never fire (a typo, or a rule not yet written).
    UndeclaredRule {
        /// The rule the vector names.
        rule: String,
        /// The rules the policy declares, in rule table order.
        declared: Vec<String>,
    },
    /// The record is outside the manifest's `[applies_to]`: the host never
    /// calls the policy for it, so the vector must expect `not_applicable`.
    ScopeSkips,
    /// The same rules fired, but the vector lists them in another order;
    /// `rules` are listed in rule table order.
    RuleOrder {
        /// The fired rules, in rule table order.
        table_order: Vec<String>,
    },
}

/// One test vector that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorFailure {
    /// The vector's name.
    pub vector: String,
    /// The manifest line where the vector's `[[test]]` starts (0 when unknown).
    pub line: usize,
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
        expected: Box<Expected>,
        /// What the policy answered.
        got: Box<Expected>,
        /// Known causes, where the difference has one.
        hints: Vec<Hint>,
    },
}

impl fmt::Display for VectorFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "`{}`: {}", self.vector, self.problem)
        } else {
            write!(f, "`{}` (manifest line {}): {}", self.vector, self.line, self.problem)
        }
    }
}

/// A list as the manifest writes it: `["a", "b"]`.
fn words<T>(items: &[T], word: impl Fn(&T) -> String) -> String {
    format!("[{}]", items.iter().map(word).collect::<Vec<_>>().join(", "))
}

/// An obligation as the manifest writes it: `{ kind = "limit_retention", days = 180 }`.
fn obligation_word(obligation: &Obligation) -> String {
    match obligation {
        Obligation::Aggregate { k } => format!("{{ kind = \"{}\", k = {k} }}", obligation.kind()),
        Obligation::LimitRetention { days } => format!("{{ kind = \"{}\", days = {days} }}", obligation.kind()),
        other => format!("{{ kind = \"{}\" }}", other.kind()),
    }
}

impl fmt::Display for VectorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VectorProblem::Fault(fault) => write!(f, "the policy {fault}"),
            VectorProblem::OutsideScope { effect } => write!(
                f,
                "the record is outside the manifest's [applies_to], but the policy answers {effect}; \
                 the host would never ask it, so widen [applies_to] or expect `not_applicable`"
            ),
            VectorProblem::Mismatch { expected, got, hints } => {
                f.write_str("the policy's answer differs from the vector")?;
                if expected.effect == got.effect {
                    write!(f, "\n    effect       {} (as expected)", got.effect)?;
                } else {
                    write!(f, "\n    effect       expected `{}`, got `{}`", expected.effect, got.effect)?;
                }
                let expected_obligations: ObligationSet = expected.obligations.iter().copied().collect();
                if !expected_obligations.iter().eq(got.obligations.iter().copied()) {
                    write!(
                        f,
                        "\n    obligations  expected {}, got {}",
                        words(&expected.obligations, obligation_word),
                        words(&got.obligations, obligation_word)
                    )?;
                }
                let expected_remedies: RemedySet = expected.remedies.iter().copied().collect();
                if !expected_remedies.iter().eq(got.remedies.iter().copied()) {
                    let remedy = |r: &Remedy| format!("\"{r}\"");
                    write!(
                        f,
                        "\n    remedies     expected {}, got {}",
                        words(&expected.remedies, remedy),
                        words(&got.remedies, remedy)
                    )?;
                }
                if expected.rules != got.rules {
                    let rule = |r: &String| format!("\"{r}\"");
                    write!(
                        f,
                        "\n    rules        expected {}, got {}",
                        words(&expected.rules, rule),
                        words(&got.rules, rule)
                    )?;
                }
                for hint in hints {
                    write!(f, "\n    hint: {hint}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::UndeclaredRule { rule, declared } => write!(
                f,
                "rule `{rule}` is not declared in the policy's `rules!` table, so it can never fire (declared: {})",
                words(declared, |r| format!("\"{r}\""))
            ),
            Hint::ScopeSkips => f.write_str(
                "the record is outside the manifest's [applies_to], so the host never calls the policy for it; \
                 widen [applies_to] or expect `not_applicable`",
            ),
            Hint::RuleOrder { table_order } => write!(
                f,
                "the same rules fired in another order; list them in rule table order: rules = {}",
                words(table_order, |r| format!("\"{r}\""))
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(effect: Effect, obligations: &[Obligation], remedies: &[Remedy], rules: &[&str]) -> Expected {
        Expected {
            effect,
            obligations: obligations.to_vec(),
            remedies: remedies.to_vec(),
            rules: rules.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn sets_match_in_any_order_and_rules_only_in_table_order() {
        let want = expected(Effect::Deny, &[], &[Remedy::GiveNotice, Remedy::Aggregate], &["a", "b"]);
        assert_eq!(
            want.check(expected(Effect::Deny, &[], &[Remedy::Aggregate, Remedy::GiveNotice], &["a", "b"])),
            Ok(())
        );
        assert!(
            want.check(expected(Effect::Deny, &[], &[Remedy::Aggregate, Remedy::GiveNotice], &["b", "a"])).is_err()
        );
    }

    #[test]
    fn mismatches_are_told_in_the_manifests_words_and_only_the_parts_that_differ() {
        let want = expected(Effect::AllowWithObligations, &[Obligation::LimitRetention { days: 180 }], &[], &["cap"]);
        let got = expected(
            Effect::AllowWithObligations,
            &[Obligation::LimitRetention { days: 365 }, Obligation::LogToRegulator],
            &[],
            &["cap"],
        );
        let problem = want.check(got).unwrap_err();
        assert_eq!(
            problem.to_string(),
            "the policy's answer differs from the vector\n    \
             effect       allow_with_obligations (as expected)\n    \
             obligations  expected [{ kind = \"limit_retention\", days = 180 }], \
             got [{ kind = \"limit_retention\", days = 365 }, { kind = \"log_to_regulator\" }]"
        );
    }

    #[test]
    fn hints_name_undeclared_rules_scope_and_order() {
        let declared = ["a", "b"];
        let want = expected(Effect::Deny, &[], &[], &["b", "a"]);
        let got = expected(Effect::Deny, &[], &[], &["a", "b"]);
        assert_eq!(want.hints(&got, &declared, true), [Hint::RuleOrder { table_order: vec!["a".into(), "b".into()] }]);

        let want = expected(Effect::Deny, &[], &[], &["c"]);
        let got = expected(Effect::NotApplicable, &[], &[], &[]);
        let hints = want.hints(&got, &declared, false);
        assert_eq!(hints.len(), 2, "{hints:?}");
        assert!(matches!(&hints[0], Hint::UndeclaredRule { rule, .. } if rule == "c"));
        assert_eq!(hints[1], Hint::ScopeSkips);
        assert!(hints[0].to_string().contains(r#"(declared: ["a", "b"])"#), "{}", hints[0]);

        let want = expected(Effect::NotApplicable, &[], &[], &[]);
        assert!(want.hints(&got, &declared, false).is_empty(), "expecting not_applicable outside the scope is right");
    }
}
