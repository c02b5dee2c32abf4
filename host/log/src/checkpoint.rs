//! Checkpoints (C2SP `tlog-checkpoint`): the log key's signed statement of
//! its tree's size and root hash.
//!
//! ```text
//! flowgate.example/alipay          origin: names the log
//! 1048576                          tree size, decimal, no leading zeros
//! 3t9oTy0e6BSCXGGtHE2i4oSQ0m6pbZRCvhGOUq6wCRk=   root hash, base64
//!                                  (optional extension lines, then) a blank line
//! — flowgate.example/alipay Az3g…  the log key's signature, then witnesses'
//! ```
//!
//! The body is the note text; the log signs it as a note signature (type
//! `0x01`) whose key name is the origin, so any program that speaks signed
//! notes can check it given the log's public key. Parsing is strict: exactly
//! one spelling per checkpoint, so two checkpoints that say the same thing
//! are the same bytes, and two that differ in root for one origin and size
//! are an [equivocation](find_equivocation), the log signing two histories.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::digest::Digest;
use crate::merkle::EMPTY_ROOT;
use crate::note::{self, Note, NoteError, Signer, Verified, Verifier};

/// The most extension lines read.
pub const MAX_EXTENSIONS: usize = 16;

/// A tree head: what a checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The log's identity, e.g. `flowgate.example/alipay`.
    pub origin: String,
    /// How many leaves the tree has.
    pub size: u64,
    /// The RFC 9162 root hash of those leaves.
    pub root: Digest,
    /// Opaque extension lines (none are written by Flowgate).
    pub extensions: Vec<String>,
}

/// A checkpoint that is not one, or not trusted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckpointError {
    /// The note around it is malformed or not signed as required.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// Fewer than three lines.
    #[error("a checkpoint has an origin, a tree size and a root hash, each on its own line")]
    TooFewLines,
    /// An empty origin line.
    #[error("the origin line is empty")]
    EmptyOrigin,
    /// A tree size that is not canonical decimal (or too large).
    #[error("`{0}` is not a tree size (decimal, no leading zeros)")]
    BadSize(String),
    /// A root hash that is not canonical base64 of 32 bytes.
    #[error("`{0}` is not a root hash (base64 of 32 bytes)")]
    BadRoot(String),
    /// An empty extension line.
    #[error("extension line {0} is empty")]
    EmptyExtension(usize),
    /// More than [`MAX_EXTENSIONS`] extension lines.
    #[error("more than {MAX_EXTENSIONS} extension lines")]
    TooManyExtensions,
    /// A tree of size 0 whose root is not the empty tree's.
    #[error("a tree of size 0 has root {}, not {root}", EMPTY_ROOT.to_base64())]
    EmptyTreeRoot {
        /// The root it claims.
        root: Digest,
    },
    /// The log key did not sign it (only others did).
    #[error("the checkpoint of `{origin}` is not signed by the log key {expected}")]
    NotSignedByLog {
        /// Its origin.
        origin: String,
        /// The key expected.
        expected: note::KeyRef,
    },
    /// The checkpoint is of another log.
    #[error("the checkpoint is of `{found}`, not of `{expected}`")]
    OtherOrigin {
        /// The origin wanted.
        expected: String,
        /// The origin found.
        found: String,
    },
}

impl Checkpoint {
    /// A checkpoint without extensions.
    pub fn new(origin: &str, size: u64, root: Digest) -> Checkpoint {
        Checkpoint { origin: origin.to_owned(), size, root, extensions: Vec::new() }
    }

