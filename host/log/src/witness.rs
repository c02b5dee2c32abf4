//! The regulator as witness: cosign a log's checkpoint only if it extends
//! the last one cosigned for that log.
//!
//! The log key is the platform's: it can sign a rewritten history, or a
//! shortened one. A witness remembers, per origin, the last checkpoint it
//! cosigned, and cosigns a new one only with a consistency proof from that
//! one (RFC 9162 §2.1.4). So two checkpoints that both carry its
//! cosignature are of one append-only history, and a receipt proved
//! against a cosigned checkpoint cannot later vanish from the log unseen.
//!
//! The rules follow C2SP `tlog-witness` (`add-checkpoint`):
//! - the checkpoint must be signed by the log key the witness was given;
//! - the proof must start at the size the witness last cosigned (refused
//!   as a conflict otherwise, naming that size, so the log can send the
//!   right proof);
//! - a smaller tree than the one cosigned is refused (a rollback);
//! - the same size with another root is an equivocation;
//! - a larger tree needs a consistency proof that verifies;
//! - the first checkpoint seen for an origin is cosigned on its signature
//!   alone (there is nothing to compare it with: trust on first use).
//!
//! This module decides; it does no I/O. Its state (the last cosigned
//! note, one file per origin, replaced atomically under a lock) is kept by
//! [`witness_state`](crate::witness_state).

use thiserror::Error;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::cosignature::Cosigner;
use crate::digest::Digest;
use crate::merkle::{ProofError, verify_consistency};
use crate::note::{Note, NoteError, Verifier};

/// A checkpoint offered to the witness, with the proof that it extends an
/// older tree (what `flowgate audit consistency` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The tree size the proof starts from.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Digest>,
    /// The checkpoint note, signed by the log.
    pub checkpoint: Vec<u8>,
}

/// Why the witness will not cosign.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The checkpoint is not one the log key signed (or not a checkpoint).
    #[error("the checkpoint is not signed by the log key: {0}")]
    NotSignedByLog(CheckpointError),
    /// The state held is of another origin than the checkpoint.
    #[error("the checkpoint is of `{found}`, the state held of `{held}`")]
    OtherOrigin {
        /// The origin of the state.
        held: String,
        /// The origin of the checkpoint.
        found: String,
    },
    /// The proof starts at another size than the one last cosigned.
    #[error(
        "the proof starts at size {claimed}, but the last checkpoint cosigned has size {cosigned}: a proof from {cosigned} is needed"
    )]
    Conflict {
        /// The size last cosigned.
        cosigned: u64,
        /// The size the proof starts at.
        claimed: u64,
    },
    /// The checkpoint is of a smaller tree than one cosigned before.
    #[error("the checkpoint has {offered} entries, fewer than the {cosigned} already cosigned: the log was cut back")]
    Rollback {
        /// The size last cosigned.
        cosigned: u64,
        /// The size offered.
        offered: u64,
    },
    /// The same size with another root: the log signed two histories.
    #[error("equivocation: size {size} was cosigned with root {cosigned}, and is now offered with root {offered}")]
    Equivocation {
        /// The size.
        size: u64,
        /// The root cosigned.
        cosigned: Digest,
        /// The root offered.
        offered: Digest,
    },
    /// The proof does not show the new tree extends the cosigned one.
    #[error("the checkpoint of size {to} is not consistent with the cosigned one of size {from}: {error}")]
    Inconsistent {
        /// The size cosigned.
        from: u64,
        /// The size offered.
        to: u64,
        /// What the proof check found.
        error: ProofError,
    },
    /// The state held is not a checkpoint this witness cosigned.
    #[error("the state held for `{origin}` is not a checkpoint this witness cosigned: {error}")]
    ForeignState {
        /// The origin.
        origin: String,
        /// What is wrong with it.
        error: CheckpointError,
    },
}

