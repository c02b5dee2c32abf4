//! The two proofs a log hands out, as the JSON documents `flowgate audit
//! prove` and `flowgate audit consistency` print, and their offline checks
//! (`flowgate audit check`, the witness, a regulator's own tool).
//!
//! An inclusion proof proves one decision to the person it concerns:
//!
//! ```json
//! {"receipt": "AcDEBw…", "index": 1234, "tree_size": 5000,
//!  "proof": ["3t9o…=", …], "checkpoint": "flowgate.example/alipay\n5000\n…\n\n— …\n"}
//! ```
//!
//! `receipt` is the leaf's bytes in base64 (decode them with `docs/receipts.md`),
//! `proof` the RFC 9162 audit path (base64 hashes, leaf end first), and
//! `checkpoint` the signed note whose root the path leads to. Everything
//! needed is in the document: no log, no network.
//!
//! A consistency proof shows a newer checkpoint extends an older one:
//! `{"old_size", "new_size", "proof", "checkpoint"}` (the newer one); the
//! older checkpoint is the one the checker already holds.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::digest::Digest;
use crate::entry::{Entry, EntryError, MAX_ENTRY_BYTES};
use crate::merkle::{self, MAX_PROOF_HASHES, ProofError};
use crate::note::{KeyRef, Verifier};

/// The proof of one entry, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The entry's bytes, base64.
    pub receipt: String,
    /// Its leaf index.
    pub index: u64,
    /// The size of the tree the proof is for.
    pub tree_size: u64,
    /// The audit path, base64 hashes.
    pub proof: Vec<String>,
    /// The signed checkpoint of that tree.
    pub checkpoint: String,
}

/// The proof that a checkpoint extends an older tree, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub old_size: u64,
    /// The newer tree's size (the checkpoint's).
    pub new_size: u64,
    /// The consistency path, base64 hashes.
    pub proof: Vec<String>,
    /// The newer signed checkpoint.
    pub checkpoint: String,
}

/// A proof document that does not prove what it says.
#[derive(Debug, Error)]
pub enum ProofDocumentError {
    /// Not the JSON document described.
    #[error("not a proof document: {0}")]
    NotJson(#[from] serde_json::Error),
    /// A base64 field that is not canonical base64 (of 32 bytes, for a hash).
    #[error("`{field}` is not valid base64{}", if *.hash { " of a 32-byte hash" } else { "" })]
    Base64 {
        /// The field.
        field: &'static str,
        /// Whether it should hold a hash.
        hash: bool,
    },
    /// More hashes than any tree needs.
    #[error("the proof has {0} hashes, more than any tree needs")]
    TooLong(usize),
    /// The checkpoint does not open with the keys given.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The document's size is not the checkpoint's.
    #[error("the proof is for a tree of {stated} entries, the checkpoint of {checkpoint}")]
    SizeMismatch {
        /// The size the document states.
        stated: u64,
        /// The checkpoint's size.
        checkpoint: u64,
    },
    /// The proof does not lead to the checkpoint's root.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The leaf is not an entry.
    #[error("the receipt cannot be read: {0}")]
    Entry(#[from] EntryError),
    /// The entry says it sits elsewhere than the proof puts it.
    #[error("the entry says it is entry {stated}, the proof places it at {proved}")]
    IndexMismatch {
        /// The index inside the entry.
        stated: u64,
        /// The index proved.
        proved: u64,
    },
    /// A witness required did not cosign the checkpoint.
    #[error("the checkpoint is not cosigned by witness {0}")]
    NotCosigned(KeyRef),
    /// The older checkpoint is of another log.
    #[error("the checkpoints are of two logs: `{old}` and `{new}`")]
    OtherOrigin {
        /// The older one's origin.
        old: String,
        /// The newer one's.
        new: String,
    },
    /// The older checkpoint is not the one the proof starts from.
    #[error("the proof starts at size {stated}, the older checkpoint has {old}")]
    OldSizeMismatch {
        /// The size the document states.
        stated: u64,
        /// The older checkpoint's size.
        old: u64,
    },
    /// Two checkpoints of one size and different roots.
    #[error("equivocation: two checkpoints of `{origin}` at size {size} with roots {} and {}", .roots.0, .roots.1)]
    Equivocation {
        /// The origin.
        origin: String,
        /// The size.
        size: u64,
        /// The older checkpoint's root, then the newer's.
        roots: (Digest, Digest),
    },
}

/// What a checked inclusion proof established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludedEntry {
    /// The entry, decoded.
    pub entry: Entry,
    /// The checkpoint it is included in.
    pub checkpoint: SignedCheckpoint,
}

impl InclusionProof {
    /// Reads the JSON document.
    pub fn from_json(text: &[u8]) -> Result<InclusionProof, ProofDocumentError> {
        Ok(serde_json::from_slice(text)?)
    }

