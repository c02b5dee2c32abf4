//! `credit-via-bureau` (People's Bank of China; Credit Reporting Measures,
//! PBoC Order No. 4 [2021]; Credit Reporting Regulation Art. 14).
//!
//! Credit information reaches lenders and other outsiders only through a
//! credit bureau licensed in the `licensed_bureaus` registry, on consent in
//! force, and never with prohibited categories. An allowed flow is logged to
//! the regulator (rule `bureau-log`).

use flowgate_sdk::{
    Action, Answer, Categories, Category, ConsentState, FlowView, LawfulBasis, Obligation, Policy, Purpose,
    RecipientKind, Remedy, Rule, StringFields, rules,
};

rules! {
    NO_DIRECT_CONNECTION = "no-direct-connection", "Credit Reporting Measures (PBoC Order No. 4 [2021])",
        "credit information goes to lenders only through a licensed credit bureau";
    UNLICENSED_BUREAU = "unlicensed-bureau", "Credit Reporting Measures (PBoC Order No. 4 [2021]) Art. 5",
        "the credit bureau is not in the register of licensed bureaus";
    BUREAU_CONSENT = "bureau-consent", "Credit Reporting Regulation Art. 14",
        "credit information goes to a bureau only with the individual's consent in force";
    PROHIBITED_CATEGORIES = "prohibited-categories", "Credit Reporting Regulation Art. 14",
        "religion, biometric and health data may not be collected for credit reporting";
    BUREAU_LOG = "bureau-log", "Credit Reporting Measures (PBoC Order No. 4 [2021])",
        "provision of credit information to a bureau is logged to the regulator";
}

/// Configuration: the registry of licensed bureaus and the prohibited categories.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditViaBureauPolicy {
    /// Bureaus licensed by the People's Bank of China.
    pub licensed_bureaus: Vec<LicensedBureau>,
    /// Categories a bureau may never receive.
    #[serde(deserialize_with = "categories")]
    pub prohibited_categories: Categories,
}

/// One entry of the registry of licensed credit bureaus.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicensedBureau {
    /// The bureau's id, e.g. `baihang`.
    pub id: String,
    /// Its licence number, e.g. `PBOC-CR-2018-001`.
    pub licence: String,
}

fn categories<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Categories, D::Error> {
    let list: Vec<Category> = serde::Deserialize::deserialize(deserializer)?;
    Ok(list.into_iter().collect())
}

impl Policy for CreditViaBureauPolicy {
    const RULES: &'static [Rule] = RULES;
    // The bureau registry is matched on the recipient's id and licence.
    const READS: StringFields = StringFields::RECIPIENT_ID.union(StringFields::RECIPIENT_LICENCE);

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        let carries_credit = flow.data().credit_information() || flow.purpose() == Purpose::CreditAssessment;
        let outward = matches!(flow.action(), Action::Share | Action::Disclose | Action::Export);
        let to_outsider = matches!(
            flow.recipient().kind(),
            RecipientKind::FinancialInstitution
                | RecipientKind::ThirdParty
                | RecipientKind::Affiliate
                | RecipientKind::CreditBureau
                | RecipientKind::Overseas
                | RecipientKind::Public
        );
        if !flow.is_personal() || !outward || !carries_credit || !to_outsider {
            return Answer::not_applicable();
        }
        let mut answer = Answer::applies();
        if flow.recipient().kind() != RecipientKind::CreditBureau {
            answer.deny(NO_DIRECT_CONNECTION, &[Remedy::RouteViaCreditBureau]);
            return answer;
        }
        let (id, licence) = (flow.recipient().id(), flow.recipient().licence());
        let licensed = self.licensed_bureaus.iter().any(|bureau| bureau.id == id && bureau.licence == licence);
        if !licensed {
            answer.deny(UNLICENSED_BUREAU, &[Remedy::RouteViaCreditBureau]);
        }
        if flow.lawful_basis() != LawfulBasis::Consent || flow.consent().state() != ConsentState::Given {
            answer.deny(BUREAU_CONSENT, &[Remedy::ObtainConsent]);
        }
        if flow.data().categories().intersects(self.prohibited_categories) {
            answer.deny(PROHIBITED_CATEGORIES, &[]);
        }
        if !answer.is_denied() {
            answer.oblige(BUREAU_LOG, Obligation::LogToRegulator);
        }
        answer
    }
}

flowgate_sdk::export_policy!(CreditViaBureauPolicy);
