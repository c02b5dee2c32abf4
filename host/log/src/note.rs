//! Signed notes (C2SP `signed-note`): text signed by one or more keys, the
//! envelope of checkpoints and of witnesses' cosignatures.
//!
//! ```text
//! flowgate.example/log
//! 12
//! 9cH1…=
//!
//! — flowgate.example/log AbCdEf…
//! — regulator.example/w1 ZyXw…
//! ```
//!
//! The text ends in a newline; a blank line separates it from one or more
//! signature lines, `— <key name> <base64(4-byte key id || signature)>`.
//! The key id of an Ed25519 key is the first four bytes of
//! `SHA-256(name || 0x0A || signature type || public key)`: type `0x01`
//! for a note signature, `0x04` for a witness's timestamped cosignature
//! ([`cosignature`]). A verifier knows keys by
//! (name, key id) and:
//! - ignores signatures by keys it does not know (counted, and named in
//!   the error when no known key signed, so that "signed by another key"
//!   reads differently from "forged");
//! - refuses the note if a known key's signature does not verify;
//! - refuses the note if one known key signed it twice (the spec lets a
//!   verifier drop the repeat; two cosignatures by one witness would claim
//!   two times, and nothing we write ever repeats one, so we refuse);
//! - refuses a note no known key signed.
//!
//! Parsing is strict and bounded: at most [`MAX_NOTE_BYTES`] bytes and
//! [`MAX_SIGNATURES`] signature lines (the spec asks for at least 16),
//! UTF-8 with no control character but newline, names without spaces or
//! `+`, canonical base64.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::cosignature;
use crate::digest::Digest;
use crate::keys::{PublicKey, SecretKey};

/// The largest note read: a checkpoint with a hundred cosignatures is
/// under 16 KiB.
pub const MAX_NOTE_BYTES: usize = 64 << 10;

/// The most signature lines a note may carry.
pub const MAX_SIGNATURES: usize = 100;

/// What starts a signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The signature type byte of an Ed25519 note signature.
pub const TYPE_ED25519: u8 = 0x01;

/// The signature type byte of an Ed25519 timestamped cosignature.
pub const TYPE_COSIGNATURE: u8 = 0x04;

/// A note: its text and its signature lines, as read (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<Signature>,
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key's name.
    pub name: String,
    /// The key id (the first four bytes of the base64 part).
    pub key_id: u32,
    /// What follows the key id: the signature proper.
    pub bytes: Vec<u8>,
}

impl Signature {
    /// The line, without its newline.
    pub fn line(&self) -> String {
        let mut bytes = self.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.bytes);
        format!("{SIGNATURE_PREFIX}{} {}", self.name, STANDARD.encode(bytes))
    }

    /// Who made it.
    pub fn key(&self) -> KeyRef {
        KeyRef { name: self.name.clone(), key_id: self.key_id }
    }
}