/// What the witness made of an accepted checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The first checkpoint of this origin it sees.
    FirstSeen,
    /// The same checkpoint as last time, cosigned again.
    Same,
    /// A larger tree, proved to extend the last one.
    Extended {
        /// The size last cosigned.
        from: u64,
    },
}

/// A witness: a cosigning key and the rules above.
#[derive(Debug, Clone)]
pub struct Witness {
    cosigner: Cosigner,
}

/// A cosigned checkpoint: what the witness prints, and keeps as its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The note with every signature it came with and the cosignature added.
    pub note: Note,
    /// How it was accepted.
    pub accepted: Accepted,
}

impl Witness {
    /// A witness cosigning with `cosigner`.
    pub fn new(cosigner: Cosigner) -> Witness {
        Witness { cosigner }
    }

    /// The verifier of its cosignatures.
    pub fn verifier(&self) -> Verifier {
        self.cosigner.verifier()
    }

    /// Reads the state kept for a log: the last note this witness cosigned,
    /// which must carry the log's signature and its own cosignature.
    pub fn read_state(&self, state: &[u8], log: &Verifier) -> Result<Checkpoint, Refusal> {
        let own = self.verifier();
        let opened = SignedCheckpoint::open(state, log, std::slice::from_ref(&own));
        let foreign = |error| Refusal::ForeignState { origin: log.name().to_owned(), error };
        let opened = opened.map_err(foreign)?;
        if opened.cosigned_by(&own).is_none() {
            let signers = opened.verified.unknown.clone();
            return Err(foreign(CheckpointError::Note(NoteError::UnknownKey { signers, expected: vec![own.key()] })));
        }
        Ok(opened.checkpoint)
    }

    /// Decides on `submission` given the last checkpoint cosigned for its
    /// origin (`None`: never), and cosigns it at `time` (Unix seconds) if
    /// it may. The note returned is the new state to keep.
    pub fn add_checkpoint(
        &self,
        last: Option<&Checkpoint>,
        log: &Verifier,
        submission: &Submission,
        time: u64,
    ) -> Result<Cosigned, Refusal> {
        let opened = SignedCheckpoint::open(&submission.checkpoint, log, &[]).map_err(Refusal::NotSignedByLog)?;
        let new = opened.checkpoint;
        let accepted = match last {
            None => Accepted::FirstSeen,
            Some(last) => decide(last, &new, submission)?,
        };
        // The cosignature goes on the note as the log signed it; other
        // signatures it carried (other witnesses') are kept, unverified.
        let mut note = opened.note;
        let own = self.verifier().key();
        if note.signatures().iter().any(|s| s.key() == own) {
            // A cosignature of ours already on it (the same checkpoint sent
            // again): replace it with a fresh one rather than carry two.
            let kept: Vec<_> = note.signatures().iter().filter(|s| s.key() != own).cloned().collect();
            note = Note::new(note.text()).expect("the text was a note's");
            for signature in kept {
                note.push(signature).expect("fewer signatures than before");
            }
        }
        let cosignature = self.cosigner.cosign(&note, time);
        note.push(cosignature).map_err(|e| Refusal::NotSignedByLog(CheckpointError::Note(e.into())))?;
        Ok(Cosigned { checkpoint: new, note, accepted })
    }
}

/// The rules, for a checkpoint of an origin already cosigned.
fn decide(last: &Checkpoint, new: &Checkpoint, submission: &Submission) -> Result<Accepted, Refusal> {
    if last.origin != new.origin {
        return Err(Refusal::OtherOrigin { held: last.origin.clone(), found: new.origin.clone() });
    }
    if new.size < last.size {
        return Err(Refusal::Rollback { cosigned: last.size, offered: new.size });
    }
    if new.size == last.size {
        if new.root != last.root {
            return Err(Refusal::Equivocation { size: new.size, cosigned: last.root, offered: new.root });
        }
        return Ok(Accepted::Same);
    }
    if submission.old_size != last.size {
        return Err(Refusal::Conflict { cosigned: last.size, claimed: submission.old_size });
    }
    verify_consistency(last.size, new.size, &submission.proof, &last.root, &new.root)
        .map_err(|error| Refusal::Inconsistent { from: last.size, to: new.size, error })?;
    Ok(Accepted::Extended { from: last.size })
}

