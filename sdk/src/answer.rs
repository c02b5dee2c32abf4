//! A policy's answer about one flow, and the pieces a decision is made of.
//!
//! An [`Answer`] is built by a policy with [`Answer::applies`] and the
//! `deny`, `oblige` and `fire` methods. It is `Copy` and allocation-free: the
//! rules that fired are a bit set of indices into the policy's static rule
//! table, so the hot path moves a few integers and the host expands them into
//! reasons.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::vocabulary::{Effect, ObligationKind, Remedy};

/// What the platform must do if it goes ahead with the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Obligation {
    /// Aggregate into groups of at least `k` individuals.
    Aggregate {
        /// Smallest group size.
        k: u32,
    },
    /// Anonymise the data.
    Anonymise,
    /// Encrypt the data in transit.
    EncryptInTransit,
    /// Flag the report as incomplete.
    FlagIncompleteReport,
    /// Keep the data at most `days` days.
    LimitRetention {
        /// Longest retention.
        days: u32,
    },
    /// Log the flow to the regulator.
    LogToRegulator,
    /// Notify the individuals concerned.
    NotifySubject,
    /// Offer an option not based on personal traits.
    OfferNonPersonalisedOption,
    /// Pseudonymise the data.
    Pseudonymise,
}

impl Obligation {
    /// The kind, without the parameter.
    pub const fn kind(self) -> ObligationKind {
        match self {
            Obligation::Aggregate { .. } => ObligationKind::Aggregate,
            Obligation::Anonymise => ObligationKind::Anonymise,
            Obligation::EncryptInTransit => ObligationKind::EncryptInTransit,
            Obligation::FlagIncompleteReport => ObligationKind::FlagIncompleteReport,
            Obligation::LimitRetention { .. } => ObligationKind::LimitRetention,
            Obligation::LogToRegulator => ObligationKind::LogToRegulator,
            Obligation::NotifySubject => ObligationKind::NotifySubject,
            Obligation::OfferNonPersonalisedOption => ObligationKind::OfferNonPersonalisedOption,
            Obligation::Pseudonymise => ObligationKind::Pseudonymise,
        }
    }

    /// The parameter (`k` or `days`), 0 for kinds without one.
    pub const fn parameter(self) -> u32 {
        match self {
            Obligation::Aggregate { k } => k,
            Obligation::LimitRetention { days } => days,
            _ => 0,
        }
    }

    /// The obligation of `kind` with `parameter` (ignored for kinds without one).
    pub const fn new(kind: ObligationKind, parameter: u32) -> Obligation {
        match kind {
            ObligationKind::Aggregate => Obligation::Aggregate { k: parameter },
            ObligationKind::Anonymise => Obligation::Anonymise,
            ObligationKind::EncryptInTransit => Obligation::EncryptInTransit,
            ObligationKind::FlagIncompleteReport => Obligation::FlagIncompleteReport,
            ObligationKind::LimitRetention => Obligation::LimitRetention { days: parameter },
            ObligationKind::LogToRegulator => Obligation::LogToRegulator,
            ObligationKind::NotifySubject => Obligation::NotifySubject,
            ObligationKind::OfferNonPersonalisedOption => Obligation::OfferNonPersonalisedOption,
            ObligationKind::Pseudonymise => Obligation::Pseudonymise,
        }
    }
}

/// At most one obligation per kind, merged to the most protective parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObligationSet {
    kinds: u16,
    /// The parameters of the only two kinds that have one: kept apart so a
    /// set is 12 bytes, cheap to copy on the hot path.
    aggregate_k: u32,
    retention_days: u32,
}

impl ObligationSet {
    /// No obligations.
    pub const EMPTY: ObligationSet = ObligationSet { kinds: 0, aggregate_k: 0, retention_days: 0 };

    /// Adds an obligation; when its kind is already there, keeps the most
    /// protective parameter (the largest `aggregate` k, the smallest
    /// `limit_retention` days).
    pub fn insert(&mut self, obligation: Obligation) {
        let bit = 1 << obligation.kind().code();
        let present = self.kinds & bit != 0;
        match obligation {
            Obligation::Aggregate { k } => {
                self.aggregate_k = if present { self.aggregate_k.max(k) } else { k };
            }
            Obligation::LimitRetention { days } => {
                self.retention_days = if present { self.retention_days.min(days) } else { days };
            }
            _ => {}
        }
        self.kinds |= bit;
    }

    /// Adds every obligation of `other`, merging as [`ObligationSet::insert`] does.
    pub fn merge(&mut self, other: &ObligationSet) {
        if self.kinds == 0 {
            *self = *other;
            return;
        }
        for obligation in other.iter() {
            self.insert(obligation);
        }
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.kinds == 0
    }

