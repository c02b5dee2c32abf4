//! A decision as the log's compact receipt, and the active policy set as
//! the log's policy-set entry that receipts name by number.
//!
//! The log crate defines both entries (`host/log/FORMAT.md`); this is where
//! the host's values become them. Per policy set, once, a [`Numbering`]
//! numbers its policies (from 1, in name order, as the set holds them),
//! each policy's rules (from 1, in its rule table's order), and the host's
//! vocabulary of obligation kinds and remedies (from 0, in the SDK's
//! order, written out as words in the entry, so a reader needs no SDK).
//! A decision then becomes a receipt with a few hash-map lookups.
//!
//! `record` is the SHA-256 of the record's binary encoding (the encoding
//! policies read, `flowgate_sdk::wire`), not of its JSON: the log proves
//! which record was decided without holding a copy of its personal data.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use flowgate_log::policy_set::{MAX_NAME_BYTES, ObligationWord, PolicyEntry, PolicySet as SetEntry};
use flowgate_log::receipt::{Decided, Effect as LogEffect, MAX_ID_BYTES, ObligationRef, ReasonRef, RuleRef};
use flowgate_sdk::{Effect, FlowRecord, Obligation, ObligationKind, Remedy, wire};

use crate::decide::PolicySet;
use crate::model::{Decision, Digest, PolicyInfo};

/// The host's own rules, numbered from 1 in every policy-set entry (the
/// policy `flowgate`, number 0). `receipt-not-written` never reaches a log.
const HOST_RULES: &[&str] = &["no-policy-applied"];

/// The name reasons give the host itself.
const HOST: &str = "flowgate";

/// The digest a receipt gives for a record: SHA-256 of its binary encoding.
///
/// ```
/// use flowgate_sdk::FlowRecord;
/// let flow = FlowRecord::from_json(br#"{"id":"f-1","platform":{"id":"p"},
///     "action":"use","data":{"categories":["contact"]},"purpose":"service"}"#).unwrap();
/// let again = FlowRecord::from_json(flow.to_json().as_bytes()).unwrap();
/// assert_eq!(flowgate::record_digest(&flow), flowgate::record_digest(&again));
/// ```
pub fn record_digest(flow: &FlowRecord) -> Digest {
    let mut bytes = Vec::with_capacity(256);
    wire::encode_record(flow, &mut bytes);
    Digest::of(&bytes)
}

/// A decision that cannot become a receipt (its decision then fails closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unloggable {
    /// An id longer than a receipt holds.
    #[error("the {field} of flow `{flow}` is {len} bytes, more than the {MAX_ID_BYTES} a receipt holds")]
    TooLong {
        /// `platform id` or `id`.
        field: &'static str,
        /// The flow, cut for the message.
        flow: String,
        /// Its length.
        len: usize,
    },
    /// A name of the policy set longer than its entry holds.
    #[error("`{0}` is longer than the {MAX_NAME_BYTES} bytes a policy-set entry holds")]
    LongName(String),
    /// A reason of a policy the set does not hold.
    #[error("a reason names policy `{0}`, which is not in the policy set")]
    UnknownPolicy(String),
}

/// FNV-1a: the names looked up per receipt are short and come from the
/// host's own policy set, so a fast hash beats SipHash's resistance to
/// chosen keys, which this table does not need.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

type Names<V> = HashMap<String, V, BuildHasherDefault<Fnv>>;

/// One policy's number in the set, and its rules' numbers.
#[derive(Debug)]
struct Numbers {
    number: u32,
    rules: Names<u32>,
}

/// A batch's receipts, their fields encoded (see [`Decided`]) and not yet
/// placed in the log, with their records; and the lists reused from one
/// receipt to the next, so that a receipt allocates nothing of its own.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Each receipt's fields, one after another.
    pub(crate) fields: Vec<u8>,
    /// Where each receipt's fields end.
    pub(crate) ends: Vec<usize>,
    /// The records kept, by position in the batch.
    pub(crate) records: Vec<(usize, String)>,
    applied: Vec<u32>,
    reasons: Vec<ReasonRef>,
    obligations: Vec<ObligationRef>,
    remedies: Vec<u32>,
}

impl Batch {
    /// Room for `receipts`.
    pub(crate) fn with_capacity(receipts: usize) -> Batch {
        Batch { fields: Vec::with_capacity(receipts * 96), ends: Vec::with_capacity(receipts), ..Batch::default() }
    }

    /// The receipts, each with its fields and record.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
}

/// A policy set's numbering, and its entry (index and time left to fill).
#[derive(Debug)]
pub(crate) struct Numbering {
    /// The set's content id.
    pub(crate) id: Digest,
    entry: SetEntry,
    policies: Names<Numbers>,
    /// Each policy's shared identity, in number order: in a small set an
    /// answer's policy is found by pointer, without hashing its name (held
    /// here, so no other policy can take its address).
    by_identity: Vec<Arc<PolicyInfo>>,
}