/// The name of the state file of `origin`: the SHA-256 of the origin in
/// lower-case hex (as C2SP `tlog-witness` names a log's checkpoint), so
/// that any origin makes a safe file name.
pub fn state_file_name(origin: &str) -> String {
    Digest::of(origin.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontier::Frontier;
    use crate::keys::SecretKey;
    use crate::merkle::{consistency_proof, leaf_hash};
    use crate::note::Signer;
    use crate::tiles::{MemoryLevels, Tiled};

    const ORIGIN: &str = "log.example/a";

    /// A log in memory: entries, stored levels, a key.
    struct Log {
        frontier: Frontier,
        levels: MemoryLevels,
        signer: Signer,
    }

    impl Log {
        fn new() -> Log {
            Log {
                frontier: Frontier::new(),
                levels: MemoryLevels::new(),
                signer: Signer::new(ORIGIN, SecretKey::generate().unwrap()).unwrap(),
            }
        }

        fn append(&mut self, n: u64, salt: &str) {
            for _ in 0..n {
                let leaf = leaf_hash(format!("{salt}{}", self.frontier.size()).as_bytes());
                let levels = &mut self.levels;
                self.frontier.push(leaf, |subtree, hash| levels.keep(subtree, hash).unwrap());
            }
        }

        fn checkpoint(&self) -> Checkpoint {
            Checkpoint::new(ORIGIN, self.frontier.size(), self.frontier.root())
        }

        fn submit(&self, old_size: u64) -> Submission {
            let proof = consistency_proof(&Tiled(&self.levels), old_size, self.frontier.size()).unwrap();
            let checkpoint = self.checkpoint().sign(&self.signer).unwrap().to_text().into_bytes();
            Submission { old_size, proof, checkpoint }
        }
    }

    fn witness() -> Witness {
        Witness::new(Cosigner::new("regulator.example/w", SecretKey::generate().unwrap()).unwrap())
    }

    #[test]
    fn it_cosigns_a_growing_log_and_keeps_its_state() {
        let (mut log, witness) = (Log::new(), witness());
        let verifier = log.signer.verifier();
        log.append(5, "");
        let first = witness.add_checkpoint(None, &verifier, &log.submit(0), 100).unwrap();
        assert_eq!(first.accepted, Accepted::FirstSeen);
        // The state is the cosigned note; read back, it is the checkpoint.
        let state = first.note.to_text();
        let last = witness.read_state(state.as_bytes(), &verifier).unwrap();
        assert_eq!(last, log.checkpoint());
        log.append(300, "");
        let next = witness.add_checkpoint(Some(&last), &verifier, &log.submit(5), 200).unwrap();
        assert_eq!(next.accepted, Accepted::Extended { from: 5 });
        let opened = SignedCheckpoint::open(next.note.to_text().as_bytes(), &verifier, &[witness.verifier()]).unwrap();
        assert_eq!(opened.cosigned_by(&witness.verifier()), Some(200));
        // The same checkpoint again (its old cosignature on it): cosigned
        // again, once.
        let again = Submission { checkpoint: next.note.to_text().into_bytes(), ..log.submit(305) };
        let same = witness.add_checkpoint(Some(&next.checkpoint), &verifier, &again, 300).unwrap();
        assert_eq!(same.accepted, Accepted::Same);
        assert_eq!(same.note.signatures().len(), 2);
        let opened = SignedCheckpoint::open(same.note.to_text().as_bytes(), &verifier, &[witness.verifier()]).unwrap();
        assert_eq!(opened.cosigned_by(&witness.verifier()), Some(300));
    }

    #[test]
    fn a_forked_or_shortened_history_is_refused() {
        let (mut log, witness) = (Log::new(), witness());
        let verifier = log.signer.verifier();
        log.append(40, "");
        let cosigned = log.checkpoint();
        // The platform rewrites entry 7 and everything after, same key.
        let mut fork = Log { signer: log.signer.clone(), ..Log::new() };
        fork.append(7, "");
        fork.append(50, "rewritten");
        let err = witness.add_checkpoint(Some(&cosigned), &verifier, &fork.submit(40), 1).unwrap_err();
        assert!(matches!(err, Refusal::Inconsistent { from: 40, to: 57, .. }), "{err}");
        // Cut back to 30 entries and signed: a rollback.
        let mut short = Log { signer: log.signer.clone(), ..Log::new() };
        short.append(30, "");
        let err = witness.add_checkpoint(Some(&cosigned), &verifier, &short.submit(0), 1).unwrap_err();
        assert_eq!(err, Refusal::Rollback { cosigned: 40, offered: 30 });
        // The same size with another root: equivocation, either way round.
        let mut twin = Log { signer: log.signer.clone(), ..Log::new() };
        twin.append(40, "other");
        let err = witness.add_checkpoint(Some(&cosigned), &verifier, &twin.submit(0), 1).unwrap_err();
        assert_eq!(err, Refusal::Equivocation { size: 40, cosigned: cosigned.root, offered: twin.checkpoint().root });
        let err = witness.add_checkpoint(Some(&twin.checkpoint()), &verifier, &log.submit(0), 1).unwrap_err();
        assert!(matches!(err, Refusal::Equivocation { size: 40, .. }), "{err}");
        // A proof from another size than the one cosigned: a conflict that
        // names the size needed.
        log.append(10, "");
        let err = witness.add_checkpoint(Some(&cosigned), &verifier, &log.submit(20), 1).unwrap_err();
        assert_eq!(err, Refusal::Conflict { cosigned: 40, claimed: 20 });
        assert!(err.to_string().contains("a proof from 40 is needed"));
        // And the honest extension passes.
        assert!(witness.add_checkpoint(Some(&cosigned), &verifier, &log.submit(40), 1).is_ok());
    }

    #[test]
    fn only_the_log_key_is_trusted() {
        let (mut log, witness) = (Log::new(), witness());
        log.append(3, "");
        let impostor = Signer::new(ORIGIN, SecretKey::generate().unwrap()).unwrap();
        let forged = Log { signer: impostor, ..Log::new() };
        let mut submission = log.submit(0);
        submission.checkpoint = log.checkpoint().sign(&forged.signer).unwrap().to_text().into_bytes();
        let err = witness.add_checkpoint(None, &log.signer.verifier(), &submission, 1).unwrap_err();
        assert!(matches!(err, Refusal::NotSignedByLog(CheckpointError::Note(NoteError::UnknownKey { .. }))), "{err}");
    }

    #[test]
    fn a_state_this_witness_did_not_cosign_is_refused() {
        let (mut log, witness) = (Log::new(), witness());
        let verifier = log.signer.verifier();
        log.append(3, "");
        // Signed by the log, but never cosigned: someone wrote the state file.
        let planted = log.checkpoint().sign(&log.signer).unwrap().to_text();
        assert!(matches!(witness.read_state(planted.as_bytes(), &verifier), Err(Refusal::ForeignState { .. })));
        // Cosigned by another witness.
        let other = self::witness();
        let theirs = other.add_checkpoint(None, &verifier, &log.submit(0), 1).unwrap().note.to_text();
        assert!(matches!(witness.read_state(theirs.as_bytes(), &verifier), Err(Refusal::ForeignState { .. })));
        let ours = witness.add_checkpoint(None, &verifier, &log.submit(0), 1).unwrap().note.to_text();
        assert!(witness.read_state(ours.as_bytes(), &verifier).is_ok());
    }

    #[test]
    fn state_files_are_named_by_the_origin_hash() {
        assert_eq!(state_file_name(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(state_file_name("../../etc").len(), 64);
    }
}
