//! The reference policies in Cedar (`cedar/reference.cedar`), as far as
//! Cedar can express them: the effect, and the deny rules that fired as the
//! annotations of the forbid policies that determined it.

use std::str::FromStr;

use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request, RestrictedExpression};
use flowgate_sdk::FlowRecord;
use serde_json::json;

/// Cedar's answer: deny or not, and the `(policy, rule)` of each forbid that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CedarDecision {
    /// Whether Cedar denies the flow.
    pub deny: bool,
    /// The deny rules that fired, as `(policy, rule)`, sorted.
    pub rules: Vec<(String, String)>,
}

/// The Cedar policy set and an authorizer.
pub struct CedarPolicies {
    policies: PolicySet,
    authorizer: Authorizer,
    entities: Entities,
    principal: EntityUid,
    action: EntityUid,
    resource: EntityUid,
}

impl CedarPolicies {
    /// Parses the policies.
    pub fn new() -> Result<CedarPolicies, String> {
        let policies = PolicySet::from_str(include_str!("../cedar/reference.cedar")).map_err(|err| err.to_string())?;
        let uid = |text: &str| EntityUid::from_str(text).map_err(|err| err.to_string());
        Ok(CedarPolicies {
            policies,
            authorizer: Authorizer::new(),
            entities: Entities::empty(),
            principal: uid(r#"Platform::"platform""#)?,
            action: uid(r#"Action::"flow""#)?,
            resource: uid(r#"Flow::"flow""#)?,
        })
    }

    /// Cedar's decision about `flow`, its context built the fastest way
    /// Cedar's API documents: `Context::from_pairs` of restricted
    /// expressions, with no JSON in between.
    pub fn decide(&self, flow: &FlowRecord) -> Result<CedarDecision, String> {
        let context = Context::from_pairs(context_pairs(flow)).map_err(|err| err.to_string())?;
        self.authorize(context)
    }

    /// Cedar's decision about `flow`, its context built from JSON
    /// (`Context::from_json_value`), as a service receiving JSON would.
    pub fn decide_from_json(&self, flow: &FlowRecord) -> Result<CedarDecision, String> {
        let context = Context::from_json_value(context(flow), None).map_err(|err| err.to_string())?;
        self.authorize(context)
    }

    fn authorize(&self, context: Context) -> Result<CedarDecision, String> {
        let request = Request::new(self.principal.clone(), self.action.clone(), self.resource.clone(), context, None)
            .map_err(|err| err.to_string())?;
        let response = self.authorizer.is_authorized(&request, &self.policies, &self.entities);
        if let Some(error) = response.diagnostics().errors().next() {
            return Err(error.to_string());
        }
        let deny = response.decision() == Decision::Deny;
        let mut rules: Vec<(String, String)> = if deny {
            response
                .diagnostics()
                .reason()
                .filter_map(|id| self.policies.policy(id))
                .map(|policy| {
                    let annotation = |key| policy.annotation(key).unwrap_or_default().to_owned();
                    (annotation("policy"), annotation("rule"))
                })
                .collect()
        } else {
            Vec::new()
        };
        rules.sort();
        Ok(CedarDecision { deny, rules })
    }
}

/// The same context as [`context`], as restricted expressions.
fn context_pairs(flow: &FlowRecord) -> Vec<(String, RestrictedExpression)> {
    let long = |n: u64| RestrictedExpression::new_long(i64::try_from(n).unwrap_or(i64::MAX));
    let text = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let flag = RestrictedExpression::new_bool;
    let categories = RestrictedExpression::new_set(flow.data.categories.iter().map(|c| text(c.as_str())));
    [
        ("regime", text(flow.regime.as_str())),
        ("ciio", flag(flow.platform.ciio)),
        ("action", text(flow.action.as_str())),
        ("categories", categories),
        ("dsl_class", text(flow.data.dsl_class.as_str())),
        ("important_notified", flag(flow.data.important_notified)),
        ("credit_information", flag(flow.data.credit_information)),
        ("deidentification", text(flow.data.deidentification.as_str())),
        ("k", long(u64::from(flow.data.k))),
        ("purpose", text(flow.purpose.as_str())),
        ("original_purpose", text(flow.original_purpose().as_str())),
        ("lawful_basis", text(flow.lawful_basis.as_str())),
        ("consent_state", text(flow.consent.state.as_str())),
        ("consent_kind", text(flow.consent.kind.as_str())),
        ("covers_purpose", flag(flow.consent.covers_purpose)),
        ("covers_recipient", flag(flow.consent.covers_recipient)),
        ("recipient_kind", text(flow.recipient.kind.as_str())),
        ("recipient_id", text(&flow.recipient.id)),
        ("recipient_licence", text(&flow.recipient.licence)),
        ("destination", text(flow.destination.as_str())),
        ("subjects", long(flow.volume.subjects)),
        ("ytd_export_subjects", long(flow.volume.ytd_export_subjects)),
        ("ytd_export_sensitive_subjects", long(flow.volume.ytd_export_sensitive_subjects)),
        ("export_mechanism", text(flow.export_mechanism.as_str())),
        ("impact_assessment", flag(flow.impact_assessment)),
        ("notice_given", flag(flow.notice_given)),
        ("retention_days", long(u64::from(flow.retention_days))),
        ("complete_report", flag(flow.report_coverage >= 1.0)),
        ("automated_decision", flag(flow.automated_decision)),
        ("price_differentiated", flag(flow.price_differentiated)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// The record as a Cedar context: flat, with sets for categories, longs for
/// counts, and the coverage as a flag (Cedar has no floating point).
fn context(flow: &FlowRecord) -> serde_json::Value {
    let long = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    json!({
        "regime": flow.regime.as_str(),
        "ciio": flow.platform.ciio,
        "action": flow.action.as_str(),
        "categories": flow.data.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "dsl_class": flow.data.dsl_class.as_str(),
        "important_notified": flow.data.important_notified,
        "credit_information": flow.data.credit_information,
        "deidentification": flow.data.deidentification.as_str(),
        "k": flow.data.k,
        "purpose": flow.purpose.as_str(),
        "original_purpose": flow.original_purpose().as_str(),
        "lawful_basis": flow.lawful_basis.as_str(),
        "consent_state": flow.consent.state.as_str(),
        "consent_kind": flow.consent.kind.as_str(),
        "covers_purpose": flow.consent.covers_purpose,
        "covers_recipient": flow.consent.covers_recipient,
        "recipient_kind": flow.recipient.kind.as_str(),
        "recipient_id": flow.recipient.id,
        "recipient_licence": flow.recipient.licence,
        "destination": flow.destination.as_str(),
        "subjects": long(flow.volume.subjects),
        "ytd_export_subjects": long(flow.volume.ytd_export_subjects),
        "ytd_export_sensitive_subjects": long(flow.volume.ytd_export_sensitive_subjects),
        "export_mechanism": flow.export_mechanism.as_str(),
        "impact_assessment": flow.impact_assessment,
        "notice_given": flow.notice_given,
        "retention_days": flow.retention_days,
        "complete_report": flow.report_coverage >= 1.0,
        "automated_decision": flow.automated_decision,
        "price_differentiated": flow.price_differentiated,
    })
}