    /// The note text: origin, size, root and extension lines, each ending
    /// in a newline.
    pub fn body(&self) -> String {
        let mut body = format!("{}\n{}\n{}\n", self.origin, self.size, self.root.to_base64());
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// Reads a checkpoint body (a note's text), strictly.
    ///
    /// ```
    /// use flowgate_log::checkpoint::{Checkpoint, CheckpointError};
    /// let body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    /// let checkpoint = Checkpoint::from_body(body).unwrap();
    /// assert_eq!(checkpoint.size, 20852163);
    /// assert_eq!(checkpoint.body(), body);
    /// let padded = body.replace("20852163", "020852163");
    /// assert!(matches!(Checkpoint::from_body(&padded), Err(CheckpointError::BadSize(_))));
    /// ```
    pub fn from_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        let lines = body.strip_suffix('\n').ok_or(CheckpointError::TooFewLines)?;
        let mut lines = lines.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(CheckpointError::TooFewLines);
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_size(size).ok_or_else(|| CheckpointError::BadSize(size.to_owned()))?;
        let root = Digest::from_base64(root).ok_or_else(|| CheckpointError::BadRoot(root.to_owned()))?;
        let mut extensions = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(CheckpointError::EmptyExtension(i + 1));
            }
            if extensions.len() == MAX_EXTENSIONS {
                return Err(CheckpointError::TooManyExtensions);
            }
            extensions.push(line.to_owned());
        }
        if size == 0 && root != EMPTY_ROOT {
            return Err(CheckpointError::EmptyTreeRoot { root });
        }
        Ok(Checkpoint { origin: origin.to_owned(), size, root, extensions })
    }

    /// Signs it with the log key (whose name must be the origin) and
    /// returns the note.
    pub fn sign(&self, log: &Signer) -> Result<Note, CheckpointError> {
        let mut note = Note::new(self.body()).map_err(NoteError::from)?;
        note.push(log.sign(note.text())).map_err(NoteError::from)?;
        Ok(note)
    }
}

/// A checkpoint read from its note, signed by the log key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// What it says.
    pub checkpoint: Checkpoint,
    /// The note, with every signature line as read.
    pub note: Note,
    /// The signatures that verified (the log's first among them), and the
    /// keys that were unknown.
    pub verified: Verified,
}

impl SignedCheckpoint {
    /// Reads a checkpoint note and checks it: it must be signed by `log`
    /// (whose name is the origin), and every signature by a key in
    /// `witnesses` must verify. Which witnesses signed is in `verified`;
    /// requiring some is the caller's policy ([`SignedCheckpoint::cosigned_by`]).
    pub fn open(bytes: &[u8], log: &Verifier, witnesses: &[Verifier]) -> Result<SignedCheckpoint, CheckpointError> {
        let note = Note::parse(bytes).map_err(NoteError::from)?;
        let checkpoint = Checkpoint::from_body(note.text())?;
        let mut known = vec![log.clone()];
        known.extend_from_slice(witnesses);
        let verified = note.verify(&known)?;
        if verified.by(log).is_none() {
            return Err(CheckpointError::NotSignedByLog { origin: checkpoint.origin, expected: log.key() });
        }
        Ok(SignedCheckpoint { checkpoint, note, verified })
    }

    /// Reads a checkpoint note and checks it as [`SignedCheckpoint::open`]
    /// does, with the log's public key alone: the log signs under its
    /// origin's name, so the verifier is the key named by the checkpoint's
    /// own origin. (A key of another log then fails as an unknown key,
    /// saying so, rather than as a forgery.)
    ///
    /// ```
    /// use flowgate_log::checkpoint::{Checkpoint, SignedCheckpoint};
    /// use flowgate_log::keys::SecretKey;
    /// use flowgate_log::note::Signer;
    /// let key = SecretKey::from_seed(&[1; 32]);
    /// let log = Signer::new("log.example/a", key.clone()).unwrap();
    /// let note = Checkpoint::new("log.example/a", 0, flowgate_log::merkle::EMPTY_ROOT).sign(&log).unwrap();
    /// let opened = SignedCheckpoint::open_with_key(note.to_text().as_bytes(), &key.public(), &[]).unwrap();
    /// assert_eq!(opened.checkpoint.size, 0);
    /// let other = SecretKey::from_seed(&[2; 32]).public();
    /// let err = SignedCheckpoint::open_with_key(note.to_text().as_bytes(), &other, &[]).unwrap_err();
    /// assert!(err.to_string().contains("is it the right public key?"), "{err}");
    /// ```
    pub fn open_with_key(
        bytes: &[u8],
        key: &crate::keys::PublicKey,
        witnesses: &[Verifier],
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let note = Note::parse(bytes).map_err(NoteError::from)?;
        let origin = Checkpoint::from_body(note.text())?.origin;
        SignedCheckpoint::open(bytes, &Verifier::ed25519(&origin, *key)?, witnesses)
    }