/// A key as a note names it: its name and key id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef {
    /// The name.
    pub name: String,
    /// The key id.
    pub key_id: u32,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` (key id {:08x})", self.name, self.key_id)
    }
}

/// What a note's syntax breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Malformed {
    /// Larger than [`MAX_NOTE_BYTES`].
    #[error("it is larger than {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    /// Not UTF-8.
    #[error("it is not UTF-8")]
    NotUtf8,
    /// A control character other than newline, at this byte.
    #[error("it has a control character at byte {0}")]
    ControlCharacter(usize),
    /// No blank line before signatures, or no signature, or no final newline.
    #[error("it has no signature lines after a blank line")]
    NoSignatures,
    /// A signature line (counted from 1) that is not `— name base64`.
    #[error("signature line {0} is not `— <name> <base64>`")]
    SignatureLine(usize),
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("it has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// An empty text, or one not ending in a newline.
    #[error("its text is empty or does not end in a newline")]
    Text,
}

/// A note that cannot be trusted, or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NoteError {
    /// It is not a signed note.
    #[error("not a signed note: {0}")]
    Malformed(#[from] Malformed),
    /// A known key's signature does not verify: the text was changed after
    /// it was signed, or the signature was made up.
    #[error("the signature by {0} does not verify: the note was changed after signing, or forged")]
    BadSignature(KeyRef),
    /// A known key signed twice.
    #[error("{0} signed the note twice")]
    DuplicateSignature(KeyRef),
    /// No known key signed it; who did is listed (possibly no one known).
    #[error("{}", unknown_key_message(.signers, .expected))]
    UnknownKey {
        /// The keys that signed it.
        signers: Vec<KeyRef>,
        /// The keys it was checked against.
        expected: Vec<KeyRef>,
    },
    /// A key name that is empty or has a space or `+`.
    #[error("`{0}` is not a key name: it must be non-empty, without spaces or `+`")]
    BadName(String),
}

fn unknown_key_message(signers: &[KeyRef], expected: &[KeyRef]) -> String {
    let list = |keys: &[KeyRef]| keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let same_name = signers.iter().any(|s| expected.iter().any(|e| e.name == s.name));
    let hint = if same_name { "; a key of the same name but another id: is it the right public key?" } else { "" };
    format!("signed by {} only, not by the key given ({}){hint}", list(signers), list(expected))
}

/// The notes of `text`, in order: a collected-checkpoints file or the
/// log's history holds several, one after another. A note is its text, a
/// blank line and its signature lines (each starting `— `); it ends at the
/// first line after them that is not one, and blank lines between notes
/// are skipped. Each piece is handed to [`Note::parse`] as it is, so what
/// is not a note is refused there, not here.
///
/// ```
/// use flowgate_log::note::split_notes;
/// let two = "a\n1\n\n\u{2014} k AAAA\n\nb\n2\n\n\u{2014} k BBBB\n\u{2014} w CCCC\n";
/// assert_eq!(split_notes(two), vec!["a\n1\n\n\u{2014} k AAAA\n", "b\n2\n\n\u{2014} k BBBB\n\u{2014} w CCCC\n"]);
/// ```
pub fn split_notes(text: &str) -> Vec<&str> {
    let mut notes = Vec::new();
    // (where the note starts, whether its signature lines have begun)
    let mut current: Option<(usize, bool)> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.strip_suffix('\n').unwrap_or(line);
        current = match current {
            None if bare.is_empty() => None,
            None => Some((at, false)),
            Some((start, false)) => Some((start, bare.is_empty())),
            Some((start, true)) if bare.starts_with(SIGNATURE_PREFIX) => Some((start, true)),
            Some((start, true)) => {
                notes.push(&text[start..at]);
                (!bare.is_empty()).then_some((at, false))
            }
        };
        at += line.len();
    }
    if let Some((start, _)) = current {
        notes.push(&text[start..]);
    }
    notes
}

