//! A log entry: the bytes of one leaf of the tree.
//!
//! The first byte names what the entry is and the version of its encoding
//! together; a reader refuses a type it does not know rather than guess:
//!
//! | byte | entry |
//! |---|---|
//! | `0x01` | a decision receipt, version 1 ([`Receipt`]) |
//! | `0x02` | a policy set, version 1 ([`PolicySet`]) |
//!
//! A later version of either takes a new byte; `0x00` is never used (an
//! entry of zeros, as a hole in a file reads, is never a valid entry).
//! Every entry then carries its own leaf index, so an entry copied to
//! another place in the log no longer decodes as that place's entry, and
//! the time it joined the log. An entry is decoded completely or not at
//! all: bytes left over after its last field are an error.

use thiserror::Error;

use crate::policy_set::PolicySet;
use crate::receipt::Receipt;
use crate::wire::{Reader, WireError};

/// The largest entry read or written. A receipt is about a hundred bytes;
/// a policy set naming a thousand policies and their rules fits too.
pub const MAX_ENTRY_BYTES: usize = 1 << 20;

/// The type byte of a version 1 receipt.
pub const RECEIPT_V1: u8 = 0x01;

/// The type byte of a version 1 policy set.
pub const POLICY_SET_V1: u8 = 0x02;

/// One leaf of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A decision's receipt.
    Receipt(Receipt),
    /// The policy set the receipts after it name.
    PolicySet(PolicySet),
}

/// An entry that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EntryError {
    /// No bytes at all.
    #[error("an entry has at least its type byte")]
    Empty,
    /// Larger than [`MAX_ENTRY_BYTES`].
    #[error("an entry of {0} bytes is larger than any the log writes")]
    TooLarge(usize),
    /// A type byte this reader does not know.
    #[error("entry type {0:#04x} is not one this reader knows (0x01 receipt, 0x02 policy set)")]
    UnknownType(u8),
    /// A field is malformed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// An effect byte that names no effect.
    #[error("effect {0} is not an effect (0 to 3)")]
    UnknownEffect(u8),
    /// A list that must be strictly ascending is not.
    #[error("`{0}` is not in strictly ascending order")]
    NotAscending(&'static str),
    /// A policy number 0 (the host) where a policy is required.
    #[error("`{0}` names policy 0, the host, which applies to nothing")]
    HostPolicy(&'static str),
    /// A receipt naming a policy set at or after its own place.
    #[error("entry {index} names the policy set at {policy_set}, which is not before it")]
    ForwardReference {
        /// The receipt's index.
        index: u64,
        /// The policy set it names.
        policy_set: u64,
    },
    /// Bytes after the last field.
    #[error("{0} bytes follow the entry's last field")]
    TrailingBytes(usize),
}

impl Entry {
    /// Decodes an entry, strictly.
    ///
    /// ```
    /// use flowgate_log::entry::{Entry, EntryError};
    /// assert_eq!(Entry::decode(&[0x07]), Err(EntryError::UnknownType(7)));
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let (&kind, body) = bytes.split_first().ok_or(EntryError::Empty)?;
        let mut reader = Reader::new(body);
        let entry = match kind {
            RECEIPT_V1 => Entry::Receipt(Receipt::read(&mut reader)?),
            POLICY_SET_V1 => Entry::PolicySet(PolicySet::read(&mut reader)?),
            other => return Err(EntryError::UnknownType(other)),
        };
        match reader.remaining() {
            0 => Ok(entry),
            left => Err(EntryError::TrailingBytes(left)),
        }
    }

    /// Its bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Entry::Receipt(receipt) => receipt.encode(),
            Entry::PolicySet(set) => set.encode(),
        }
    }

    /// Its leaf index, as it states it.
    pub fn index(&self) -> u64 {
        match self {
            Entry::Receipt(receipt) => receipt.index,
            Entry::PolicySet(set) => set.index,
        }
    }

    /// When it joined the log, in ms since the Unix epoch.
    pub fn time_ms(&self) -> u64 {
        match self {
            Entry::Receipt(receipt) => receipt.time_ms,
            Entry::PolicySet(set) => set.time_ms,
        }
    }
}

