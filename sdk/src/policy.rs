//! What a policy is: its configuration, its rules, and one function.

use serde::de::DeserializeOwned;

use crate::answer::{Answer, Rule};
use crate::record::FlowRecord;
use crate::schema::StringFields;
use crate::view::FlowView;

/// A data-handling policy.
///
/// The implementing type *is* the policy's configuration: the host hands the
/// manifest's `[config]` table to the guest once, when an instance starts,
/// and it is deserialised into `Self` (an unknown or missing key is an error
/// naming it). Registries, thresholds and purpose tables belong there, not in
/// code, so a regulator changes them without recompiling.
///
/// ```
/// use flowgate_sdk::{Answer, FlowRecord, FlowView, LawfulBasis, Policy, Remedy, rules};
///
/// rules! {
///     NO_BASIS = "no-basis", "PIPL Art. 13", "the flow has no lawful basis";
/// }
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct NeedsBasis {}
///
/// impl Policy for NeedsBasis {
///     const RULES: &'static [flowgate_sdk::Rule] = RULES;
///
///     fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
///         if !flow.is_personal() {
///             return Answer::not_applicable();
///         }
///         let mut answer = Answer::applies();
///         if flow.lawful_basis() == LawfulBasis::None {
///             answer.deny(NO_BASIS, &[Remedy::ObtainConsent]);
///         }
///         answer
///     }
/// }
///
/// flowgate_sdk::export_policy!(NeedsBasis);
///
/// // Natively, ask it about an owned record as its Wasm build is asked.
/// let flow = FlowRecord::from_json(br#"{"id":"f","platform":{"id":"p"},"action":"use",
///     "data":{"categories":["contact"]},"purpose":"service"}"#).unwrap();
/// assert!(NeedsBasis {}.answer(&flow).is_denied());
/// ```
pub trait Policy: DeserializeOwned + Send + Sync + 'static {
    /// The rule table; answers name rules by their index in it.
    const RULES: &'static [Rule];

    /// The string fields [`Policy::evaluate`] reads. The host copies only
    /// these into the policy; the others reach it empty. Declaring fewer
    /// makes every call cheaper (most policies read none: they decide on
    /// words and numbers); the default, every string, is always correct.
    ///
    /// ```
    /// # use flowgate_sdk::{Answer, FlowView, Policy, StringFields};
    /// # #[derive(serde::Deserialize)] struct Registry {}
    /// impl Policy for Registry {
    ///     const RULES: &'static [flowgate_sdk::Rule] = &[];
    ///     const READS: StringFields = StringFields::RECIPIENT_ID.union(StringFields::RECIPIENT_LICENCE);
    ///     fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
    ///         # let _ = flow.recipient().licence();
    ///         Answer::not_applicable()
    ///     }
    /// }
    /// ```
    const READS: StringFields = StringFields::ALL;

    /// Answers about one flow, read through a view of the bytes the host
    /// wrote ([`FlowView`]). Must be a pure function of the flow and the
    /// configuration: the host may evaluate records in any instance, in any order.
    fn evaluate(&self, flow: &FlowView<'_>) -> Answer;

    /// Answers about an owned record exactly as the Wasm build is asked
    /// about it: encoded, with only the strings in [`Policy::READS`]. For
    /// unit tests and native runs.
    fn answer(&self, flow: &FlowRecord) -> Answer {
        FlowView::of(flow, Self::READS, |view| self.evaluate(view))
    }

    /// Builds the policy from its configuration as JSON.
    fn from_config_json(json: &str) -> Result<Self, ConfigError> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| ConfigError { field: err.path().to_string(), message: err.inner().to_string() })
    }
}

/// A policy configuration that does not fit the policy's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted path of the offending key (`.` for the whole table).
    pub field: String,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A policy behind a pointer, for code that holds several kinds at once
/// (native benchmarks, agreement tests). Every [`Policy`] is one.
pub trait DynPolicy: Send + Sync {
    /// The rule table.
    fn rules(&self) -> &'static [Rule];
    /// Answers about one flow.
    fn evaluate(&self, flow: &FlowView<'_>) -> Answer;
    /// Answers about an owned record as the Wasm build is asked ([`Policy::answer`]).
    fn answer(&self, flow: &FlowRecord) -> Answer;
}

impl<P: Policy> DynPolicy for P {
    fn rules(&self) -> &'static [Rule] {
        P::RULES
    }

    fn evaluate(&self, flow: &FlowView<'_>) -> Answer {
        Policy::evaluate(self, flow)
    }

    fn answer(&self, flow: &FlowRecord) -> Answer {
        Policy::answer(self, flow)
    }
}