/// Whether `name` may name a key: non-empty, no Unicode space, no `+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The key id of a key of `name` with signature type `kind` and public key bytes `key`.
pub fn key_id(name: &str, kind: u8, key: &[u8]) -> u32 {
    let digest = Digest::of_parts(&[name.as_bytes(), b"\n", &[kind], key]);
    let bytes = digest.as_bytes();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Note {
    /// A note of `text` with no signatures yet. The text must be non-empty,
    /// end in a newline, and hold no control character but newline.
    pub fn new(text: impl Into<String>) -> Result<Note, Malformed> {
        let text = text.into();
        check_characters(text.as_bytes())?;
        if !text.ends_with('\n') || text.len() + 1 > MAX_NOTE_BYTES {
            return Err(Malformed::Text);
        }
        Ok(Note { text, signatures: Vec::new() })
    }

    /// Reads a signed note, strictly; nothing is verified yet.
    ///
    /// ```
    /// use flowgate_log::note::{Note, Malformed};
    /// let note = Note::parse("hello\n\n\u{2014} example.com/k AAAAAWFi\n".as_bytes()).unwrap();
    /// assert_eq!(note.text(), "hello\n");
    /// assert_eq!(note.signatures()[0].key_id, 1);
    /// assert_eq!(Note::parse(b"hello\n"), Err(Malformed::NoSignatures));
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Note, Malformed> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(Malformed::TooLarge);
        }
        check_characters(bytes)?;
        let all = std::str::from_utf8(bytes).map_err(|_| Malformed::NotUtf8)?;
        // The text ends at the last blank line.
        let split = all.rfind("\n\n").ok_or(Malformed::NoSignatures)?;
        let (text, lines) = (&all[..=split], &all[split + 2..]);
        if lines.is_empty() || !lines.ends_with('\n') {
            return Err(Malformed::NoSignatures);
        }
        let lines: Vec<&str> = lines[..lines.len() - 1].split('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(Malformed::TooManySignatures);
        }
        let signatures = lines
            .iter()
            .enumerate()
            .map(|(i, line)| parse_signature(line).ok_or(Malformed::SignatureLine(i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// The signed text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Adds a signature line (made by [`Signer::sign`] or a cosigner).
    pub fn push(&mut self, signature: Signature) -> Result<(), Malformed> {
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(Malformed::TooManySignatures);
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// The whole note: text, blank line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.line());
            out.push('\n');
        }
        out
    }

    /// Checks the signatures by `known` keys (see the module docs for the
    /// rules), and says which verified and which were by unknown keys.
    pub fn verify(&self, known: &[Verifier]) -> Result<Verified, NoteError> {
        let mut verified = Verified::default();
        let mut seen = Vec::new();
        for signature in &self.signatures {
            let key = signature.key();
            let Some(verifier) = known.iter().find(|v| v.name == key.name && v.key_id == key.key_id) else {
                if !verified.unknown.contains(&key) {
                    verified.unknown.push(key);
                }
                continue;
            };
            if seen.contains(&key) {
                return Err(NoteError::DuplicateSignature(key));
            }
            let timestamp =
                verifier.check(&self.text, &signature.bytes).ok_or_else(|| NoteError::BadSignature(key.clone()))?;
            seen.push(key);
            verified.signatures.push(VerifiedSignature { key: signature.key(), kind: verifier.kind, timestamp });
        }
        if verified.signatures.is_empty() {
            return Err(NoteError::UnknownKey {
                signers: verified.unknown,
                expected: known.iter().map(Verifier::key).collect(),
            });
        }
        Ok(verified)
    }
}

fn check_characters(bytes: &[u8]) -> Result<(), Malformed> {
    match bytes.iter().position(|&b| b < 0x20 && b != b'\n') {
        Some(at) => Err(Malformed::ControlCharacter(at)),
        None => Ok(()),
    }
}

fn parse_signature(line: &str) -> Option<Signature> {
    let rest = line.strip_prefix(SIGNATURE_PREFIX)?;
    let (name, encoded) = rest.split_once(' ')?;
    if !is_valid_name(name) || encoded.is_empty() {
        return None;
    }
    let bytes = STANDARD.decode(encoded).ok()?;
    if bytes.len() < 5 {
        return None;
    }
    let key_id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    Some(Signature { name: name.to_owned(), key_id, bytes: bytes[4..].to_vec() })
}

/// What verification found: the signatures by known keys (all valid), and
/// the keys it did not know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// The valid signatures by known keys, in note order.
    pub signatures: Vec<VerifiedSignature>,
    /// The keys of signatures that were ignored, each once.
    pub unknown: Vec<KeyRef>,
}

impl Verified {
    /// The valid signature by `verifier`'s key, if there is one.
    pub fn by(&self, verifier: &Verifier) -> Option<&VerifiedSignature> {
        self.signatures.iter().find(|s| s.key == verifier.key())
    }
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// Its key.
    pub key: KeyRef,
    /// A note signature or a cosignature.
    pub kind: SignatureKind,
    /// For a cosignature, the time it claims (Unix seconds).
    pub timestamp: Option<u64>,
}

/// The two signature types this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureKind {
    /// `0x01`: Ed25519 over the note text.
    Ed25519,
    /// `0x04`: a witness's timestamped Ed25519 cosignature (`cosignature/v1`).
    Cosignature,
}

