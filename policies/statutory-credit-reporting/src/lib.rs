//! `statutory-credit-reporting` (People's Bank of China; PIPL Art. 13(3)).
//!
//! Reporting to the central bank is a statutory duty: it is allowed, logged,
//! and flagged when it covers less than every record the law requires.

use flowgate_sdk::{Action, Answer, FlowView, Obligation, Policy, RecipientKind, Rule, StringFields, rules};

rules! {
    STATUTORY_REPORT = "statutory-report", "PIPL Art. 13(3)",
        "reporting to the central bank fulfils a statutory duty and is logged";
    INCOMPLETE_REPORT = "incomplete-report", "PIPL Art. 13(3)",
        "the report covers less than every record the law requires";
}

/// The policy; it takes no configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatutoryCreditReportingPolicy {}

impl Policy for StatutoryCreditReportingPolicy {
    const RULES: &'static [Rule] = RULES;
    // Decides on words and numbers only: the host hands it no strings.
    const READS: StringFields = StringFields::NONE;

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        let reports = matches!(flow.action(), Action::Share | Action::Entrust | Action::Disclose);
        if !flow.is_personal() || flow.recipient().kind() != RecipientKind::CentralBank || !reports {
            return Answer::not_applicable();
        }
        let mut answer = Answer::applies();
        answer.oblige(STATUTORY_REPORT, Obligation::LogToRegulator);
        if flow.report_coverage() < 1.0 {
            answer.oblige(INCOMPLETE_REPORT, Obligation::FlagIncompleteReport);
        }
        answer
    }
}

flowgate_sdk::export_policy!(StatutoryCreditReportingPolicy);
