//! A receipt: the evidence one decision leaves in the decision log.
//!
//! A receipt is one line of JSON. Its members come in a fixed order, the
//! decision first and its place in the chain last:
//!
//! ```text
//! {"platform":"alipay","flow":"f-7","record":"<64 hex>","effect":"deny",
//!  "obligations":[],"remedies":["obtain_separate_consent"],
//!  "reasons":[["sensitive-consent","separate-consent"]],
//!  "policy_set":"<64 hex>","policies":[["sensitive-consent","1.0.0","<64 hex>"]],
//!  "seq":12,"time_ms":1796000000000,"prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! `hash` is the SHA-256 of the line's own bytes before `,"hash":`, so it
//! covers the decision, the sequence number, the time and the previous
//! receipt's hash; the first receipt's `prev` is 64 zeros. A verifier in
//! any language needs no canonical JSON: it hashes the bytes as written.
//! `docs/receipts.md` specifies every member.
//!
//! `record` is the SHA-256 of the record's binary encoding (the encoding
//! policies read, `flowgate_sdk::wire`), not of its JSON: the log proves
//! which record was decided without holding a copy of its personal data.
//! Reasons are named by policy and rule only; their article and message
//! follow from the policy's version and digest, listed in `policies`.

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use flowgate_sdk::{Effect, FlowRecord, Obligation, Remedy, wire};

use crate::model::{Decision, Digest, hex};

use super::error::LineError;

/// The `prev` of the first receipt of a log.
pub(crate) const GENESIS: Digest = Digest::from_bytes([0; 32]);

/// What a receipt's hash covers ends here, before its own hash.
const HASH_MEMBER: &[u8] = b",\"hash\":\"";

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

/// A receipt before it joins the chain: its decision members, and the
/// hash state after them, so that sealing it hashes only its last members.
pub(crate) struct Unsealed {
    json: Vec<u8>,
    hasher: Sha256,
}

impl Unsealed {
    /// The decision members of `decision`'s receipt.
    pub(crate) fn new(decision: &Decision, platform: &str, record: &Digest) -> Unsealed {
        let mut json = Vec::with_capacity(512);
        json.extend_from_slice(b"{\"platform\":");
        push_json(&mut json, platform);
        json.extend_from_slice(b",\"flow\":");
        push_json(&mut json, &decision.id);
        json.extend_from_slice(b",\"record\":\"");
        push_hex(&mut json, record);
        json.extend_from_slice(b"\",\"effect\":");
        push_json(&mut json, &decision.effect);
        json.extend_from_slice(b",\"obligations\":");
        push_json(&mut json, &decision.obligations);
        json.extend_from_slice(b",\"remedies\":");
        push_json(&mut json, &decision.remedies);
        json.extend_from_slice(b",\"reasons\":");
        push_list(&mut json, &decision.reasons, |out, reason| push_json(out, &(reason.policy(), reason.rule())));
        json.extend_from_slice(b",\"policy_set\":\"");
        push_hex(&mut json, &decision.policy_set);
        json.extend_from_slice(b"\",\"policies\":");
        push_list(&mut json, &decision.answers, |out, answer| {
            out.push(b'[');
            push_json(out, &answer.policy.name);
            out.push(b',');
            push_json(out, &answer.policy.version);
            out.extend_from_slice(b",\"");
            push_hex(out, &answer.policy.digest);
            out.extend_from_slice(b"\"]");
        });
        let mut hasher = Sha256::new();
        hasher.update(&json);
        Unsealed { json, hasher }
    }

    /// Appends the receipt, with its place in the chain, as one line to
    /// `out`; returns its hash.
    pub(crate) fn seal(self, seq: u64, time_ms: u64, prev: &Digest, out: &mut Vec<u8>) -> Digest {
        let mut tail = Vec::with_capacity(128);
        tail.extend_from_slice(format!(",\"seq\":{seq},\"time_ms\":{time_ms},\"prev\":\"").as_bytes());
        push_hex(&mut tail, prev);
        tail.push(b'"');
        let mut hasher = self.hasher;
        hasher.update(&tail);
        let hash = Digest::from_bytes(hasher.finalize().into());
        out.extend_from_slice(&self.json);
        out.extend_from_slice(&tail);
        out.extend_from_slice(HASH_MEMBER);
        push_hex(out, &hash);
        out.extend_from_slice(b"\"}\n");
        hash
    }
}

fn push_json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    serde_json::to_writer(out, value).expect("receipt members always serialise");
}

/// `items` as a JSON array, each written by `push`.
fn push_list<'a, T>(out: &mut Vec<u8>, items: &'a [T], mut push: impl FnMut(&mut Vec<u8>, &'a T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push(out, item);
    }
    out.push(b']');
}

fn push_hex(out: &mut Vec<u8>, digest: &Digest) {
    hex::push(out, digest.as_bytes());
}

