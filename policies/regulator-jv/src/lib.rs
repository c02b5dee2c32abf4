//! `regulator-jv` (financial regulator; PIPL Art. 6, 13(3), 51; joint venture mandate).
//!
//! What reaches the regulators' data joint venture depends on how far it is
//! de-identified: anonymised goes, aggregated goes in groups of at least
//! `min_k`, pseudonymised goes only for regulatory reporting and for at most
//! `max_retention_days`, identified does not go.

use flowgate_sdk::{
    Action, Answer, Category, Deidentification, FlowView, Obligation, Policy, Purpose, RecipientKind, Remedy, Rule,
    StringFields, rules,
};

rules! {
    ANONYMISED = "anonymised", "PIPL Art. 4, 73",
        "anonymised data is no longer personal information";
    AGGREGATE_K = "aggregate-k", "PIPL Art. 6, 51",
        "aggregated data goes in groups large enough not to single anyone out";
    PSEUDONYMISED_REPORTING = "pseudonymised-reporting", "PIPL Art. 13(3), 51",
        "pseudonymised data goes only for regulatory reporting, for a limited time";
    IDENTIFIED = "identified", "PIPL Art. 6, 51",
        "identified personal data does not go to the joint venture";
}

/// Configuration of the joint venture mandate.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegulatorJvPolicy {
    /// Smallest group size for aggregated data (50).
    pub min_k: u32,
    /// Longest retention of pseudonymised reports (365 days).
    pub max_retention_days: u32,
}

impl Policy for RegulatorJvPolicy {
    const RULES: &'static [Rule] = RULES;
    // Decides on words and numbers only: the host hands it no strings.
    const READS: StringFields = StringFields::NONE;

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        if flow.recipient().kind() != RecipientKind::RegulatorJv
            || flow.data().categories().is_only(Category::NonPersonal)
            || flow.action() == Action::Delete
        {
            return Answer::not_applicable();
        }
        let mut answer = Answer::applies();
        match flow.data().deidentification() {
            Deidentification::Anonymised => {
                answer.fire(ANONYMISED);
            }
            Deidentification::Aggregated if flow.data().k() < self.min_k => {
                answer.oblige(AGGREGATE_K, Obligation::Aggregate { k: self.min_k });
            }
            Deidentification::Aggregated => {
                answer.fire(AGGREGATE_K);
            }
            Deidentification::Pseudonymised if flow.purpose() == Purpose::RegulatoryReporting => {
                let days = self.max_retention_days;
                answer.oblige(PSEUDONYMISED_REPORTING, Obligation::LimitRetention { days });
            }
            Deidentification::Pseudonymised => {
                answer.deny(PSEUDONYMISED_REPORTING, &[Remedy::Aggregate]);
            }
            Deidentification::Identified => {
                answer.deny(IDENTIFIED, &[Remedy::Pseudonymise]);
            }
        }
        answer
    }
}

flowgate_sdk::export_policy!(RegulatorJvPolicy);