impl SignatureKind {
    /// Its signature type byte.
    pub const fn type_byte(self) -> u8 {
        match self {
            SignatureKind::Ed25519 => TYPE_ED25519,
            SignatureKind::Cosignature => TYPE_COSIGNATURE,
        }
    }

    fn from_type_byte(byte: u8) -> Option<SignatureKind> {
        match byte {
            TYPE_ED25519 => Some(SignatureKind::Ed25519),
            TYPE_COSIGNATURE => Some(SignatureKind::Cosignature),
            _ => None,
        }
    }
}

/// A key a note is checked against: a name, an Ed25519 public key, and the
/// kind of signature it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_id: u32,
    key: PublicKey,
    kind: SignatureKind,
}

/// A verifier key text (`name+keyid+base64`) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VkeyError {
    /// Not three `+`-separated parts.
    #[error("a verifier key is `<name>+<8 hex digits>+<base64 key>`")]
    Form,
    /// The name part is not a key name.
    #[error("`{0}` is not a key name")]
    Name(String),
    /// A signature type this crate does not verify.
    #[error("signature type {0:#04x} is not one this verifier knows (0x01 Ed25519, 0x04 cosignature)")]
    UnknownType(u8),
    /// The key bytes are not an Ed25519 public key.
    #[error("the key is not a valid Ed25519 public key")]
    Key,
    /// The stated key id is not the one the name and key give.
    #[error("the key id {stated:08x} is not {computed:08x}, the id of that name and key")]
    KeyId {
        /// In the text.
        stated: u32,
        /// Computed.
        computed: u32,
    },
}

impl Verifier {
    /// The verifier of note signatures (type `0x01`) by `key` under `name`.
    pub fn ed25519(name: &str, key: PublicKey) -> Result<Verifier, NoteError> {
        Verifier::new(name, key, SignatureKind::Ed25519)
    }

    /// The verifier of a witness's cosignatures (type `0x04`).
    pub fn cosigner(name: &str, key: PublicKey) -> Result<Verifier, NoteError> {
        Verifier::new(name, key, SignatureKind::Cosignature)
    }

