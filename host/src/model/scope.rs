//! What a policy declares it applies to, so the host skips it elsewhere.
//!
//! A manifest may say, in `[applies_to]`, which actions, data categories,
//! recipients, regimes and data classes its policy concerns, and whether only personal
//! data, only sensitive data, or only flows leaving China. Outside that scope the host answers
//! `not_applicable` for the policy without calling it: a policy that cannot
//! apply costs a few bit operations. The declaration is a promise; the
//! bundle's own test vectors hold it to it (a vector outside the scope must
//! expect `not_applicable`, and the module must answer so).
//!
//! ```toml
//! [applies_to]
//! actions = ["share", "entrust", "disclose"]
//! categories = ["minor"]      # any of: the record carries at least one
//! recipients = ["central_bank"]
//! personal = true
//! ```

use serde::Deserialize;

use flowgate_sdk::{Action, Category, DslClass, FlowRecord, RecipientKind, Regime};

/// The `[applies_to]` table: an empty list means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    /// Actions the policy concerns.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Data categories the policy concerns: a record carrying any one of
    /// them is in scope (`["minor"]` for a policy on children's data).
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Recipient kinds the policy concerns.
    #[serde(default)]
    pub recipients: Vec<RecipientKind>,
    /// Regimes the policy concerns.
    #[serde(default)]
    pub regimes: Vec<Regime>,
    /// Data Security Law classes the policy concerns.
    #[serde(default)]
    pub dsl_classes: Vec<DslClass>,
    /// Only personal data.
    #[serde(default)]
    pub personal: bool,
    /// Only sensitive personal data.
    #[serde(default)]
    pub sensitive: bool,
    /// Only flows that leave China: action `export`, or a destination other than `CN`.
    #[serde(default)]
    pub cross_border: bool,
}

/// The facts about a record that scopes test, computed once per record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts {
    action: u32,
    categories: u32,
    recipient: u32,
    regime: u32,
    dsl_class: u32,
    personal: bool,
    sensitive: bool,
    cross_border: bool,
}

impl Facts {
    /// The record's action, as a one-bit set.
    pub(crate) fn action_bit(&self) -> u32 {
        self.action
    }

    pub(crate) fn of(flow: &FlowRecord) -> Facts {
        Facts {
            action: 1 << flow.action.code(),
            categories: u32::from(flow.data.categories.bits()),
            recipient: 1 << flow.recipient.kind.code(),
            regime: 1 << flow.regime.code(),
            dsl_class: 1 << flow.data.dsl_class.code(),
            personal: flow.is_personal(),
            sensitive: flow.is_sensitive(),
            cross_border: flow.action == Action::Export || flow.leaves_china(),
        }
    }
}

/// A compiled `[applies_to]`: one bit set per list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    actions: u32,
    categories: u32,
    recipients: u32,
    regimes: u32,
    dsl_classes: u32,
    personal: bool,
    sensitive: bool,
    cross_border: bool,
}

impl Scope {
    pub(crate) fn new(applies_to: &AppliesTo) -> Scope {
        fn mask(codes: impl Iterator<Item = u8>) -> u32 {
            let bits = codes.fold(0, |bits, code| bits | 1 << code);
            if bits == 0 { u32::MAX } else { bits }
        }
        Scope {
            actions: mask(applies_to.actions.iter().map(|a| a.code())),
            categories: mask(applies_to.categories.iter().map(|c| c.code())),
            recipients: mask(applies_to.recipients.iter().map(|r| r.code())),
            regimes: mask(applies_to.regimes.iter().map(|r| r.code())),
            dsl_classes: mask(applies_to.dsl_classes.iter().map(|c| c.code())),
            personal: applies_to.personal,
            sensitive: applies_to.sensitive,
            cross_border: applies_to.cross_border,
        }
    }

    /// Whether the policy may apply to a record of `action`.
    pub(crate) fn admits(&self, action: Action) -> bool {
        self.actions & 1 << action.code() != 0
    }