impl Numbering {
    /// Numbers `set`.
    pub(crate) fn of(set: &PolicySet) -> Result<Numbering, Unloggable> {
        let long = |name: &str| (name.len() > MAX_NAME_BYTES).then(|| Unloggable::LongName(cut(name)));
        let mut policies = Names::with_capacity_and_hasher(set.policies.len(), BuildHasherDefault::default());
        let mut entries = Vec::with_capacity(set.policies.len());
        for (position, policy) in set.policies.iter().enumerate() {
            let info = &policy.info;
            let rules: Vec<String> = info.rule_names().map(str::to_owned).collect();
            if let Some(err) = [&info.name, &info.version].into_iter().chain(&rules).find_map(|name| long(name)) {
                return Err(err);
            }
            let numbers = rules.iter().enumerate().map(|(i, rule)| (rule.clone(), i as u32 + 1)).collect();
            policies.insert(info.name.clone(), Numbers { number: position as u32 + 1, rules: numbers });
            entries.push(PolicyEntry {
                name: info.name.clone(),
                version: info.version.clone(),
                digest: info.digest,
                rules,
            });
        }
        let obligations = ObligationKind::ALL
            .iter()
            .map(|kind| ObligationWord { word: kind.as_str().to_owned(), parameter: parameter_name(*kind) })
            .collect();
        let entry = SetEntry {
            index: 0,
            time_ms: 0,
            id: set.id,
            host_version: env!("CARGO_PKG_VERSION").to_owned(),
            host_rules: HOST_RULES.iter().map(|rule| (*rule).to_owned()).collect(),
            policies: entries,
            obligations,
            remedies: Remedy::ALL.iter().map(|remedy| remedy.as_str().to_owned()).collect(),
        };
        let by_identity = set.policies.iter().map(|policy| Arc::clone(&policy.info)).collect();
        Ok(Numbering { id: set.id, entry, policies, by_identity })
    }

    /// The set's entry at `index`, dated `time_ms`.
    pub(crate) fn entry(&self, index: u64, time_ms: u64) -> Vec<u8> {
        SetEntry { index, time_ms, ..self.entry.clone() }.encode()
    }

    /// Adds `decision`'s receipt to `batch`, its place (index, time, set)
    /// left to fill, with `record` (its JSON) if it is kept.
    pub(crate) fn push(
        &self,
        batch: &mut Batch,
        decision: &Decision,
        platform: &str,
        digest: Digest,
        record: Option<String>,
    ) -> Result<(), Unloggable> {
        for (field, value) in [("platform id", platform), ("id", decision.id.as_str())] {
            if value.len() > MAX_ID_BYTES {
                return Err(Unloggable::TooLong { field, flow: cut(&decision.id), len: value.len() });
            }
        }
        let Batch { applied, reasons, obligations, remedies, .. } = batch;
        applied.clear();
        for answer in &decision.answers {
            let small = self.by_identity.len() <= 32;
            let found = small.then(|| self.by_identity.iter().position(|p| Arc::ptr_eq(p, &answer.policy))).flatten();
            let number = match found {
                Some(position) => position as u32 + 1,
                None => self.policy(&answer.policy.name)?.number,
            };
            applied.push(number);
        }
        applied.sort_unstable();
        applied.dedup();
        reasons.clear();
        for reason in &decision.reasons {
            let (policy, rule) = if reason.policy() == HOST {
                let rule = HOST_RULES.iter().position(|r| *r == reason.rule()).map(|i| i as u32 + 1);
                (0, rule)
            } else {
                let numbers = self.policy(reason.policy())?;
                (numbers.number, numbers.rules.get(reason.rule()).copied())
            };
            let rule = match rule {
                Some(number) => RuleRef::Numbered(number),
                // A rule the set does not number (a fault's `policy-fault`).
                None if reason.rule().len() <= MAX_NAME_BYTES => RuleRef::Named(reason.rule().to_owned()),
                None => return Err(Unloggable::LongName(cut(reason.rule()))),
            };
            reasons.push(ReasonRef { policy, rule });
        }
        obligations.clear();
        obligations.extend(
            decision
                .obligations
                .iter()
                .map(|o| ObligationRef { kind: u32::from(o.kind().code()), parameter: u64::from(o.parameter()) }),
        );
        obligations.sort_unstable();
        obligations.dedup_by_key(|o| o.kind);
        remedies.clear();
        remedies.extend(decision.remedies.iter().map(|r| u32::from(r.code())));
        remedies.sort_unstable();
        remedies.dedup();
        let decided = Decided {
            platform,
            flow: &decision.id,
            record: digest,
            effect: log_effect(decision.effect),
            applied,
            reasons,
            obligations,
            remedies,
        };
        decided.encode_into(&mut batch.fields);
        batch.ends.push(batch.fields.len());
        if let Some(record) = record {
            batch.records.push((batch.ends.len() - 1, record));
        }
        Ok(())
    }

    fn policy(&self, name: &str) -> Result<&Numbers, Unloggable> {
        self.policies.get(name).ok_or_else(|| Unloggable::UnknownPolicy(cut(name)))
    }
}

/// The log's effect for the SDK's.
pub(crate) fn log_effect(effect: Effect) -> LogEffect {
    match effect {
        Effect::Allow => LogEffect::Allow,
        Effect::AllowWithObligations => LogEffect::AllowWithObligations,
        Effect::Deny => LogEffect::Deny,
        Effect::NotApplicable => LogEffect::NotApplicable,
    }
}

/// The name of an obligation kind's parameter (`k`, `days`), empty for a
/// kind without one: read from the SDK's own JSON form of the obligation,
/// so the two cannot drift.
fn parameter_name(kind: ObligationKind) -> String {
    let value = serde_json::to_value(Obligation::new(kind, 0)).unwrap_or_default();
    let members = value.as_object().map(|m| m.keys().filter(|k| *k != "kind").cloned().collect::<Vec<_>>());
    members.and_then(|m| m.into_iter().next()).unwrap_or_default()
}

/// A name from outside, cut short and escaped for a message.
fn cut(text: &str) -> String {
    crate::model::escape(text, 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obligation_parameters_are_named_as_in_json() {
        assert_eq!(parameter_name(ObligationKind::Aggregate), "k");
        assert_eq!(parameter_name(ObligationKind::LimitRetention), "days");
        assert_eq!(parameter_name(ObligationKind::Anonymise), "");
    }
}