    /// How many.
    pub const fn len(&self) -> usize {
        self.kinds.count_ones() as usize
    }

    /// The kinds present, as a bit set (bit `n` is the kind with code `n`).
    pub const fn kind_bits(&self) -> u16 {
        self.kinds
    }

    /// The parameter of `kind` in the set (0 for kinds without one).
    pub(crate) fn parameter(&self, kind: ObligationKind) -> u32 {
        match kind {
            ObligationKind::Aggregate => self.aggregate_k,
            ObligationKind::LimitRetention => self.retention_days,
            _ => 0,
        }
    }

    /// The obligations, sorted by kind.
    pub fn iter(&self) -> impl Iterator<Item = Obligation> + '_ {
        ObligationKind::ALL
            .iter()
            .filter(|kind| self.kinds & (1 << kind.code()) != 0)
            .map(|kind| Obligation::new(*kind, self.parameter(*kind)))
    }
}

impl FromIterator<Obligation> for ObligationSet {
    fn from_iter<I: IntoIterator<Item = Obligation>>(iter: I) -> Self {
        let mut set = ObligationSet::EMPTY;
        for obligation in iter {
            set.insert(obligation);
        }
        set
    }
}

/// A set of remedies, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemedySet(u16);

impl RemedySet {
    /// No remedies.
    pub const EMPTY: RemedySet = RemedySet(0);

    /// The raw bit set (bit `n` is the remedy with code `n`).
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// The set for raw bits, if every bit names a remedy.
    pub const fn from_bits(bits: u16) -> Option<RemedySet> {
        if bits >> Remedy::ALL.len() == 0 { Some(RemedySet(bits)) } else { None }
    }

    /// Adds a remedy.
    pub fn insert(&mut self, remedy: Remedy) {
        self.0 |= 1 << remedy.code();
    }

    /// Adds every remedy of `other`.
    pub fn merge(&mut self, other: RemedySet) {
        self.0 |= other.0;
    }

    /// Whether there are none.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The remedies, sorted and without repeats.
    pub fn iter(self) -> impl Iterator<Item = Remedy> {
        Remedy::ALL.iter().copied().filter(move |r| self.0 & (1 << r.code()) != 0)
    }
}

impl FromIterator<Remedy> for RemedySet {
    fn from_iter<I: IntoIterator<Item = Remedy>>(iter: I) -> Self {
        let mut set = RemedySet::EMPTY;
        for remedy in iter {
            set.insert(remedy);
        }
        set
    }
}

/// One rule of a policy: its name, the legal article it enforces, and what
/// it tells the platform when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The rule's name, e.g. `no-direct-connection`.
    pub name: &'static str,
    /// The legal article, e.g. `PIPL Art. 13`.
    pub article: &'static str,
    /// What the platform is told when the rule fires.
    pub message: &'static str,
}

/// Index of a rule in its policy's rule table. Made by [`rules!`](crate::rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(u8);

impl RuleId {
    /// The most rules one policy may declare (the fired set is a `u64`).
    pub const MAX_RULES: usize = 64;

    /// The id of the rule at `index`. Use [`rules!`](crate::rules) instead
    /// of counting by hand.
    pub const fn new(index: u8) -> RuleId {
        assert!((index as usize) < RuleId::MAX_RULES, "a policy has at most 64 rules");
        RuleId(index)
    }

    /// The index in the rule table.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A policy's answer about one flow.
///
/// ```
/// use flowgate_sdk::{Answer, Effect, Obligation, Remedy, rules};
///
/// rules! {
///     NO_BASIS = "no-basis", "PIPL Art. 13", "the flow has no lawful basis";
///     CAP = "retention-cap", "PIPL Art. 19", "kept no longer than the purpose needs";
/// }
///
/// let mut answer = Answer::applies();
/// answer.oblige(CAP, Obligation::LimitRetention { days: 365 });
/// assert_eq!(answer.effect(), Effect::AllowWithObligations);
///
/// answer.deny(NO_BASIS, &[Remedy::ObtainConsent]);
/// assert_eq!(answer.effect(), Effect::Deny);
/// assert!(answer.obligations().is_empty(), "a deny carries no obligations");
/// assert_eq!(answer.fired().collect::<Vec<_>>(), [NO_BASIS, CAP]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    applies: bool,
    denied: bool,
    obligations: ObligationSet,
    remedies: RemedySet,
    fired: u64,
}

impl Answer {
    /// The policy does not apply to this flow.
    pub const fn not_applicable() -> Answer {
        Answer {
            applies: false,
            denied: false,
            obligations: ObligationSet::EMPTY,
            remedies: RemedySet::EMPTY,
            fired: 0,
        }
    }

    /// The policy applies; until a rule says otherwise, the answer is `allow`.
    pub const fn applies() -> Answer {
        Answer { applies: true, ..Answer::not_applicable() }
    }

