//! `automated-decisions` (market regulator; PIPL Art. 24, 55).
//!
//! No price discrimination by personal traits; automated decisions with a
//! major impact need an impact assessment; personalised marketing must offer
//! a non-personalised option. Which purposes count as major-impact and which
//! need the opt-out are configuration.

use flowgate_sdk::{Action, Answer, FlowView, Obligation, Policy, Purpose, Remedy, Rule, StringFields, rules};

rules! {
    PRICE_DISCRIMINATION = "price-discrimination", "PIPL Art. 24(1)",
        "prices may not differ by personal traits";
    MAJOR_IMPACT_ASSESSMENT = "major-impact-assessment", "PIPL Art. 24(3), 55(2)",
        "an automated decision with a major impact needs an impact assessment";
    OPT_OUT = "opt-out", "PIPL Art. 24(2)",
        "personalised marketing offers an option not based on personal traits";
}

/// Configuration: which purposes the rules concern.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomatedDecisionsPolicy {
    /// Purposes whose automated decisions have a major impact (`credit_assessment`, `pricing`).
    pub major_impact_purposes: Vec<Purpose>,
    /// Purposes whose automated use needs an opt-out (`marketing`, `personalised_ads`).
    pub opt_out_purposes: Vec<Purpose>,
    /// Purposes that bring a flow in scope by themselves (`pricing`, `personalised_ads`).
    pub scope_purposes: Vec<Purpose>,
}

impl Policy for AutomatedDecisionsPolicy {
    const RULES: &'static [Rule] = RULES;
    // Decides on words and numbers only: the host hands it no strings.
    const READS: StringFields = StringFields::NONE;

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        let in_scope =
            flow.automated_decision() || flow.price_differentiated() || self.scope_purposes.contains(&flow.purpose());
        if !flow.is_personal() || flow.action() == Action::Delete || !in_scope {
            return Answer::not_applicable();
        }
        let mut answer = Answer::applies();
        if flow.price_differentiated() {
            answer.deny(PRICE_DISCRIMINATION, &[]);
        }
        if flow.automated_decision()
            && self.major_impact_purposes.contains(&flow.purpose())
            && !flow.impact_assessment()
        {
            answer.deny(MAJOR_IMPACT_ASSESSMENT, &[Remedy::ConductImpactAssessment]);
        }
        if flow.automated_decision() && self.opt_out_purposes.contains(&flow.purpose()) {
            answer.oblige(OPT_OUT, Obligation::OfferNonPersonalisedOption);
        }
        answer
    }
}

flowgate_sdk::export_policy!(AutomatedDecisionsPolicy);