    fn new(name: &str, key: PublicKey, kind: SignatureKind) -> Result<Verifier, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::BadName(name.to_owned()));
        }
        let key_id = key_id(name, kind.type_byte(), key.as_bytes());
        Ok(Verifier { name: name.to_owned(), key_id, key, kind })
    }

    /// Reads a verifier key: `<name>+<hex key id>+<base64(type || key)>`.
    ///
    /// ```
    /// // The example of C2SP signed-note.
    /// let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    /// let verifier = flowgate_log::note::Verifier::parse_vkey(vkey).unwrap();
    /// assert_eq!(verifier.key().key_id, 0x530d903a);
    /// assert_eq!(verifier.to_vkey(), vkey);
    /// ```
    pub fn parse_vkey(text: &str) -> Result<Verifier, VkeyError> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(encoded)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(VkeyError::Form);
        };
        if !is_valid_name(name) {
            return Err(VkeyError::Name(name.to_owned()));
        }
        let stated = crate::hex::decode::<4>(id).map(u32::from_be_bytes).ok_or(VkeyError::Form)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| VkeyError::Form)?;
        let (&type_byte, key) = bytes.split_first().ok_or(VkeyError::Form)?;
        let kind = SignatureKind::from_type_byte(type_byte).ok_or(VkeyError::UnknownType(type_byte))?;
        let key = <&[u8; 32]>::try_from(key).ok().and_then(PublicKey::from_bytes).ok_or(VkeyError::Key)?;
        let verifier = Verifier::new(name, key, kind).map_err(|_| VkeyError::Name(name.to_owned()))?;
        if verifier.key_id != stated {
            return Err(VkeyError::KeyId { stated, computed: verifier.key_id });
        }
        Ok(verifier)
    }

    /// The verifier key text.
    pub fn to_vkey(&self) -> String {
        let mut bytes = vec![self.kind.type_byte()];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(bytes))
    }

    /// Its name and key id.
    pub fn key(&self) -> KeyRef {
        KeyRef { name: self.name.clone(), key_id: self.key_id }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Note signature or cosignature.
    pub fn kind(&self) -> SignatureKind {
        self.kind
    }

    /// Checks a signature of `text`: `Some(timestamp)` if valid, the
    /// timestamp only for a cosignature.
    fn check(&self, text: &str, signature: &[u8]) -> Option<Option<u64>> {
        match self.kind {
            SignatureKind::Ed25519 => {
                let signature = <&[u8; 64]>::try_from(signature).ok()?;
                self.key.verifies(text.as_bytes(), signature).then_some(None)
            }
            SignatureKind::Cosignature => cosignature::check(&self.key, text, signature).map(Some),
        }
    }
}

/// A signer key in text, as Go's `note` package writes it:
/// `PRIVATE+KEY+<name>+<hex key id>+<base64(type || 32-byte seed)>`. It
/// carries the key's name and signature type with it, which is what a
/// witness's key file needs (its name is on every cosignature).
#[derive(Clone)]
pub struct SignerKey {
    /// The key's name.
    pub name: String,
    /// Note signature (`0x01`) or cosignature (`0x04`).
    pub kind: SignatureKind,
    /// The secret key.
    pub key: SecretKey,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({:?}, {:?}, {:?})", self.name, self.kind, self.key)
    }
}

impl SignerKey {
    /// Reads a signer key text, checking its key id.
    ///
    /// ```
    /// // The example of Go's `golang.org/x/mod/sumdb/note`.
    /// let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    /// let key = flowgate_log::note::SignerKey::parse(skey).unwrap();
    /// assert_eq!(key.verifier().to_vkey(), "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
    /// assert_eq!(key.to_text(), skey);
    /// ```
    pub fn parse(text: &str) -> Result<SignerKey, VkeyError> {
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or(VkeyError::Form)?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(encoded)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(VkeyError::Form);
        };
        let stated = crate::hex::decode::<4>(id).map(u32::from_be_bytes).ok_or(VkeyError::Form)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| VkeyError::Form)?;
        let (&type_byte, seed) = bytes.split_first().ok_or(VkeyError::Form)?;
        let kind = SignatureKind::from_type_byte(type_byte).ok_or(VkeyError::UnknownType(type_byte))?;
        let seed = <&[u8; 32]>::try_from(seed).map_err(|_| VkeyError::Key)?;
        let key = SignerKey { name: name.to_owned(), kind, key: SecretKey::from_seed(seed) };
        let computed =
            Verifier::new(name, key.key.public(), kind).map_err(|_| VkeyError::Name(name.to_owned()))?.key_id;
        if computed != stated {
            return Err(VkeyError::KeyId { stated, computed });
        }
        Ok(key)
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut bytes = vec![self.kind.type_byte()];
        bytes.extend_from_slice(self.key.seed());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.verifier().key_id, STANDARD.encode(bytes))
    }

    /// The verifier of its signatures.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(&self.name, self.key.public(), self.kind).expect("the name was checked when read")
    }
}

/// A key that makes note signatures (type `0x01`): the log's.
#[derive(Debug, Clone)]
pub struct Signer {
    name: String,
    key_id: u32,
    key: SecretKey,
}

