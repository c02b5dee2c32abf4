//! A decision's receipt, in the compact binary form a leaf holds.
//!
//! What each decision must prove is all here: its place in the log, when,
//! for which platform and flow, which record (its digest), the effect,
//! what fired, what it obliges or would remedy, and which policy set
//! decided. Names are not repeated: policies and rules are numbers into the
//! [`PolicySet`] entry the receipt points at, obligation kinds and remedies
//! numbers into that entry's word lists, digests 32 raw bytes. A typical
//! receipt of the reference set is about 80 bytes (the hash-chained JSON
//! line it replaces was 901).
//!
//! Fields, after the type byte `0x01` (integers LEB128, see `docs/receipts.md`):
//!
//! | field | encoding |
//! |---|---|
//! | index | integer: the receipt's own leaf index (its sequence number) |
//! | time_ms | integer: ms since the Unix epoch when it joined the log |
//! | policy_set | integer: leaf index of the policy-set entry in force, before `index` |
//! | platform | string |
//! | flow | string: the record's id |
//! | record | 32 bytes: SHA-256 of the record's binary encoding |
//! | effect | 1 byte: 0 allow, 1 allow_with_obligations, 2 deny, 3 not_applicable |
//! | applied | count, then policy numbers (≥ 1), strictly ascending |
//! | reasons | count, then each: policy number (0 = the host), rule (0 then a name string, or n ≥ 1: the policy's rule n) |
//! | obligations | count, then each: kind (0-based word number), parameter (0 if none); kinds strictly ascending |
//! | remedies | count, then 0-based word numbers, strictly ascending |

use serde::Serialize;
use thiserror::Error;

use crate::digest::Digest;
use crate::entry::{EntryError, RECEIPT_V1, ascending};
use crate::policy_set::{MAX_NAME_BYTES, PolicySet};
use crate::wire::{Reader, put_string, put_uint};

/// The longest platform id or flow id a receipt holds.
pub const MAX_ID_BYTES: usize = 1024;

/// The decision's effect. The numbers are the format's, fixed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// 0.
    Allow,
    /// 1.
    AllowWithObligations,
    /// 2.
    Deny,
    /// 3.
    NotApplicable,
}

impl Effect {
    /// Every effect, by number.
    pub const ALL: [Effect; 4] = [Effect::Allow, Effect::AllowWithObligations, Effect::Deny, Effect::NotApplicable];

    /// Its number in a receipt.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// Its word, as in `docs/flow-record.md`.
    pub const fn word(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::AllowWithObligations => "allow_with_obligations",
            Effect::Deny => "deny",
            Effect::NotApplicable => "not_applicable",
        }
    }
}

/// A rule as a receipt names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleRef {
    /// Rule `n` (from 1) of the policy's list in the policy set.
    Numbered(u32),
    /// A rule the policy set does not list, by name.
    Named(String),
}

/// One reason: a rule that fired, of a policy (0: the host).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReasonRef {
    /// Policy number: 0 for the host (`flowgate`), n ≥ 1 for the set's n-th.
    pub policy: u32,
    /// The rule.
    pub rule: RuleRef,
}

/// One obligation: a kind (a word number of the set) and its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObligationRef {
    /// The kind's word number (from 0).
    pub kind: u32,
    /// Its parameter (`k`, `days`), 0 for a kind without one.
    pub parameter: u64,
}

/// A decision receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Its leaf index: the receipt's sequence number in the log.
    pub index: u64,
    /// When it joined the log (ms since the Unix epoch).
    pub time_ms: u64,
    /// The leaf index of the policy set that decided.
    pub policy_set: u64,
    /// The record's platform id.
    pub platform: String,
    /// The record's id.
    pub flow: String,
    /// SHA-256 of the record's binary encoding.
    pub record: Digest,
    /// The effect.
    pub effect: Effect,
    /// The policies that applied (or faulted), by number, ascending.
    pub applied: Vec<u32>,
    /// Every rule that fired, in the decision's order.
    pub reasons: Vec<ReasonRef>,
    /// The obligations, by kind, ascending.
    pub obligations: Vec<ObligationRef>,
    /// The remedies, by word number, ascending.
    pub remedies: Vec<u32>,
}

