//! The ten reference policy crates as one Extism plugin: one export per
//! policy, each taking the record as JSON and returning the policy's answer
//! as JSON, the way an Extism user would wire them. Each policy reads its
//! configuration (the manifest's `[config]` as JSON) from the plugin
//! config key of its name, once.

use std::sync::OnceLock;

use extism_pdk::{FnResult, Json, config, plugin_fn};
use flowgate_sdk::{Answer, Effect, FlowRecord, Obligation, Policy, Remedy};
use serde::Serialize;

/// A policy's answer in JSON: the effect, obligations, remedies, and the
/// rules that fired as a bit set over its rule table.
#[derive(Serialize)]
pub struct AnswerJson {
    effect: Effect,
    obligations: Vec<Obligation>,
    remedies: Vec<Remedy>,
    fired: u64,
}

impl From<Answer> for AnswerJson {
    fn from(answer: Answer) -> AnswerJson {
        AnswerJson {
            effect: answer.effect(),
            obligations: answer.obligations().iter().collect(),
            remedies: answer.remedies().iter().collect(),
            fired: answer.fired_bits(),
        }
    }
}

/// The policy `P`, configured from the plugin config key `name` on first use.
fn evaluate<P: Policy>(cell: &OnceLock<P>, name: &str, flow: &FlowRecord) -> FnResult<Json<AnswerJson>> {
    let policy = match cell.get() {
        Some(policy) => policy,
        None => {
            let json = config::get(name)?.unwrap_or_else(|| "{}".to_owned());
            let configured = P::from_config_json(&json).map_err(|err| extism_pdk::Error::msg(err.to_string()))?;
            cell.get_or_init(|| configured)
        }
    };
    // Policies read a view over the record's binary form: `answer` encodes
    // the parsed record and hands them that, as Flowgate's guests are handed it.
    Ok(Json(policy.answer(flow).into()))
}

macro_rules! exports {
    ($($export:ident: $policy:ty = $name:literal;)+) => {
        $(
            #[plugin_fn]
            pub fn $export(Json(flow): Json<FlowRecord>) -> FnResult<Json<AnswerJson>> {
                static POLICY: OnceLock<$policy> = OnceLock::new();
                evaluate(&POLICY, $name, &flow)
            }
        )+
    };
}

exports! {
    automated_decisions: automated_decisions::AutomatedDecisionsPolicy = "automated-decisions";
    credit_via_bureau: credit_via_bureau::CreditViaBureauPolicy = "credit-via-bureau";
    cross_border: cross_border::CrossBorderPolicy = "cross-border";
    important_data: important_data::ImportantDataPolicy = "important-data";
    lawful_basis: lawful_basis::LawfulBasisPolicy = "lawful-basis";
    purpose_minimisation: purpose_minimisation::PurposeMinimisationPolicy = "purpose-minimisation";
    regulator_jv: regulator_jv::RegulatorJvPolicy = "regulator-jv";
    sensitive_consent: sensitive_consent::SensitiveConsentPolicy = "sensitive-consent";
    statutory_credit_reporting: statutory_credit_reporting::StatutoryCreditReportingPolicy = "statutory-credit-reporting";
    third_party_provision: third_party_provision::ThirdPartyProvisionPolicy = "third-party-provision";
}