    /// The document as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a proof always serialises")
    }

    /// Checks it offline: the checkpoint is signed by `log` and cosigned by
    /// every one of `witnesses`, the path leads from the entry at `index`
    /// to the checkpoint's root, and the entry is one, and says it is at
    /// `index`.
    pub fn check(&self, log: &Verifier, witnesses: &[Verifier]) -> Result<IncludedEntry, ProofDocumentError> {
        let checkpoint = open_cosigned(&self.checkpoint, log, witnesses)?;
        if self.tree_size != checkpoint.checkpoint.size {
            return Err(ProofDocumentError::SizeMismatch {
                stated: self.tree_size,
                checkpoint: checkpoint.checkpoint.size,
            });
        }
        // An entry is at most 1 MiB: refuse a longer text before decoding it.
        if self.receipt.len() > MAX_ENTRY_BYTES.div_ceil(3) * 4 {
            return Err(EntryError::TooLarge(self.receipt.len() / 4 * 3).into());
        }
        let leaf =
            STANDARD.decode(&self.receipt).map_err(|_| ProofDocumentError::Base64 { field: "receipt", hash: false })?;
        let path = hashes(&self.proof)?;
        merkle::verify_inclusion(
            &merkle::leaf_hash(&leaf),
            self.index,
            self.tree_size,
            &path,
            &checkpoint.checkpoint.root,
        )?;
        let entry = Entry::decode(&leaf)?;
        if entry.index() != self.index {
            return Err(ProofDocumentError::IndexMismatch { stated: entry.index(), proved: self.index });
        }
        Ok(IncludedEntry { entry, checkpoint })
    }
}

impl ConsistencyProof {
    /// Reads the JSON document.
    pub fn from_json(text: &[u8]) -> Result<ConsistencyProof, ProofDocumentError> {
        Ok(serde_json::from_slice(text)?)
    }

    /// The document as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a proof always serialises")
    }

    /// The proof hashes, decoded.
    pub fn hashes(&self) -> Result<Vec<Digest>, ProofDocumentError> {
        hashes(&self.proof)
    }

    /// Checks it against `old`, a checkpoint already held (and checked)
    /// of the same log: the new checkpoint is signed by `log` and cosigned
    /// by every one of `witnesses`, and extends `old`. Returns the new one.
    pub fn check(
        &self,
        old: &Checkpoint,
        log: &Verifier,
        witnesses: &[Verifier],
    ) -> Result<SignedCheckpoint, ProofDocumentError> {
        let new = open_cosigned(&self.checkpoint, log, witnesses)?;
        let checkpoint = &new.checkpoint;
        if old.origin != checkpoint.origin {
            return Err(ProofDocumentError::OtherOrigin { old: old.origin.clone(), new: checkpoint.origin.clone() });
        }
        if self.new_size != checkpoint.size {
            return Err(ProofDocumentError::SizeMismatch { stated: self.new_size, checkpoint: checkpoint.size });
        }
        if self.old_size != old.size {
            return Err(ProofDocumentError::OldSizeMismatch { stated: self.old_size, old: old.size });
        }
        if old.size == checkpoint.size && old.root != checkpoint.root {
            return Err(ProofDocumentError::Equivocation {
                origin: old.origin.clone(),
                size: old.size,
                roots: (old.root, checkpoint.root),
            });
        }
        merkle::verify_consistency(old.size, checkpoint.size, &self.hashes()?, &old.root, &checkpoint.root)?;
        Ok(new)
    }
}

