//! `sensitive-consent` (Cyberspace Administration; PIPL Art. 28-31, 55; GDPR Art. 9).
//!
//! Sensitive personal information needs separate (for a child, guardian)
//! consent when consent is the basis, notice, and an impact assessment. An
//! allowed flow must be encrypted in transit (rule `encrypt-in-transit`).

use flowgate_sdk::{
    Action, Answer, Category, ConsentKind, FlowView, LawfulBasis, Obligation, Policy, Remedy, Rule, StringFields, rules,
};

rules! {
    GUARDIAN_CONSENT = "guardian-consent", "PIPL Art. 31",
        "data of a child under 14 needs the guardian's consent";
    SEPARATE_CONSENT = "separate-consent", "PIPL Art. 29; GDPR Art. 9(2)(a)",
        "sensitive personal information needs separate consent";
    NOTICE = "notice", "PIPL Art. 30",
        "the individual must be told why sensitive data is needed and how it affects them";
    IMPACT_ASSESSMENT = "impact-assessment", "PIPL Art. 55",
        "processing sensitive personal information needs an impact assessment";
    ENCRYPT_IN_TRANSIT = "encrypt-in-transit", "PIPL Art. 28, 51",
        "sensitive personal information is encrypted in transit";
}

/// The policy; it takes no configuration (sensitivity is derived by the SDK).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitiveConsentPolicy {}

impl Policy for SensitiveConsentPolicy {
    const RULES: &'static [Rule] = RULES;
    // Decides on words and numbers only: the host hands it no strings.
    const READS: StringFields = StringFields::NONE;

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        if !flow.is_sensitive() || flow.action() == Action::Delete {
            return Answer::not_applicable();
        }
        let mut answer = Answer::applies();
        let by_consent = flow.lawful_basis() == LawfulBasis::Consent;
        if by_consent
            && flow.data().categories().contains(Category::Minor)
            && flow.consent().kind() != ConsentKind::Guardian
        {
            answer.deny(GUARDIAN_CONSENT, &[Remedy::ObtainGuardianConsent]);
        }
        if by_consent && !flow.consent().is_separate() {
            answer.deny(SEPARATE_CONSENT, &[Remedy::ObtainSeparateConsent]);
        }
        if !flow.notice_given() {
            answer.deny(NOTICE, &[Remedy::GiveNotice]);
        }
        if !flow.impact_assessment() {
            answer.deny(IMPACT_ASSESSMENT, &[Remedy::ConductImpactAssessment]);
        }
        if !answer.is_denied() {
            answer.oblige(ENCRYPT_IN_TRANSIT, Obligation::EncryptInTransit);
        }
        answer
    }
}

flowgate_sdk::export_policy!(SensitiveConsentPolicy);