/// Checks that `items` are strictly ascending.
pub(crate) fn ascending<T: Ord>(items: &[T], field: &'static str) -> Result<(), EntryError> {
    if items.windows(2).all(|pair| pair[0] < pair[1]) { Ok(()) } else { Err(EntryError::NotAscending(field)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::receipt::{Effect, ObligationRef, ReasonRef, RuleRef};

    /// Entries encoded by `testdata/entry_vectors.py` from `docs/receipts.md` alone.
    fn vectors() -> Vec<(String, Vec<u8>)> {
        include_str!("../testdata/entry_vectors.txt")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                let (name, hex) = line.split_once(' ').unwrap();
                let bytes =
                    (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
                (name.to_owned(), bytes)
            })
            .collect()
    }

    #[test]
    fn entries_made_from_the_format_document_decode_as_documented() {
        let vectors = vectors();
        let entries: Vec<Entry> = vectors.iter().map(|(_, bytes)| Entry::decode(bytes).unwrap()).collect();
        // One spelling: encoded back, the same bytes.
        for ((name, bytes), entry) in vectors.iter().zip(&entries) {
            assert_eq!(&entry.encode(), bytes, "{name}");
        }
        let Entry::PolicySet(set) = &entries[0] else { panic!("entry 0 is the set") };
        assert_eq!((set.index, set.time_ms, set.id), (0, 1_796_000_000_000, Digest::of(b"example set")));
        assert_eq!(set.policies[1].name, "sensitive-consent");
        assert_eq!(set.policies[1].digest, Digest::of(b"sensitive-consent"));
        assert_eq!(set.obligations[2].parameter, "days");
        let receipt = |i: usize| match &entries[i] {
            Entry::Receipt(receipt) => receipt.clone(),
            other => panic!("{other:?}"),
        };
        let first = receipt(1);
        assert_eq!((first.index, first.platform.as_str(), first.flow.as_str()), (1, "alipay", "pay-001"));
        assert_eq!(first.record, Digest::of(b"record 1"));
        assert_eq!(first.effect, Effect::AllowWithObligations);
        let said = first.explain(set).unwrap();
        assert_eq!(said.reasons, vec![("lawful-basis".to_owned(), "no-basis".to_owned())]);
        assert_eq!(said.obligations[0].kind, "encrypt_in_transit");
        let deny = receipt(2);
        assert_eq!(deny.flow, "订单-7");
        assert_eq!(deny.explain(set).unwrap().remedies, vec!["obtain_consent", "obtain_separate_consent"]);
        let host = receipt(3);
        assert_eq!(host.index, 300);
        assert_eq!(host.reasons[1], ReasonRef { policy: 0, rule: RuleRef::Named("a-rule-of-a-later-host".into()) });
        assert_eq!(host.explain(set).unwrap().reasons[0], ("flowgate".to_owned(), "no-policy-applied".to_owned()));
        let large = receipt(4);
        assert_eq!((large.index, large.time_ms), (1 << 40, 1 << 63));
        assert_eq!(
            large.obligations,
            vec![ObligationRef { kind: 0, parameter: 50 }, ObligationRef { kind: 2, parameter: 30 }]
        );
        let said = large.explain(set).unwrap();
        assert_eq!(said.obligations[1].parameter, Some(("days".to_owned(), 30)));
    }

    #[test]
    fn no_entry_starts_with_zero() {
        assert_eq!(Entry::decode(&[0; 80]), Err(EntryError::UnknownType(0)));
        assert_eq!(Entry::decode(&[]), Err(EntryError::Empty));
        assert_eq!(Entry::decode(&vec![1; MAX_ENTRY_BYTES + 1]), Err(EntryError::TooLarge(MAX_ENTRY_BYTES + 1)));
    }
}