fn open_cosigned(text: &str, log: &Verifier, witnesses: &[Verifier]) -> Result<SignedCheckpoint, ProofDocumentError> {
    let checkpoint = SignedCheckpoint::open(text.as_bytes(), log, witnesses)?;
    if let Some(missing) = witnesses.iter().find(|w| checkpoint.cosigned_by(w).is_none()) {
        return Err(ProofDocumentError::NotCosigned(missing.key()));
    }
    Ok(checkpoint)
}

/// Base64 hashes, decoded; at most [`MAX_PROOF_HASHES`].
pub fn hashes(proof: &[String]) -> Result<Vec<Digest>, ProofDocumentError> {
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofDocumentError::TooLong(proof.len()));
    }
    proof
        .iter()
        .map(|h| Digest::from_base64(h).ok_or(ProofDocumentError::Base64 { field: "proof", hash: true }))
        .collect()
}

/// Hashes as base64, for a document.
pub fn base64_hashes(hashes: &[Digest]) -> Vec<String> {
    hashes.iter().map(Digest::to_base64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::Cosigner;
    use crate::frontier::Frontier;
    use crate::keys::SecretKey;
    use crate::merkle::{consistency_proof, inclusion_proof};
    use crate::note::{NoteError, Signer};
    use crate::policy_set::tests::reference_set;
    use crate::receipt::tests::typical;
    use crate::tiles::{MemoryLevels, Tiled};

    struct Log {
        entries: Vec<Vec<u8>>,
        frontier: Frontier,
        levels: MemoryLevels,
        signer: Signer,
    }

    impl Log {
        /// A policy set, then `n` receipts.
        fn with(n: u64) -> Log {
            let signer = Signer::new("flowgate.example/alipay", SecretKey::generate().unwrap()).unwrap();
            let mut log = Log { entries: vec![], frontier: Frontier::new(), levels: MemoryLevels::new(), signer };
            log.append(reference_set(0).encode());
            for i in 1..=n {
                log.append(typical(i).encode());
            }
            log
        }

        fn append(&mut self, entry: Vec<u8>) {
            let levels = &mut self.levels;
            self.frontier.push(merkle::leaf_hash(&entry), |s, h| levels.keep(s, h).unwrap());
            self.entries.push(entry);
        }

        fn checkpoint(&self) -> Checkpoint {
            Checkpoint::new("flowgate.example/alipay", self.frontier.size(), self.frontier.root())
        }

        fn prove(&self, index: u64, note: &str) -> InclusionProof {
            let size = self.frontier.size();
            InclusionProof {
                receipt: STANDARD.encode(&self.entries[index as usize]),
                index,
                tree_size: size,
                proof: base64_hashes(&inclusion_proof(&Tiled(&self.levels), index, size).unwrap()),
                checkpoint: note.to_owned(),
            }
        }

        fn signed(&self) -> String {
            self.checkpoint().sign(&self.signer).unwrap().to_text()
        }
    }

    #[test]
    fn a_receipt_is_proved_offline_and_every_tampering_is_named() {
        let log = Log::with(600);
        let verifier = log.signer.verifier();
        let proof = log.prove(345, &log.signed());
        let json = proof.to_json();
        let read = InclusionProof::from_json(json.as_bytes()).unwrap();
        let included = read.check(&verifier, &[]).unwrap();
        assert_eq!(included.entry, Entry::Receipt(typical(345)));
        // The receipt edited (one byte of the flow id): the path no longer
        // leads to the root.
        let mut leaf = STANDARD.decode(&proof.receipt).unwrap();
        *leaf.iter_mut().rev().nth(50).unwrap() ^= 1;
        let edited = InclusionProof { receipt: STANDARD.encode(&leaf), ..proof.clone() };
        assert!(matches!(
            edited.check(&verifier, &[]),
            Err(ProofDocumentError::Proof(ProofError::RootMismatch { .. }))
        ));
        // Another receipt's bytes under this index.
        let swapped = InclusionProof { receipt: log.prove(346, "").receipt, ..proof.clone() };
        assert!(matches!(swapped.check(&verifier, &[]), Err(ProofDocumentError::Proof(_))));
        // The size changed: it must be the checkpoint's.
        let resized = InclusionProof { tree_size: 600, ..proof.clone() };
        assert!(matches!(
            resized.check(&verifier, &[]),
            Err(ProofDocumentError::SizeMismatch { stated: 600, checkpoint: 601 })
        ));
        // A wrong public key: said so.
        let other = Signer::new("flowgate.example/alipay", SecretKey::generate().unwrap()).unwrap();
        assert!(matches!(
            proof.check(&other.verifier(), &[]),
            Err(ProofDocumentError::Checkpoint(CheckpointError::Note(NoteError::UnknownKey { .. })))
        ));
        // Unknown members, or a hash that is not one: not a proof.
        let extra = json.replacen('{', "{\"note\":1,", 1);
        assert!(matches!(InclusionProof::from_json(extra.as_bytes()), Err(ProofDocumentError::NotJson(_))));
        let bad_hash = InclusionProof { proof: vec!["AAAA".into(); proof.proof.len()], ..proof.clone() };
        assert!(matches!(bad_hash.check(&verifier, &[]), Err(ProofDocumentError::Base64 { field: "proof", .. })));
    }

    #[test]
    fn an_entry_copied_elsewhere_does_not_prove_that_place() {
        // A log whose entry 7 holds a copy of receipt 3's bytes: the tree
        // proves those bytes at 7, and the entry says 3.
        let mut log = Log::with(6);
        log.append(typical(3).encode());
        let proof = log.prove(7, &log.signed());
        assert!(matches!(
            proof.check(&log.signer.verifier(), &[]),
            Err(ProofDocumentError::IndexMismatch { stated: 3, proved: 7 })
        ));
    }

    #[test]
    fn witnesses_can_be_required() {
        let log = Log::with(10);
        let witness = Cosigner::new("regulator.example/w", SecretKey::generate().unwrap()).unwrap();
        let mut note = log.checkpoint().sign(&log.signer).unwrap();
        let plain = log.prove(4, &note.to_text());
        let verifier = log.signer.verifier();
        assert!(matches!(
            plain.check(&verifier, &[witness.verifier()]),
            Err(ProofDocumentError::NotCosigned(key)) if key == witness.verifier().key()
        ));
        note.push(witness.cosign(&note, 5)).unwrap();
        let cosigned = log.prove(4, &note.to_text());
        let included = cosigned.check(&verifier, &[witness.verifier()]).unwrap();
        assert_eq!(included.checkpoint.cosigned_by(&witness.verifier()), Some(5));
    }

    #[test]
    fn a_collected_checkpoint_is_checked_against_a_newer_one_with_the_proof_alone() {
        let mut log = Log::with(100);
        let old = log.checkpoint();
        for i in 101..=150 {
            log.append(typical(i).encode());
        }
        let verifier = log.signer.verifier();
        let proof = ConsistencyProof {
            old_size: old.size,
            new_size: log.frontier.size(),
            proof: base64_hashes(&consistency_proof(&Tiled(&log.levels), old.size, log.frontier.size()).unwrap()),
            checkpoint: log.signed(),
        };
        let read = ConsistencyProof::from_json(proof.to_json().as_bytes()).unwrap();
        assert_eq!(read.check(&old, &verifier, &[]).unwrap().checkpoint, log.checkpoint());
        // A collected checkpoint of a history the log no longer has.
        let forked = Checkpoint { root: Digest::of(b"another history"), ..old.clone() };
        assert!(matches!(
            read.check(&forked, &verifier, &[]),
            Err(ProofDocumentError::Proof(ProofError::OldRootMismatch { .. }))
        ));
        // The same size, another root: equivocation, named.
        let same = ConsistencyProof { old_size: 151, proof: vec![], ..proof.clone() };
        let twin = Checkpoint { root: Digest::of(b"twin"), ..log.checkpoint() };
        assert!(matches!(same.check(&twin, &verifier, &[]), Err(ProofDocumentError::Equivocation { size: 151, .. })));
        assert!(same.check(&log.checkpoint(), &verifier, &[]).is_ok());
        let other_log = Checkpoint { origin: "other.example".into(), ..old.clone() };
        assert!(matches!(read.check(&other_log, &verifier, &[]), Err(ProofDocumentError::OtherOrigin { .. })));
        let wrong_old = ConsistencyProof { old_size: 99, ..proof };
        assert!(matches!(
            wrong_old.check(&old, &verifier, &[]),
            Err(ProofDocumentError::OldSizeMismatch { stated: 99, old: 101 })
        ));
    }
}
