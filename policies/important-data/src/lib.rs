//! `important-data` (data security regulator; DSL Art. 21, 31; 2024 Provisions Art. 2).
//!
//! Applies to core data, and to important data the regulator has notified
//! (important data never notified counts as general). Core data stays in
//! China with the recipients of the `core_data_recipients` registry;
//! important data leaves China only after a security assessment. An allowed
//! export is logged to the regulator (rule `important-export-log`).

use flowgate_sdk::{
    Action, Answer, DslClass, ExportMechanism, FlowView, Obligation, Policy, RecipientKind, Remedy, Rule, StringFields,
    rules,
};

rules! {
    CORE_DATA = "core-data", "DSL Art. 21",
        "core data stays in China with the data handler or state bodies";
    IMPORTANT_EXPORT = "important-export", "DSL Art. 31; 2024 Provisions Art. 2",
        "important data leaves China only after a security assessment";
    IMPORTANT_EXPORT_LOG = "important-export-log", "DSL Art. 31",
        "exports of important data are logged to the regulator";
}

/// Configuration: who may receive core data inside China.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportantDataPolicy {
    /// Recipient kinds that may receive core data in China
    /// (`self`, `state_organ`, `central_bank`, `regulator_jv`).
    pub core_data_recipients: Vec<RecipientKind>,
}

impl Policy for ImportantDataPolicy {
    const RULES: &'static [Rule] = RULES;
    // Decides on words and numbers only: the host hands it no strings.
    const READS: StringFields = StringFields::NONE;

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        let class = flow.data().dsl_class();
        let in_scope = class == DslClass::Core || (class == DslClass::Important && flow.data().important_notified());
        if !in_scope || flow.action() == Action::Delete {
            return Answer::not_applicable();
        }
        let mut answer = Answer::applies();
        let leaves = flow.action() == Action::Export || flow.leaves_china();
        let stays_with_the_state = self.core_data_recipients.contains(&flow.recipient().kind()) && !flow.leaves_china();
        if class == DslClass::Core && !stays_with_the_state {
            answer.deny(CORE_DATA, &[]);
        }
        if class == DslClass::Important && leaves && flow.export_mechanism() != ExportMechanism::SecurityAssessment {
            answer.deny(IMPORTANT_EXPORT, &[Remedy::SecurityAssessmentRequired]);
        }
        if leaves && !answer.is_denied() {
            answer.oblige(IMPORTANT_EXPORT_LOG, Obligation::LogToRegulator);
        }
        answer
    }
}

flowgate_sdk::export_policy!(ImportantDataPolicy);
