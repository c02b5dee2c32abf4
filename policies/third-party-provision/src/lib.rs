//! `third-party-provision` (Cyberspace Administration; PIPL Art. 14, 21, 23, 55).
//!
//! Providing personal information to another processor (`share`) or to one
//! acting on our behalf (`entrust`) needs an impact assessment; a share on
//! consent needs separate consent covering the recipient, and consent
//! covering any new purpose. An allowed share on consent obliges notifying
//! the individual (rule `notify-subject`).

use flowgate_sdk::{Action, Answer, FlowView, LawfulBasis, Obligation, Policy, Remedy, Rule, StringFields, rules};

rules! {
    PROVISION_ASSESSMENT = "provision-assessment", "PIPL Art. 55(3)",
        "providing personal information to others needs an impact assessment";
    SHARE_SEPARATE_CONSENT = "share-separate-consent", "PIPL Art. 23",
        "sharing with another processor needs separate consent that covers the recipient";
    PURPOSE_CHANGE = "purpose-change", "PIPL Art. 14, 23",
        "a new purpose needs consent that covers it";
    NOTIFY_SUBJECT = "notify-subject", "PIPL Art. 23",
        "the individual is told who receives the data and why";
}

/// The policy; it takes no configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThirdPartyProvisionPolicy {}

impl Policy for ThirdPartyProvisionPolicy {
    const RULES: &'static [Rule] = RULES;
    // Decides on words and numbers only: the host hands it no strings.
    const READS: StringFields = StringFields::NONE;

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        if !flow.is_personal() || !matches!(flow.action(), Action::Share | Action::Entrust) {
            return Answer::not_applicable();
        }
        let mut answer = Answer::applies();
        if !flow.impact_assessment() {
            answer.deny(PROVISION_ASSESSMENT, &[Remedy::ConductImpactAssessment]);
        }
        if flow.action() == Action::Share && flow.lawful_basis() == LawfulBasis::Consent {
            if !flow.consent().is_separate() || !flow.consent().covers_recipient() {
                answer.deny(SHARE_SEPARATE_CONSENT, &[Remedy::ObtainSeparateConsent]);
            }
            if flow.purpose() != flow.original_purpose() && !flow.consent().covers_purpose() {
                answer.deny(PURPOSE_CHANGE, &[Remedy::ObtainConsent]);
            }
            if !answer.is_denied() {
                answer.oblige(NOTIFY_SUBJECT, Obligation::NotifySubject);
            }
        }
        answer
    }
}

flowgate_sdk::export_policy!(ThirdPartyProvisionPolicy);