    /// Records that `rule` fired without changing the effect (an allowing rule).
    pub fn fire(&mut self, rule: RuleId) -> &mut Answer {
        self.fired |= 1 << rule.index();
        self
    }

    /// `rule` fired and denies the flow; `remedies` would make a retry pass.
    pub fn deny(&mut self, rule: RuleId, remedies: &[Remedy]) -> &mut Answer {
        self.fire(rule);
        self.denied = true;
        for remedy in remedies {
            self.remedies.insert(*remedy);
        }
        self
    }

    /// `rule` fired and attaches `obligation` if the flow goes ahead.
    pub fn oblige(&mut self, rule: RuleId, obligation: Obligation) -> &mut Answer {
        self.fire(rule);
        self.obligations.insert(obligation);
        self
    }

    /// Whether a deny rule has fired.
    pub const fn is_denied(&self) -> bool {
        self.denied
    }

    /// The effect: `deny` if any deny rule fired, otherwise
    /// `allow_with_obligations` if obligations are attached, otherwise `allow`;
    /// `not_applicable` if the policy does not apply.
    pub const fn effect(&self) -> Effect {
        if !self.applies {
            Effect::NotApplicable
        } else if self.denied {
            Effect::Deny
        } else if !self.obligations.is_empty() {
            Effect::AllowWithObligations
        } else {
            Effect::Allow
        }
    }

    /// The obligations, empty for a deny (they are for a flow that goes ahead).
    pub const fn obligations(&self) -> ObligationSet {
        if self.denied { ObligationSet::EMPTY } else { self.obligations }
    }

    /// The remedies (only a deny has any).
    pub const fn remedies(&self) -> RemedySet {
        self.remedies
    }

    /// The rules that fired, in rule table order.
    pub fn fired(&self) -> impl Iterator<Item = RuleId> {
        let fired = self.fired;
        (0..RuleId::MAX_RULES as u8).filter(move |i| fired & (1 << i) != 0).map(RuleId)
    }

    /// The rules that fired, as a bit set over the rule table.
    pub const fn fired_bits(&self) -> u64 {
        self.fired
    }

    /// Rebuilds an answer from its parts, checking that they agree with
    /// `effect`. Used by the host to read what crossed the boundary.
    pub fn from_parts(
        effect: Effect,
        obligations: ObligationSet,
        remedies: RemedySet,
        fired: u64,
    ) -> Result<Answer, InconsistentAnswer> {
        let answer = Answer {
            applies: effect != Effect::NotApplicable,
            denied: effect == Effect::Deny,
            obligations,
            remedies,
            fired,
        };
        let consistent = answer.effect() == effect
            && (effect == Effect::Deny || remedies.is_empty())
            && (effect != Effect::NotApplicable || fired == 0);
        if consistent { Ok(answer) } else { Err(InconsistentAnswer(effect)) }
    }
}

/// Answers are equal when they say the same: obligations a deny drops do not count.
impl PartialEq for Answer {
    fn eq(&self, other: &Self) -> bool {
        self.effect() == other.effect()
            && self.obligations() == other.obligations()
            && self.remedies == other.remedies
            && self.fired == other.fired
    }
}

impl Eq for Answer {}

/// An answer whose parts contradict its effect (e.g. `allow` with remedies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InconsistentAnswer(pub Effect);

impl fmt::Display for InconsistentAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an answer of `{}` whose obligations, remedies or rules contradict it", self.0)
    }
}

impl std::error::Error for InconsistentAnswer {}

/// Declares a policy's rule table: a `RuleId` constant per rule and a
/// `RULES` table with names, articles and messages, in declaration order.
///
/// ```
/// flowgate_sdk::rules! {
///     /// No lawful basis at all.
///     NO_BASIS = "no-basis", "PIPL Art. 13", "the flow has no lawful basis";
///     DELETION = "deletion", "PIPL Art. 47", "erasure is always lawful";
/// }
/// assert_eq!(RULES[DELETION.index()].name, "deletion");
/// ```
#[macro_export]
macro_rules! rules {
    ($( $(#[$meta:meta])* $id:ident = $name:literal, $article:literal, $message:literal; )+) => {
        #[allow(non_camel_case_types, dead_code)]
        #[repr(u8)]
        enum __FlowgateRuleIndex { $($id),+ }

        $(
            $(#[$meta])*
            #[doc = concat!("Rule `", $name, "` (", $article, ").")]
            pub const $id: $crate::RuleId = $crate::RuleId::new(__FlowgateRuleIndex::$id as u8);
        )+

        /// This policy's rules, indexed by their `RuleId`.
        pub const RULES: &[$crate::Rule] = &[
            $($crate::Rule { name: $name, article: $article, message: $message }),+
        ];
    };
}
