//! `purpose-minimisation` (Cyberspace Administration; PIPL Art. 6, 19).
//!
//! Each purpose may use only the categories of the purpose table, and keep
//! them no longer than its maximum retention. The table is configuration:
//! every purpose must have an entry, so a missing one is an error at load,
//! not a silent deny. `non_personal` is always allowed.

use flowgate_sdk::{
    Action, Answer, Categories, Category, FlowView, Obligation, Policy, Purpose, Rule, StringFields, rules,
};
use std::collections::BTreeMap;

rules! {
    EXCESS_CATEGORIES = "excess-categories", "PIPL Art. 6",
        "the flow carries categories its purpose does not need";
    RETENTION_CAP = "retention-cap", "PIPL Art. 19",
        "data is kept no longer than its purpose needs";
}

/// Configuration: the purpose table.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, try_from = "PurposeTable")]
pub struct PurposeMinimisationPolicy {
    limits: [PurposeLimits; Purpose::ALL.len()],
}

/// What one purpose may use.
#[derive(Debug, Clone, Copy)]
struct PurposeLimits {
    categories: Categories,
    max_retention_days: u32,
}

/// The purpose table as written in the manifest.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeTable {
    purposes: BTreeMap<Purpose, PurposeEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeEntry {
    categories: Vec<Category>,
    max_retention_days: u32,
}

impl TryFrom<PurposeTable> for PurposeMinimisationPolicy {
    type Error = String;

    fn try_from(table: PurposeTable) -> Result<Self, String> {
        let mut limits =
            [PurposeLimits { categories: Categories::default(), max_retention_days: 0 }; Purpose::ALL.len()];
        for purpose in Purpose::ALL {
            let entry =
                table.purposes.get(purpose).ok_or_else(|| format!("the purpose table has no entry for `{purpose}`"))?;
            let mut categories: Categories = entry.categories.iter().copied().collect();
            categories.insert(Category::NonPersonal);
            limits[usize::from(purpose.code())] =
                PurposeLimits { categories, max_retention_days: entry.max_retention_days };
        }
        Ok(PurposeMinimisationPolicy { limits })
    }
}

impl Policy for PurposeMinimisationPolicy {
    const RULES: &'static [Rule] = RULES;
    // Decides on words and numbers only: the host hands it no strings.
    const READS: StringFields = StringFields::NONE;

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        let in_scope = matches!(flow.action(), Action::Collect | Action::Use | Action::Retain | Action::Share);
        if !flow.is_personal() || !in_scope {
            return Answer::not_applicable();
        }
        let limits = self.limits[usize::from(flow.purpose().code())];
        let mut answer = Answer::applies();
        if !flow.data().categories().difference(limits.categories).is_empty() {
            answer.deny(EXCESS_CATEGORIES, &[]);
        }
        if flow.retention_days() > limits.max_retention_days {
            let days = limits.max_retention_days;
            answer.oblige(RETENTION_CAP, Obligation::LimitRetention { days });
        }
        answer
    }
}

flowgate_sdk::export_policy!(PurposeMinimisationPolicy);