/// A receipt's fields after its place in the log (platform to remedies),
/// borrowed: what a writer encodes before it knows the receipt's index and
/// time, to join them later with [`push_placed`] (one encoding for both:
/// [`Receipt::encode_into`] writes these fields the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided<'a> {
    /// The record's platform id.
    pub platform: &'a str,
    /// The record's id.
    pub flow: &'a str,
    /// SHA-256 of the record's binary encoding.
    pub record: Digest,
    /// The effect.
    pub effect: Effect,
    /// The policies that applied (or faulted), by number, ascending.
    pub applied: &'a [u32],
    /// Every rule that fired, in the decision's order.
    pub reasons: &'a [ReasonRef],
    /// The obligations, by kind, ascending.
    pub obligations: &'a [ObligationRef],
    /// The remedies, by word number, ascending.
    pub remedies: &'a [u32],
}

impl Decided<'_> {
    /// Appends the fields' bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        put_string(out, self.platform);
        put_string(out, self.flow);
        out.extend_from_slice(self.record.as_bytes());
        out.push(self.effect.number());
        put_uint(out, self.applied.len() as u64);
        for policy in self.applied {
            put_uint(out, u64::from(*policy));
        }
        put_uint(out, self.reasons.len() as u64);
        for reason in self.reasons {
            put_uint(out, u64::from(reason.policy));
            match &reason.rule {
                RuleRef::Numbered(n) => put_uint(out, u64::from(*n)),
                RuleRef::Named(name) => {
                    put_uint(out, 0);
                    put_string(out, name);
                }
            }
        }
        put_uint(out, self.obligations.len() as u64);
        for obligation in self.obligations {
            put_uint(out, u64::from(obligation.kind));
            put_uint(out, obligation.parameter);
        }
        put_uint(out, self.remedies.len() as u64);
        for remedy in self.remedies {
            put_uint(out, u64::from(*remedy));
        }
    }
}

/// Appends to `out` the receipt at `index`, dated `time_ms`, naming the
/// policy set at `policy_set`, whose other fields are `decided` (as
/// [`Decided::encode_into`] wrote them), framed as the log's `entries`
/// file holds it: its length, then its bytes.
///
/// ```
/// use flowgate_log::Digest;
/// use flowgate_log::receipt::{Effect, Receipt, push_placed};
/// let receipt = Receipt {
///     index: 7, time_ms: 1_796_000_000_000, policy_set: 0, platform: "alipay".into(),
///     flow: "pay-001".into(), record: Digest::of(b"record"), effect: Effect::Deny,
///     applied: vec![1], reasons: vec![], obligations: vec![], remedies: vec![0],
/// };
/// let mut fields = Vec::new();
/// receipt.decided().encode_into(&mut fields);
/// let mut framed = Vec::new();
/// push_placed(&mut framed, 7, 1_796_000_000_000, 0, &fields);
/// let mut expected = Vec::new();
/// flowgate_log::store::push_frame(&mut expected, &receipt.encode());
/// assert_eq!(framed, expected);
/// ```
pub fn push_placed(out: &mut Vec<u8>, index: u64, time_ms: u64, policy_set: u64, decided: &[u8]) {
    let len = 1 + uint_len(index) + uint_len(time_ms) + uint_len(policy_set) + decided.len();
    put_uint(out, len as u64);
    out.push(RECEIPT_V1);
    put_uint(out, index);
    put_uint(out, time_ms);
    put_uint(out, policy_set);
    out.extend_from_slice(decided);
}

/// The bytes `value` takes as a uint.
const fn uint_len(value: u64) -> usize {
    if value == 0 { 1 } else { (64 - value.leading_zeros() as usize).div_ceil(7) }
}