    /// Whether the policy may apply to a record with these facts.
    pub(crate) fn covers(&self, facts: &Facts) -> bool {
        facts.action & self.actions != 0
            && facts.categories & self.categories != 0
            && facts.recipient & self.recipients != 0
            && facts.regime & self.regimes != 0
            && facts.dsl_class & self.dsl_classes != 0
            && (facts.personal || !self.personal)
            && (facts.sensitive || !self.sensitive)
            && (facts.cross_border || !self.cross_border)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(fields: &str) -> Facts {
        let json = format!(r#"{{"id":"f","platform":{{"id":"p"}},"purpose":"service",{fields}}}"#);
        Facts::of(&FlowRecord::from_json(json.as_bytes()).unwrap())
    }

    fn scope(toml: &str) -> Scope {
        Scope::new(&toml::from_str(toml).unwrap())
    }

    const CONTACT: &str = r#""data":{"categories":["contact"]}"#;

    #[test]
    fn an_empty_scope_covers_everything() {
        let everything = scope("");
        assert!(everything.covers(&flow(&format!(r#""action":"use",{CONTACT}"#))));
        assert!(everything.covers(&flow(r#""action":"export","data":{"categories":["non_personal"]}"#)));
    }

    #[test]
    fn lists_cover_any_of_their_words() {
        let sharing = scope(r#"actions = ["share", "entrust"]"#);
        assert!(sharing.covers(&flow(&format!(r#""action":"share",{CONTACT}"#))));
        assert!(sharing.covers(&flow(&format!(r#""action":"entrust",{CONTACT}"#))));
        assert!(!sharing.covers(&flow(&format!(r#""action":"use",{CONTACT}"#))));

        let bank = scope(
            r#"actions = ["share"]
recipients = ["central_bank"]"#,
        );
        let to = |kind: &str| flow(&format!(r#""action":"share",{CONTACT},"recipient":{{"kind":"{kind}"}}"#));
        assert!(bank.covers(&to("central_bank")), "every list must match");
        assert!(!bank.covers(&to("financial_institution")));
    }

    #[test]
    fn categories_cover_a_record_carrying_any_of_them() {
        let minors = scope(r#"categories = ["minor", "health"]"#);
        let carrying = |categories: &str| flow(&format!(r#""action":"use","data":{{"categories":[{categories}]}}"#));
        assert!(minors.covers(&carrying(r#""minor""#)));
        assert!(minors.covers(&carrying(r#""contact","minor""#)), "one of several is enough");
        assert!(minors.covers(&carrying(r#""health""#)));
        assert!(!minors.covers(&carrying(r#""contact","location""#)));
        assert!(scope("").covers(&carrying(r#""contact""#)), "no list means any category");
    }

    #[test]
    fn flags_narrow_to_personal_sensitive_or_cross_border_flows() {
        let personal = scope("personal = true");
        assert!(personal.covers(&flow(&format!(r#""action":"use",{CONTACT}"#))));
        assert!(!personal.covers(&flow(r#""action":"use","data":{"categories":["non_personal"]}"#)));
        assert!(
            !personal
                .covers(&flow(r#""action":"use","data":{"categories":["contact"],"deidentification":"anonymised"}"#))
        );

        let sensitive = scope("sensitive = true");
        assert!(sensitive.covers(&flow(r#""action":"use","data":{"categories":["biometric"]}"#)));
        assert!(!sensitive.covers(&flow(&format!(r#""action":"use",{CONTACT}"#))));

        let abroad = scope("cross_border = true");
        assert!(abroad.covers(&flow(&format!(r#""action":"export",{CONTACT}"#))), "export leaves China");
        assert!(abroad.covers(&flow(&format!(r#""action":"share",{CONTACT},"destination":"SG""#))));
        assert!(!abroad.covers(&flow(&format!(r#""action":"share",{CONTACT},"destination":"CN""#))));
        assert!(!abroad.covers(&flow(&format!(r#""action":"share",{CONTACT}"#))), "CN is the default");
    }
}