/// A receipt read back from the log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The platform that proposed the flow (`platform.id` of the record).
    pub platform: String,
    /// The flow's id (`id` of the record).
    pub flow: String,
    /// SHA-256 of the record's binary encoding ([`record_digest`]).
    #[serde(with = "hex_digest")]
    pub record: Digest,
    /// The decision's effect.
    pub effect: Effect,
    /// Its obligations.
    pub obligations: Vec<Obligation>,
    /// Its remedies.
    pub remedies: Vec<Remedy>,
    /// Its reasons, as (policy, rule).
    pub reasons: Vec<(String, String)>,
    /// The content id of the policy set that decided.
    #[serde(with = "hex_digest")]
    pub policy_set: Digest,
    /// Each policy that applied (or faulted): name, version, module digest.
    pub policies: Vec<(String, String, String)>,
    /// Its number in the log, from 1, without gaps.
    pub seq: u64,
    /// When it joined the chain, in milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    /// The previous receipt's hash.
    #[serde(with = "hex_digest")]
    pub prev: Digest,
    /// Its own hash.
    #[serde(with = "hex_digest")]
    pub hash: Digest,
}

impl Receipt {
    /// Reads one receipt line (without its newline). Returns the receipt and
    /// whether its stated hash is the hash of its bytes.
    pub(crate) fn parse(line: &[u8]) -> Result<(Receipt, bool), LineError> {
        let receipt: Receipt = serde_json::from_slice(line)
            .map_err(|err| LineError::Malformed { kind: "receipt", message: err.to_string() })?;
        // The hash member must be the last one, exactly as written: the
        // bytes before it are what the hash covers.
        let covered = line
            .len()
            .checked_sub(HASH_MEMBER.len() + 64 + 2)
            .filter(|&at| line[at..].starts_with(HASH_MEMBER) && line.ends_with(b"\"}"));
        let Some(covered) = covered else {
            return Err(LineError::HashNotLast);
        };
        let intact = Digest::of(&line[..covered]) == receipt.hash;
        Ok((receipt, intact))
    }
}

/// Digests as 64 lower-case hex digits.
pub(crate) mod hex_digest {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::{Digest, hex};

    pub(crate) fn serialize<S: Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&digest.to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let lower = text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex::decode::<32>(&text)
            .filter(|_| lower)
            .map(Digest::from_bytes)
            .ok_or_else(|| serde::de::Error::custom("expected 64 lower-case hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(seq: u64, prev: &Digest) -> (Vec<u8>, Digest) {
        let decision = Decision {
            id: "f-\"1\"".into(),
            effect: Effect::Deny,
            obligations: Vec::new(),
            remedies: vec![Remedy::ObtainSeparateConsent],
            reasons: vec![crate::model::Reason::new("p", "1.0.0", "r", "Art. 1", "m")],
            answers: Vec::new(),
            policy_set: Digest::of(b"set"),
            activation: 1,
        };
        let mut line = Vec::new();
        let hash = Unsealed::new(&decision, "plat", &Digest::of(b"record")).seal(seq, 1_000, prev, &mut line);
        (line, hash)
    }

    #[test]
    fn a_sealed_receipt_reads_back_intact() {
        let (line, hash) = sealed(7, &GENESIS);
        assert_eq!(line.last(), Some(&b'\n'));
        let (receipt, intact) = Receipt::parse(&line[..line.len() - 1]).unwrap();
        assert!(intact);
        assert_eq!((receipt.seq, receipt.time_ms, receipt.hash, receipt.prev), (7, 1_000, hash, GENESIS));
        assert_eq!(receipt.flow, "f-\"1\"");
        assert_eq!(receipt.reasons, vec![("p".to_owned(), "r".to_owned())]);
    }

    #[test]
    fn the_hash_covers_every_byte_before_it() {
        let (line, _) = sealed(7, &GENESIS);
        let line = &line[..line.len() - 1];
        let hash_at = line.len() - (HASH_MEMBER.len() + 64 + 2);
        let mut flipped = 0;
        for at in 0..hash_at {
            let mut edited = line.to_vec();
            edited[at] = if edited[at] == b'1' { b'2' } else { b'1' };
            if let Ok((_, intact)) = Receipt::parse(&edited) {
                assert!(!intact, "byte {at} changed unnoticed");
                flipped += 1;
            }
        }
        assert!(flipped > 100, "the edits must reach the hash check ({flipped})");
    }

    #[test]
    fn a_receipt_with_members_after_its_hash_is_refused() {
        let (line, _) = sealed(7, &GENESIS);
        let text = String::from_utf8(line).unwrap();
        let moved =
            text.trim_end().replacen("{\"platform\":\"plat\",", "{", 1).replace("\"}", "\",\"platform\":\"plat\"}");
        assert!(Receipt::parse(moved.as_bytes()).is_err(), "{moved}");
    }
}
