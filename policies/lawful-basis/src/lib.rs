//! `lawful-basis` (Cyberspace Administration; PIPL Art. 13, 15, 47; GDPR Art. 6, 7).
//!
//! Every personal flow needs a lawful basis, and consent relied on must be
//! in force. Erasure is always lawful: for `delete` only the `deletion` rule
//! runs.

use flowgate_sdk::{
    Action, Answer, ConsentState, FlowView, LawfulBasis, Policy, Regime, Remedy, Rule, StringFields, rules,
};

rules! {
    DELETION = "deletion", "PIPL Art. 47; GDPR Art. 17",
        "erasure is always lawful";
    NO_BASIS = "no-basis", "PIPL Art. 13; GDPR Art. 6",
        "the flow has no lawful basis";
    NO_LEGITIMATE_INTEREST = "no-legitimate-interest", "PIPL Art. 13",
        "PIPL has no legitimate-interest basis";
    CONSENT_NOT_IN_FORCE = "consent-not-in-force", "PIPL Art. 15; GDPR Art. 7",
        "the flow relies on consent that is not in force";
}

/// The policy; it takes no configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LawfulBasisPolicy {}

impl Policy for LawfulBasisPolicy {
    const RULES: &'static [Rule] = RULES;
    // Decides on words and numbers only: the host hands it no strings.
    const READS: StringFields = StringFields::NONE;

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        if !flow.is_personal() {
            return Answer::not_applicable();
        }
        let mut answer = Answer::applies();
        if flow.action() == Action::Delete {
            answer.fire(DELETION);
            return answer;
        }
        match flow.lawful_basis() {
            LawfulBasis::None => {
                answer.deny(NO_BASIS, &[Remedy::ObtainConsent]);
            }
            LawfulBasis::LegitimateInterest if flow.regime() == Regime::Pipl => {
                answer.deny(NO_LEGITIMATE_INTEREST, &[Remedy::ObtainConsent]);
            }
            LawfulBasis::Consent if flow.consent().state() != ConsentState::Given => {
                answer.deny(CONSENT_NOT_IN_FORCE, &[Remedy::ObtainConsent]);
            }
            _ => {}
        }
        answer
    }
}

flowgate_sdk::export_policy!(LawfulBasisPolicy);
