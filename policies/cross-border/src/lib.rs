//! `cross-border` (Cyberspace Administration; PIPL Art. 38-41, 55; 2024
//! Provisions Art. 5, 7, 8).
//!
//! Personal information leaving China under PIPL needs an impact assessment,
//! separate consent when consent is the basis, and, above the thresholds of
//! the 2024 Provisions, a security assessment or a standard contract or
//! certification. Thresholds are configuration. An allowed export is logged
//! to the regulator (rule `export-log`).
//!
//! The counters are never trusted below the flow itself: `N` and `S` take the
//! larger of the year-to-date counter and this flow's own subjects.

use flowgate_sdk::{
    Action, Answer, ExportMechanism, FlowView, LawfulBasis, Obligation, Policy, RecipientKind, Regime, Remedy, Rule,
    StringFields, rules,
};

rules! {
    FOREIGN_AUTHORITY = "foreign-authority", "PIPL Art. 41",
        "personal information goes to foreign judicial or enforcement authorities only with state approval";
    EXPORT_ASSESSMENT = "export-assessment", "PIPL Art. 55(4)",
        "an export needs a personal information impact assessment";
    EXPORT_SEPARATE_CONSENT = "export-separate-consent", "PIPL Art. 39",
        "an export on consent needs separate consent";
    SECURITY_ASSESSMENT = "security-assessment", "PIPL Art. 40; 2024 Provisions Art. 7",
        "this export needs a security assessment by the Cyberspace Administration";
    STANDARD_CONTRACT = "standard-contract", "PIPL Art. 38; 2024 Provisions Art. 8",
        "this export needs a standard contract or a certification";
    EXPORT_LOG = "export-log", "PIPL Art. 38",
        "exports are logged to the regulator";
}

/// Thresholds of the 2024 Provisions, in individuals since 1 January.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossBorderPolicy {
    /// Non-sensitive subjects from which a security assessment is needed (1,000,000).
    pub security_assessment_subjects: u64,
    /// Sensitive subjects from which a security assessment is needed (10,000).
    pub security_assessment_sensitive_subjects: u64,
    /// Non-sensitive subjects from which a standard contract is needed (100,000).
    pub standard_contract_subjects: u64,
}

impl Policy for CrossBorderPolicy {
    const RULES: &'static [Rule] = RULES;
    // Decides on words and numbers only: the host hands it no strings.
    const READS: StringFields = StringFields::NONE;

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        let leaves = flow.action() == Action::Export || flow.leaves_china();
        if !flow.is_personal() || flow.regime() != Regime::Pipl || flow.action() == Action::Delete || !leaves {
            return Answer::not_applicable();
        }
        let mut answer = Answer::applies();
        if flow.recipient().kind() == RecipientKind::ForeignAuthority {
            answer.deny(FOREIGN_AUTHORITY, &[]);
        }
        if !flow.impact_assessment() {
            answer.deny(EXPORT_ASSESSMENT, &[Remedy::ConductImpactAssessment]);
        }
        if flow.lawful_basis() == LawfulBasis::Consent && !flow.consent().is_separate() {
            answer.deny(EXPORT_SEPARATE_CONSENT, &[Remedy::ObtainSeparateConsent]);
        }
        if !flow.export_mechanism().is_exempt() {
            self.check_thresholds(flow, &mut answer);
        }
        if !answer.is_denied() {
            answer.oblige(EXPORT_LOG, Obligation::LogToRegulator);
        }
        answer
    }
}

impl CrossBorderPolicy {
    fn check_thresholds(&self, flow: &FlowView<'_>, answer: &mut Answer) {
        let sensitive = flow.is_sensitive();
        let this_flow = |counts: bool| if counts { flow.volume().subjects() } else { 0 };
        let n = flow.volume().ytd_export_subjects().max(this_flow(!sensitive));
        let s = flow.volume().ytd_export_sensitive_subjects().max(this_flow(sensitive));
        let mechanism = flow.export_mechanism();
        let needs_security_assessment = flow.platform().ciio()
            || n >= self.security_assessment_subjects
            || s >= self.security_assessment_sensitive_subjects;
        if needs_security_assessment {
            if mechanism != ExportMechanism::SecurityAssessment {
                answer.deny(SECURITY_ASSESSMENT, &[Remedy::SecurityAssessmentRequired]);
            }
        } else if (n >= self.standard_contract_subjects || s > 0)
            && !matches!(
                mechanism,
                ExportMechanism::StandardContract
                    | ExportMechanism::Certification
                    | ExportMechanism::SecurityAssessment
            )
        {
            answer.deny(STANDARD_CONTRACT, &[Remedy::StandardContractOrCertificationRequired]);
        }
    }
}

flowgate_sdk::export_policy!(CrossBorderPolicy);