impl Receipt {
    /// Its bytes, type byte first.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.platform.len() + self.flow.len());
        self.encode_into(&mut out);
        out
    }

    /// Appends its bytes to `out` (no allocation of its own).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(RECEIPT_V1);
        put_uint(out, self.index);
        put_uint(out, self.time_ms);
        put_uint(out, self.policy_set);
        self.decided().encode_into(out);
    }

    /// What it says of its decision, borrowed.
    pub fn decided(&self) -> Decided<'_> {
        Decided {
            platform: &self.platform,
            flow: &self.flow,
            record: self.record,
            effect: self.effect,
            applied: &self.applied,
            reasons: &self.reasons,
            obligations: &self.obligations,
            remedies: &self.remedies,
        }
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Receipt, EntryError> {
        let index = reader.uint("index")?;
        let time_ms = reader.uint("time_ms")?;
        let policy_set = reader.uint("policy_set")?;
        if policy_set >= index {
            return Err(EntryError::ForwardReference { index, policy_set });
        }
        let platform = reader.string("platform", MAX_ID_BYTES)?;
        let flow = reader.string("flow", MAX_ID_BYTES)?;
        let record = reader.digest("record")?;
        let effect = reader.byte("effect")?;
        let effect = *Effect::ALL.get(usize::from(effect)).ok_or(EntryError::UnknownEffect(effect))?;
        let count = reader.count("applied", 1)?;
        let applied = (0..count).map(|_| reader.small("applied")).collect::<Result<Vec<_>, _>>()?;
        ascending(&applied, "applied")?;
        if applied.first() == Some(&0) {
            return Err(EntryError::HostPolicy("applied"));
        }
        let count = reader.count("reasons", 2)?;
        let mut reasons = Vec::with_capacity(count);
        for _ in 0..count {
            let policy = reader.small("reason policy")?;
            let rule = match reader.small("reason rule")? {
                0 => RuleRef::Named(reader.string("reason rule name", MAX_NAME_BYTES)?),
                n => RuleRef::Numbered(n),
            };
            reasons.push(ReasonRef { policy, rule });
        }
        let count = reader.count("obligations", 2)?;
        let mut obligations = Vec::with_capacity(count);
        for _ in 0..count {
            obligations.push(ObligationRef {
                kind: reader.small("obligation kind")?,
                parameter: reader.uint("obligation parameter")?,
            });
        }
        let kinds: Vec<u32> = obligations.iter().map(|o| o.kind).collect();
        ascending(&kinds, "obligations")?;
        let count = reader.count("remedies", 1)?;
        let remedies = (0..count).map(|_| reader.small("remedies")).collect::<Result<Vec<_>, _>>()?;
        ascending(&remedies, "remedies")?;
        Ok(Receipt {
            index,
            time_ms,
            policy_set,
            platform,
            flow,
            record,
            effect,
            applied,
            reasons,
            obligations,
            remedies,
        })
    }

    /// What the receipt says, in words, given the policy set it names.
    ///
    /// ```
    /// # use flowgate_log::receipt::*;
    /// # use flowgate_log::policy_set::*;
    /// # use flowgate_log::Digest;
    /// let set = PolicySet {
    ///     index: 0, time_ms: 0, id: Digest::of(b"set"), host_version: "0.1.0".into(),
    ///     host_rules: vec!["no-policy-applied".into()],
    ///     policies: vec![PolicyEntry { name: "lawful-basis".into(), version: "1.0.0".into(),
    ///         digest: Digest::of(b"module"), rules: vec!["deletion".into(), "no-basis".into()] }],
    ///     obligations: vec![], remedies: vec!["obtain_consent".into()],
    /// };
    /// let receipt = Receipt {
    ///     index: 1, time_ms: 1_796_000_000_000, policy_set: 0, platform: "alipay".into(),
    ///     flow: "pay-001".into(), record: Digest::of(b"record"), effect: Effect::Deny,
    ///     applied: vec![1], reasons: vec![ReasonRef { policy: 1, rule: RuleRef::Numbered(2) }],
    ///     obligations: vec![], remedies: vec![0],
    /// };
    /// let said = receipt.explain(&set).unwrap();
    /// assert_eq!(said.reasons, vec![("lawful-basis".to_owned(), "no-basis".to_owned())]);
    /// assert_eq!(said.remedies, vec!["obtain_consent"]);
    /// ```
    pub fn explain(&self, set: &PolicySet) -> Result<Explained, ExplainError> {
        if set.index != self.policy_set {
            return Err(ExplainError::OtherSet { named: self.policy_set, given: set.index });
        }
        let policy = |number: u32| set.policy_name(number).ok_or(ExplainError::NoPolicy(number));
        let mut policies = Vec::with_capacity(self.applied.len());
        for number in &self.applied {
            let entry = number
                .checked_sub(1)
                .and_then(|i| set.policies.get(i as usize))
                .ok_or(ExplainError::NoPolicy(*number))?;
            policies.push((entry.name.clone(), entry.version.clone(), entry.digest.to_string()));
        }
        let mut reasons = Vec::with_capacity(self.reasons.len());
        for reason in &self.reasons {
            let (name, _) = policy(reason.policy)?;
            let rules = set.rules(reason.policy).unwrap_or(&[]);
            let rule = match &reason.rule {
                RuleRef::Numbered(n) => n
                    .checked_sub(1)
                    .and_then(|i| rules.get(i as usize))
                    .cloned()
                    .ok_or(ExplainError::NoRule { policy: reason.policy, rule: *n })?,
                // One spelling per receipt: a rule the set numbers is never named.
                RuleRef::Named(rule) if rules.contains(rule) => {
                    return Err(ExplainError::NamedNumberedRule(rule.clone()));
                }
                RuleRef::Named(rule) => rule.clone(),
            };
            reasons.push((name.to_owned(), rule));
        }
        let mut obligations = Vec::with_capacity(self.obligations.len());
        for obligation in &self.obligations {
            let word =
                set.obligations.get(obligation.kind as usize).ok_or(ExplainError::NoObligation(obligation.kind))?;
            let parameter = (!word.parameter.is_empty()).then(|| (word.parameter.clone(), obligation.parameter));
            if parameter.is_none() && obligation.parameter != 0 {
                return Err(ExplainError::StrayParameter(word.word.clone()));
            }
            obligations.push(ExplainedObligation { kind: word.word.clone(), parameter });
        }
        let remedies = self
            .remedies
            .iter()
            .map(|n| set.remedies.get(*n as usize).cloned().ok_or(ExplainError::NoRemedy(*n)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Explained {
            index: self.index,
            time_ms: self.time_ms,
            platform: self.platform.clone(),
            flow: self.flow.clone(),
            record: self.record.to_string(),
            effect: self.effect,
            obligations,
            remedies,
            reasons,
            policies,
            policy_set: set.id.to_string(),
        })
    }
}

