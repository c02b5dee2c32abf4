//! Signed checkpoints: the log key's statement of how far the chain went.
//!
//! A checkpoint is one line of JSON, in the log (where it closes a segment,
//! or marks an interval) and in the small file a regulator collects with
//! `flowgate audit checkpoint`:
//!
//! ```text
//! {"checkpoint":{"segment":3,"count":1200,"head":"<64 hex>","from_ms":...,"to_ms":...,
//!  "key":"ed25519:<64 hex>","signature":"<128 hex>"}}
//! ```
//!
//! The signature is Ed25519 over the text
//! `flowgate checkpoint v1\nsegment S\ncount N\nhead H\nfrom_ms F\nto_ms T\n`:
//! the chain's head (the hash of receipt number `count`), how many receipts
//! the log held then, and the times of the first and last receipt of the
//! segment. Holding the log key, the platform can sign any chain; what it
//! cannot do is make a rewritten log contain a checkpoint a regulator
//! already collected, which is why regulators collect them.

use serde::{Deserialize, Serialize};

use crate::bundle::{PublicKey, SecretKey};
use crate::model::{Digest, hex};

use super::error::LineError;
use super::receipt::hex_digest;

/// The checkpoint line's only member.
const MEMBER: &str = "checkpoint";

/// The log key's signed statement of the chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The segment it was written in.
    pub segment: u64,
    /// How many receipts the log held: the head's sequence number.
    pub count: u64,
    /// The hash of receipt `count` (64 zeros for an empty log).
    #[serde(with = "hex_digest")]
    pub head: Digest,
    /// The time of the segment's first receipt, in ms since the Unix epoch.
    pub from_ms: u64,
    /// The time of its last receipt.
    pub to_ms: u64,
    /// The key that signed it.
    pub key: String,
    /// The Ed25519 signature, 128 hex digits.
    pub signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    checkpoint: Checkpoint,
}

impl Checkpoint {
    /// A checkpoint of the chain at `head`, signed with `key`.
    pub(crate) fn sign(
        key: &SecretKey,
        segment: u64,
        count: u64,
        head: Digest,
        from_ms: u64,
        to_ms: u64,
    ) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            segment,
            count,
            head,
            from_ms,
            to_ms,
            key: key.public().to_string(),
            signature: String::new(),
        };
        checkpoint.signature = hex::encode(&key.sign(checkpoint.message().as_bytes()));
        checkpoint
    }

    /// The exact text the signature covers.
    pub fn message(&self) -> String {
        format!(
            "flowgate checkpoint v1\nsegment {}\ncount {}\nhead {}\nfrom_ms {}\nto_ms {}\n",
            self.segment, self.count, self.head, self.from_ms, self.to_ms
        )
    }

    /// Whether `key` signed it, exactly as it reads.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        let signature = hex::decode::<64>(&self.signature);
        self.key == key.to_string() && signature.is_some_and(|s| key.verifies(self.message().as_bytes(), &s))
    }

    /// Reads a checkpoint line (as written in the log, or collected).
    ///
    /// ```
    /// let line = br#"{"checkpoint":{"segment":1,"count":0,"head":"00","from_ms":0,"to_ms":0,"key":"","signature":""}}"#;
    /// assert!(flowgate::Checkpoint::parse(line).is_err(), "a head is 64 hex digits");
    /// ```
    pub fn parse(line: &[u8]) -> Result<Checkpoint, LineError> {
        serde_json::from_slice::<Line>(line)
            .map(|line| line.checkpoint)
            .map_err(|err| LineError::Malformed { kind: "checkpoint", message: err.to_string() })
    }

    /// The checkpoint as one line of JSON, without a newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(&Line { checkpoint: self.clone() }).expect("a checkpoint always serialises")
    }

    /// Whether `line` looks like a checkpoint rather than a receipt.
    pub(crate) fn is_checkpoint_line(line: &[u8]) -> bool {
        line.starts_with(format!("{{\"{MEMBER}\":").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_only_as_signed_and_only_with_its_key() {
        let key = SecretKey::generate().unwrap();
        let other = SecretKey::generate().unwrap();
        let checkpoint = Checkpoint::sign(&key, 2, 10, Digest::of(b"head"), 5, 9);
        let read = Checkpoint::parse(checkpoint.to_line().as_bytes()).unwrap();
        assert!(Checkpoint::is_checkpoint_line(checkpoint.to_line().as_bytes()));
        assert_eq!(read, checkpoint);
        assert!(read.signed_by(&key.public()));
        assert!(!read.signed_by(&other.public()));
        for edit in [
            Checkpoint { count: 11, ..read.clone() },
            Checkpoint { head: Digest::of(b"other"), ..read.clone() },
            Checkpoint { to_ms: 10, ..read.clone() },
            Checkpoint { segment: 3, ..read.clone() },
        ] {
            assert!(!edit.signed_by(&key.public()), "{edit:?}");
        }
        // Re-signed by another key, it names that key and fails ours.
        let forged = Checkpoint::sign(&other, 2, 10, Digest::of(b"head"), 5, 9);
        assert!(!forged.signed_by(&key.public()));
    }
}