impl Signer {
    /// A signer of notes under `name` with `key`.
    pub fn new(name: &str, key: SecretKey) -> Result<Signer, NoteError> {
        let verifier = Verifier::ed25519(name, key.public())?;
        Ok(Signer { name: name.to_owned(), key_id: verifier.key_id, key })
    }

    /// The verifier of its signatures.
    pub fn verifier(&self) -> Verifier {
        Verifier::ed25519(&self.name, self.key.public()).expect("the name was checked")
    }

    /// Its signature of `text`.
    pub fn sign(&self, text: &str) -> Signature {
        Signature { name: self.name.clone(), key_id: self.key_id, bytes: self.key.sign(text.as_bytes()).to_vec() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of C2SP signed-note: a vkey and the note it verifies.
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    fn signer(name: &str) -> Signer {
        Signer::new(name, SecretKey::generate().unwrap()).unwrap()
    }

    #[test]
    fn the_spec_example_verifies() {
        let verifier = Verifier::parse_vkey(SPEC_VKEY).unwrap();
        let note = Note::parse(SPEC_NOTE.as_bytes()).unwrap();
        assert_eq!(note.text(), "This is an example message.\n");
        let verified = note.verify(std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(verified.signatures.len(), 1);
        assert_eq!(verified.by(&verifier).unwrap().kind, SignatureKind::Ed25519);
        assert_eq!(note.to_text(), SPEC_NOTE, "written back byte for byte");
        // One character of the text changed: the known key's signature fails.
        let edited = SPEC_NOTE.replace("example message", "example massage");
        assert_eq!(
            Note::parse(edited.as_bytes()).unwrap().verify(&[verifier]),
            Err(NoteError::BadSignature(KeyRef { name: "example.com/foo".into(), key_id: 0x530d903a }))
        );
    }

    #[test]
    fn go_notes_published_example_is_signed_alike() {
        // From the package documentation of golang.org/x/mod/sumdb/note.
        let key =
            SignerKey::parse("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap();
        let text =
            "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let signer = Signer::new(&key.name, key.key.clone()).unwrap();
        assert_eq!(
            signer.sign(text).line(),
            "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        );
        let vkey = Verifier::parse_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").unwrap();
        assert_eq!(key.verifier(), vkey);
        // A cosigner key in the same form (type 0x04), and ids checked.
        let witness = SignerKey {
            name: "w.example".into(),
            kind: SignatureKind::Cosignature,
            key: SecretKey::from_seed(&[9; 32]),
        };
        let read = SignerKey::parse(&witness.to_text()).unwrap();
        assert_eq!((read.kind, read.verifier()), (SignatureKind::Cosignature, witness.verifier()));
        let wrong_id = witness.to_text().replacen(&format!("{:08x}", witness.verifier().key().key_id), "00000000", 1);
        assert!(matches!(SignerKey::parse(&wrong_id), Err(VkeyError::KeyId { .. })));
        assert!(matches!(SignerKey::parse("w.example+00000000+AQ=="), Err(VkeyError::Form)));
        assert!(!format!("{witness:?}").contains(&crate::hex::encode(&[9; 32])), "Debug hides the seed");
    }

    #[test]
    fn a_vkey_must_name_its_key_correctly() {
        assert_eq!(
            Verifier::parse_vkey(&SPEC_VKEY.replace("530d903a", "530d903b")),
            Err(VkeyError::KeyId { stated: 0x530d903b, computed: 0x530d903a })
        );
        // The same key under another name has another id.
        assert!(matches!(
            Verifier::parse_vkey(&SPEC_VKEY.replace("example.com/foo", "example.com/bar")),
            Err(VkeyError::KeyId { .. })
        ));
        assert_eq!(Verifier::parse_vkey("example.com/foo+530d903a"), Err(VkeyError::Form));
        assert!(matches!(Verifier::parse_vkey(&SPEC_VKEY.replace("example.com/foo", "a b")), Err(VkeyError::Name(_))));
        // Type 0x02 (ECDSA) is not one we verify.
        let mut bytes = vec![0x02];
        bytes.extend_from_slice(&[9; 32]);
        let ecdsa = format!("x+00000000+{}", STANDARD.encode(bytes));
        assert_eq!(Verifier::parse_vkey(&ecdsa), Err(VkeyError::UnknownType(2)));
        let signer = signer("log.example/a");
        assert_eq!(Verifier::parse_vkey(&signer.verifier().to_vkey()).unwrap(), signer.verifier());
    }

    #[test]
    fn a_wrong_key_is_told_apart_from_a_forgery() {
        let log = signer("log.example/a");
        let other = signer("log.example/a");
        let mut note = Note::new("checkpoint\n").unwrap();
        note.push(log.sign(note.text())).unwrap();
        let read = Note::parse(note.to_text().as_bytes()).unwrap();
        // Checked against another key of the same name: "unknown key", with
        // both ids, not "bad signature".
        let err = read.verify(&[other.verifier()]).unwrap_err();
        let NoteError::UnknownKey { signers, expected } = &err else { panic!("{err}") };
        assert_eq!(signers, &vec![log.verifier().key()]);
        assert_eq!(expected, &vec![other.verifier().key()]);
        assert!(err.to_string().contains("is it the right public key"), "{err}");
        assert!(read.verify(&[log.verifier()]).is_ok());
    }

    #[test]
    fn unknown_signatures_are_counted_and_duplicates_refused() {
        let log = signer("log.example/a");
        let stranger = signer("stranger.example");
        let mut note = Note::new("body\n").unwrap();
        note.push(stranger.sign(note.text())).unwrap();
        note.push(log.sign(note.text())).unwrap();
        note.push(stranger.sign(note.text())).unwrap();
        let verified = Note::parse(note.to_text().as_bytes()).unwrap().verify(&[log.verifier()]).unwrap();
        assert_eq!(verified.signatures.len(), 1);
        assert_eq!(verified.unknown, vec![stranger.verifier().key()]);
        note.push(log.sign(note.text())).unwrap();
        assert_eq!(
            Note::parse(note.to_text().as_bytes()).unwrap().verify(&[log.verifier()]),
            Err(NoteError::DuplicateSignature(log.verifier().key()))
        );
        // Ed25519 is deterministic: the repeat is the same line, still refused.
        assert_eq!(note.signatures()[1], note.signatures()[3]);
    }

    #[test]
    fn a_signature_by_a_known_key_that_fails_rejects_the_whole_note() {
        let log = signer("log.example/a");
        let witness = signer("w.example");
        let mut note = Note::new("body\n").unwrap();
        note.push(log.sign(note.text())).unwrap();
        let mut bad = witness.sign(note.text());
        bad.bytes[0] ^= 1;
        note.push(bad).unwrap();
        let read = Note::parse(note.to_text().as_bytes()).unwrap();
        assert!(read.verify(&[log.verifier()]).is_ok(), "unknown: ignored");
        assert_eq!(
            read.verify(&[log.verifier(), witness.verifier()]),
            Err(NoteError::BadSignature(witness.verifier().key()))
        );
        // A signature of the wrong length from a known key: refused too.
        let mut short = log.sign(note.text());
        short.bytes.pop();
        let mut note = Note::new("body\n").unwrap();
        note.push(short).unwrap();
        assert!(matches!(note.verify(&[log.verifier()]), Err(NoteError::BadSignature(_))));
    }

    #[test]
    fn syntax_is_strict() {
        let good = "a\n\n\u{2014} k AAAAAWFi\n";
        assert!(Note::parse(good.as_bytes()).is_ok());
        let cases: &[(&[u8], Malformed)] = &[
            (b"a\n\n", Malformed::NoSignatures),
            ("a\n\n\u{2014} k AAAAAWFi".as_bytes(), Malformed::NoSignatures),
            ("a\n\u{2014} k AAAAAWFi\n".as_bytes(), Malformed::NoSignatures),
            ("a\r\n\n\u{2014} k AAAAAWFi\n".as_bytes(), Malformed::ControlCharacter(1)),
            ("a\t\n\n\u{2014} k AAAAAWFi\n".as_bytes(), Malformed::ControlCharacter(1)),
            (b"a\n\n\xff\n", Malformed::NotUtf8),
            ("a\n\n- k AAAAAWFi\n".as_bytes(), Malformed::SignatureLine(1)),
            ("a\n\n\u{2014} k+1 AAAAAWFi\n".as_bytes(), Malformed::SignatureLine(1)),
            ("a\n\n\u{2014} k\u{a0}x AAAAAWFi\n".as_bytes(), Malformed::SignatureLine(1)),
            ("a\n\n\u{2014} k AAAAAQ==\n".as_bytes(), Malformed::SignatureLine(1)),
            ("a\n\n\u{2014} k AAAAAWFj\n\u{2014} k AAAAAWF\n".as_bytes(), Malformed::SignatureLine(2)),
            ("a\n\n\u{2014} k AAAAAWFi \n".as_bytes(), Malformed::SignatureLine(1)),
            ("a\n\n\u{2014} k AAAAAWFi\n\n".as_bytes(), Malformed::NoSignatures),
        ];
        for (bytes, expected) in cases {
            assert_eq!(Note::parse(bytes), Err(*expected), "{:?}", String::from_utf8_lossy(bytes));
        }
        let many = format!("a\n\n{}", "\u{2014} k AAAAAWFi\n".repeat(MAX_SIGNATURES + 1));
        assert_eq!(Note::parse(many.as_bytes()), Err(Malformed::TooManySignatures));
        let enough = format!("a\n\n{}", "\u{2014} k AAAAAWFi\n".repeat(16));
        assert_eq!(Note::parse(enough.as_bytes()).unwrap().signatures().len(), 16, "the spec's minimum");
        let large = format!("{}\n\n\u{2014} k AAAAAWFi\n", "a".repeat(MAX_NOTE_BYTES));
        assert_eq!(Note::parse(large.as_bytes()), Err(Malformed::TooLarge));
        // The text may hold blank lines: the last one separates.
        let note = Note::parse("a\n\nb\n\n\u{2014} k AAAAAWFi\n".as_bytes()).unwrap();
        assert_eq!(note.text(), "a\n\nb\n");
        assert_eq!(Note::new("no newline"), Err(Malformed::Text));
        assert!(!is_valid_name("") && !is_valid_name("a b") && !is_valid_name("a+b") && is_valid_name("a.example/b"));
    }

    #[test]
    fn notes_one_after_another_split_where_their_signatures_end() {
        let log = signer("log.example/a");
        let notes: Vec<String> = (0..3)
            .map(|i| {
                let mut note = Note::new(format!("log.example/a\n{i}\n")).unwrap();
                note.push(log.sign(note.text())).unwrap();
                note.to_text()
            })
            .collect();
        // Back to back, with blank lines between, and with a torn last one.
        for joined in [notes.concat(), notes.join("\n\n"), format!("\n{}\n", notes.join("\n"))] {
            let split = split_notes(&joined);
            assert_eq!(split, notes.iter().map(String::as_str).collect::<Vec<_>>(), "{joined:?}");
            for piece in split {
                Note::parse(piece.as_bytes()).unwrap().verify(&[log.verifier()]).unwrap();
            }
        }
        let torn = format!("{}{}", notes[0], &notes[1][..10]);
        let split = split_notes(&torn);
        assert_eq!(split.len(), 2);
        assert!(Note::parse(split[1].as_bytes()).is_err());
        assert!(split_notes("").is_empty() && split_notes("\n\n").is_empty());
    }
}