    /// The time of `witness`'s valid cosignature, if it cosigned.
    pub fn cosigned_by(&self, witness: &Verifier) -> Option<u64> {
        self.verified.by(witness).and_then(|s| s.timestamp)
    }
}

/// Canonical decimal: `0`, or digits not starting with `0`, within u64.
fn parse_size(text: &str) -> Option<u64> {
    let canonical = text == "0" || (!text.is_empty() && !text.starts_with('0') && text.len() <= 20);
    if !canonical || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Two checkpoints of one origin and size with different roots: proof
/// that the log signed two histories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The origin.
    pub origin: String,
    /// The size both claim.
    pub size: u64,
    /// The two roots, in the order the checkpoints were given.
    pub roots: (Digest, Digest),
    /// Where the two checkpoints were in the list given.
    pub positions: (usize, usize),
}

/// The first equivocation among `checkpoints`, whatever their order: any
/// two of one origin and size whose roots differ. (Two of different sizes
/// need a consistency proof to compare: the verifier's and the witness's
/// job.)
pub fn find_equivocation<'a>(checkpoints: impl IntoIterator<Item = &'a Checkpoint>) -> Option<Equivocation> {
    let mut first: BTreeMap<(&str, u64), (usize, Digest)> = BTreeMap::new();
    for (position, checkpoint) in checkpoints.into_iter().enumerate() {
        let key = (checkpoint.origin.as_str(), checkpoint.size);
        match first.get(&key) {
            Some((earlier, root)) if *root != checkpoint.root => {
                return Some(Equivocation {
                    origin: checkpoint.origin.clone(),
                    size: checkpoint.size,
                    roots: (*root, checkpoint.root),
                    positions: (*earlier, position),
                });
            }
            Some(_) => {}
            None => {
                first.insert(key, (position, checkpoint.root));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::Cosigner;
    use crate::keys::SecretKey;

    const SPEC_BODY: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn log() -> Signer {
        Signer::new("log.example/a", SecretKey::generate().unwrap()).unwrap()
    }

    #[test]
    fn the_spec_example_reads_and_writes_back() {
        let checkpoint = Checkpoint::from_body(SPEC_BODY).unwrap();
        assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
        assert_eq!(checkpoint.root.to_base64(), "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=");
        assert_eq!(checkpoint.body(), SPEC_BODY);
        let with_ext = format!("{SPEC_BODY}ext one\next two\n");
        let read = Checkpoint::from_body(&with_ext).unwrap();
        assert_eq!(read.extensions, vec!["ext one", "ext two"]);
        assert_eq!(read.body(), with_ext);
    }

    #[test]
    fn every_field_has_one_spelling() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        let bad = [
            ("o\n1\n", CheckpointError::TooFewLines),
            (&*format!("o\n1\n{root}"), CheckpointError::TooFewLines),
            (&*format!("\n1\n{root}\n"), CheckpointError::EmptyOrigin),
            (&*format!("o\n01\n{root}\n"), CheckpointError::BadSize("01".into())),
            (&*format!("o\n+1\n{root}\n"), CheckpointError::BadSize("+1".into())),
            (&*format!("o\n 1\n{root}\n"), CheckpointError::BadSize(" 1".into())),
            (&*format!("o\n18446744073709551616\n{root}\n"), CheckpointError::BadSize("18446744073709551616".into())),
            (
                "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",
                CheckpointError::BadRoot("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I".into()),
            ),
            (
                "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",
                CheckpointError::BadRoot("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=".into()),
            ),
            (&*format!("o\n1\n{root}\n\n"), CheckpointError::EmptyExtension(1)),
            (&*format!("o\n0\n{root}\n"), CheckpointError::EmptyTreeRoot { root: Digest::from_base64(root).unwrap() }),
        ];
        for (body, expected) in bad {
            assert_eq!(Checkpoint::from_body(body), Err(expected), "{body:?}");
        }
        let many = format!("o\n1\n{root}\n{}", "x\n".repeat(MAX_EXTENSIONS + 1));
        assert_eq!(Checkpoint::from_body(&many), Err(CheckpointError::TooManyExtensions));
        // Size 0 with the empty tree's root is a checkpoint like any other.
        let empty = Checkpoint::from_body(&format!("o\n0\n{}\n", EMPTY_ROOT.to_base64())).unwrap();
        assert_eq!(empty.size, 0);
        assert_eq!(parse_size("18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn a_signed_checkpoint_opens_with_the_log_key_only() {
        let log = log();
        let witness = Cosigner::new("w.example", SecretKey::generate().unwrap()).unwrap();
        let checkpoint = Checkpoint::new("log.example/a", 5, Digest::of(b"root"));
        let mut note = checkpoint.sign(&log).unwrap();
        note.push(witness.cosign(&note, 77)).unwrap();
        let text = note.to_text();
        let opened = SignedCheckpoint::open(text.as_bytes(), &log.verifier(), &[witness.verifier()]).unwrap();
        assert_eq!(opened.checkpoint, checkpoint);
        assert_eq!(opened.cosigned_by(&witness.verifier()), Some(77));
        // Without the witness key, the cosignature is merely unknown.
        let opened = SignedCheckpoint::open(text.as_bytes(), &log.verifier(), &[]).unwrap();
        assert_eq!(opened.verified.unknown, vec![witness.verifier().key()]);
        assert_eq!(opened.cosigned_by(&witness.verifier()), None);
        // Checked against another log key: named as an unknown key.
        let err = SignedCheckpoint::open(text.as_bytes(), &log_named("log.example/a").verifier(), &[]).unwrap_err();
        assert!(matches!(err, CheckpointError::Note(NoteError::UnknownKey { .. })), "{err}");
        // Signed only by the witness (a known key), not by the log.
        let mut only_witness = Note::new(checkpoint.body()).unwrap();
        only_witness.push(witness.cosign(&only_witness, 1)).unwrap();
        let err = SignedCheckpoint::open(only_witness.to_text().as_bytes(), &log.verifier(), &[witness.verifier()]);
        assert!(matches!(err, Err(CheckpointError::NotSignedByLog { .. })), "{err:?}");
        // The size edited after signing.
        let edited = text.replacen("\n5\n", "\n6\n", 1);
        let err = SignedCheckpoint::open(edited.as_bytes(), &log.verifier(), &[]).unwrap_err();
        assert!(matches!(err, CheckpointError::Note(NoteError::BadSignature(_))), "{err}");
    }

    fn log_named(name: &str) -> Signer {
        Signer::new(name, SecretKey::generate().unwrap()).unwrap()
    }

    #[test]
    fn equivocation_is_found_in_any_order() {
        let a = Checkpoint::new("o", 10, Digest::of(b"a"));
        let b = Checkpoint::new("o", 10, Digest::of(b"b"));
        let other_size = Checkpoint::new("o", 11, Digest::of(b"c"));
        let other_log = Checkpoint::new("p", 10, Digest::of(b"d"));
        assert_eq!(find_equivocation([&a, &a.clone(), &other_size, &other_log]), None);
        let found = find_equivocation([&a, &other_size, &other_log, &b]).unwrap();
        assert_eq!((found.size, found.roots, found.positions), (10, (a.root, b.root), (0, 3)));
        let found = find_equivocation([&other_log, &b, &other_size, &a]).unwrap();
        assert_eq!((found.roots, found.positions), ((b.root, a.root), (1, 3)));
    }
}