/// What a receipt says, in words: the old receipt's members, for people
/// and for JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explained {
    /// Its sequence number (leaf index).
    pub index: u64,
    /// When it joined the log (ms since the Unix epoch).
    pub time_ms: u64,
    /// The platform.
    pub platform: String,
    /// The flow (record id).
    pub flow: String,
    /// The record's digest, in hex.
    pub record: String,
    /// The effect.
    pub effect: Effect,
    /// The obligations.
    pub obligations: Vec<ExplainedObligation>,
    /// The remedies.
    pub remedies: Vec<String>,
    /// Each reason as `[policy, rule]`.
    pub reasons: Vec<(String, String)>,
    /// Each policy that applied as `[name, version, module digest]`.
    pub policies: Vec<(String, String, String)>,
    /// The policy set's content id, in hex.
    pub policy_set: String,
}

/// An obligation in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExplainedObligation {
    /// Its kind.
    pub kind: String,
    /// Its parameter's name and value, for a kind that has one.
    pub parameter: Option<(String, u64)>,
}

/// A receipt that does not fit the policy set it names.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExplainError {
    /// The set given is not the one the receipt names.
    #[error("the receipt names the policy set at entry {named}, not the one at {given}")]
    OtherSet {
        /// The set's index the receipt names.
        named: u64,
        /// The set's index given.
        given: u64,
    },
    /// A policy number beyond the set.
    #[error("the policy set has no policy {0}")]
    NoPolicy(u32),
    /// A rule number beyond the policy's list.
    #[error("policy {policy} has no rule {rule} in the policy set")]
    NoRule {
        /// The policy number.
        policy: u32,
        /// The rule number.
        rule: u32,
    },
    /// A rule named that the set numbers.
    #[error("rule `{0}` is given by name though the policy set numbers it")]
    NamedNumberedRule(String),
    /// An obligation number beyond the set's words.
    #[error("the policy set has no obligation kind {0}")]
    NoObligation(u32),
    /// A parameter on a kind that has none.
    #[error("obligation `{0}` takes no parameter, yet has one")]
    StrayParameter(String),
    /// A remedy number beyond the set's words.
    #[error("the policy set has no remedy {0}")]
    NoRemedy(u32),
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::entry::Entry;
    use crate::policy_set::tests::reference_set;

    /// A receipt like those the reference set gives: the sample flows'
    /// ids (`{seed}-{n}`) and platforms.
    pub(crate) fn typical(index: u64) -> Receipt {
        Receipt {
            index,
            time_ms: 1_796_000_000_000 + index,
            policy_set: 0,
            platform: "alipay".into(),
            flow: format!("42-{index}"),
            record: Digest::of(&index.to_be_bytes()),
            effect: Effect::AllowWithObligations,
            applied: vec![5, 8, 10],
            reasons: vec![
                ReasonRef { policy: 8, rule: RuleRef::Numbered(5) },
                ReasonRef { policy: 10, rule: RuleRef::Numbered(4) },
            ],
            obligations: vec![ObligationRef { kind: 2, parameter: 0 }, ObligationRef { kind: 6, parameter: 0 }],
            remedies: vec![],
        }
    }

    #[test]
    fn a_typical_receipt_is_small_and_round_trips() {
        let receipt = typical(123_456);
        let bytes = receipt.encode();
        assert_eq!(bytes[0], RECEIPT_V1);
        assert_eq!(Entry::decode(&bytes), Ok(Entry::Receipt(receipt.clone())));
        // 1 type + 3 index + 6 time + 1 set + 7 platform + 10 flow + 32
        // record + 1 effect + 4 applied + 5 reasons + 5 obligations + 1 remedies.
        assert_eq!(bytes.len(), 76);
        let said = receipt.explain(&reference_set(0)).unwrap();
        assert_eq!(
            said.reasons,
            vec![
                ("sensitive-consent".to_owned(), "encrypt-in-transit".to_owned()),
                ("third-party-provision".to_owned(), "notify-subject".to_owned())
            ]
        );
        assert_eq!(said.obligations[0].kind, "encrypt_in_transit");
        assert_eq!(said.policies[0].0, "lawful-basis");
        assert_eq!(serde_json::to_value(&said).unwrap()["effect"], "allow_with_obligations");
    }

    #[test]
    fn every_cut_and_every_extra_byte_is_refused() {
        let bytes = typical(9).encode();
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes;
        longer.extend_from_slice(&[0, 0]);
        assert_eq!(Entry::decode(&longer), Err(EntryError::TrailingBytes(2)));
    }

    #[test]
    fn one_spelling_per_receipt() {
        let decode = |receipt: &Receipt| Entry::decode(&receipt.encode());
        let base = typical(9);
        let cases = [
            (Receipt { applied: vec![8, 5], ..base.clone() }, EntryError::NotAscending("applied")),
            (Receipt { applied: vec![5, 5], ..base.clone() }, EntryError::NotAscending("applied")),
            (Receipt { applied: vec![0, 5], ..base.clone() }, EntryError::HostPolicy("applied")),
            (Receipt { remedies: vec![3, 1], ..base.clone() }, EntryError::NotAscending("remedies")),
            (
                Receipt {
                    obligations: vec![ObligationRef { kind: 6, parameter: 0 }, ObligationRef { kind: 2, parameter: 0 }],
                    ..base.clone()
                },
                EntryError::NotAscending("obligations"),
            ),
            (Receipt { policy_set: 9, ..base.clone() }, EntryError::ForwardReference { index: 9, policy_set: 9 }),
        ];
        for (receipt, expected) in cases {
            assert_eq!(decode(&receipt), Err(expected));
        }
        let mut bytes = base.encode();
        let effect_at = bytes.len() - 1 - 5 - 5 - 4 - 1;
        assert_eq!(bytes[effect_at], 1);
        bytes[effect_at] = 4;
        assert_eq!(Entry::decode(&bytes), Err(EntryError::UnknownEffect(4)));
    }

    #[test]
    fn a_receipt_must_fit_its_policy_set() {
        let set = reference_set(0);
        let base = typical(9);
        let other_set = PolicySet { index: 3, ..set.clone() };
        assert_eq!(base.explain(&other_set), Err(ExplainError::OtherSet { named: 0, given: 3 }));
        let cases = [
            (Receipt { applied: vec![11], ..base.clone() }, ExplainError::NoPolicy(11)),
            // Built by hand (no decoder gives these): refused, no panic.
            (Receipt { applied: vec![0], ..base.clone() }, ExplainError::NoPolicy(0)),
            (
                Receipt { reasons: vec![ReasonRef { policy: 5, rule: RuleRef::Numbered(0) }], ..base.clone() },
                ExplainError::NoRule { policy: 5, rule: 0 },
            ),
            (
                Receipt { reasons: vec![ReasonRef { policy: 5, rule: RuleRef::Numbered(6) }], ..base.clone() },
                ExplainError::NoRule { policy: 5, rule: 6 },
            ),
            (
                Receipt {
                    reasons: vec![ReasonRef { policy: 5, rule: RuleRef::Named("no-basis".into()) }],
                    ..base.clone()
                },
                ExplainError::NamedNumberedRule("no-basis".into()),
            ),
            (
                Receipt { obligations: vec![ObligationRef { kind: 9, parameter: 0 }], ..base.clone() },
                ExplainError::NoObligation(9),
            ),
            (
                Receipt { obligations: vec![ObligationRef { kind: 1, parameter: 3 }], ..base.clone() },
                ExplainError::StrayParameter("anonymise".into()),
            ),
            (Receipt { remedies: vec![10], ..base.clone() }, ExplainError::NoRemedy(10)),
        ];
        for (receipt, expected) in cases {
            assert_eq!(receipt.explain(&set), Err(expected));
        }
        // The host's own rule, and a rule the set does not list, by name.
        let host = Receipt {
            effect: Effect::Deny,
            applied: vec![],
            reasons: vec![
                ReasonRef { policy: 0, rule: RuleRef::Numbered(1) },
                ReasonRef { policy: 0, rule: RuleRef::Named("later-rule".into()) },
            ],
            obligations: vec![ObligationRef { kind: 0, parameter: 5 }],
            ..base
        };
        let said = Entry::decode(&host.encode()).map(|_| host.explain(&set).unwrap()).unwrap();
        assert_eq!(
            said.reasons,
            vec![("flowgate".into(), "no-policy-applied".into()), ("flowgate".into(), "later-rule".into())]
        );
        assert_eq!(said.obligations[0].parameter, Some(("k".into(), 5)));
    }

    fn receipts() -> impl Strategy<Value = Receipt> {
        (
            1u64..u64::MAX,
            any::<u64>(),
            ".{0,40}",
            ".{0,40}",
            any::<[u8; 32]>(),
            0usize..4,
            proptest::collection::btree_set(1u32..2000, 0..12),
            proptest::collection::vec((0u32..20, 0u32..20, "[a-z-]{1,12}"), 0..8),
            proptest::collection::btree_map(0u32..30, any::<u64>(), 0..6),
            proptest::collection::btree_set(0u32..30, 0..6),
        )
            .prop_map(
                |(index, time_ms, platform, flow, record, effect, applied, reasons, obligations, remedies)| Receipt {
                    index,
                    time_ms,
                    policy_set: index / 2,
                    platform,
                    flow,
                    record: Digest::from_bytes(record),
                    effect: Effect::ALL[effect],
                    applied: applied.into_iter().collect(),
                    reasons: reasons
                        .into_iter()
                        .map(|(policy, rule, name)| ReasonRef {
                            policy,
                            rule: if rule == 0 { RuleRef::Named(name) } else { RuleRef::Numbered(rule) },
                        })
                        .collect(),
                    obligations: obligations
                        .into_iter()
                        .map(|(kind, parameter)| ObligationRef { kind, parameter })
                        .collect(),
                    remedies: remedies.into_iter().collect(),
                },
            )
    }

    proptest! {
        #[test]
        fn a_receipt_placed_by_a_writer_is_the_receipt_framed(receipt in receipts()) {
            let mut fields = Vec::new();
            receipt.decided().encode_into(&mut fields);
            let mut placed = Vec::new();
            push_placed(&mut placed, receipt.index, receipt.time_ms, receipt.policy_set, &fields);
            let mut framed = Vec::new();
            crate::store::push_frame(&mut framed, &receipt.encode());
            prop_assert_eq!(placed, framed);
        }
    }

    #[test]
    fn any_receipt_round_trips_and_every_edit_is_another_spelling_or_none() {
        use proptest::test_runner::{Config, TestRunner};
        let mut runner = TestRunner::new(Config::with_cases(2000));
        let (refused, other) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
        let strategy = (receipts(), any::<usize>(), 0u8..8);
        runner
            .run(&strategy, |(receipt, at, bit)| {
                let bytes = receipt.encode();
                prop_assert_eq!(Entry::decode(&bytes), Ok(Entry::Receipt(receipt.clone())));
                // One bit flipped: refused, or another entry whose own
                // encoding is exactly the edited bytes (one spelling each).
                let mut edited = bytes.clone();
                edited[at % bytes.len()] ^= 1 << bit;
                match Entry::decode(&edited) {
                    Err(_) => refused.set(refused.get() + 1),
                    Ok(entry) => {
                        other.set(other.get() + 1);
                        prop_assert_ne!(&entry, &Entry::Receipt(receipt));
                        prop_assert_eq!(entry.encode(), edited);
                    }
                }
                Ok(())
            })
            .unwrap();
        // Both outcomes must be reached for the property to mean anything.
        let (refused, other) = (refused.get(), other.get());
        assert!(refused > 100 && other > 100, "refused {refused}, decoded otherwise {other}");
    }
}
