//! Witness cosignatures (C2SP `tlog-cosignature`, Ed25519 `cosignature/v1`).
//!
//! A cosignature is a witness's statement that, at the time it gives, the
//! checkpoint is the largest *consistent* tree it has seen for that
//! origin. It is a note signature line like any other, made with
//! signature type `0x04`:
//!
//! - key id: `SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]`;
//! - signed message: `cosignature/v1\ntime <T>\n` followed by the whole
//!   checkpoint text (its final newline included, no signature lines), `T`
//!   in decimal without leading zeros;
//! - signature bytes: `T` as 8 bytes big-endian, then the 64-byte Ed25519
//!   signature (so the line's base64 holds 4 + 8 + 64 bytes).
//!
//! Why a witness at all: the platform holds the log key, so it can sign
//! two different histories, or cut its log's tail and sign what is left.
//! A regulator running [`witness`](crate::witness) cosigns only trees that
//! extend the last one it cosigned, so a checkpoint that carries its
//! cosignature cannot belong to a forked or shortened history.

use crate::keys::{PublicKey, SecretKey};
use crate::note::{Note, NoteError, Signature, SignatureKind, Verifier, key_id};

/// The largest timestamp the format allows (2^63 − 1).
pub const MAX_TIMESTAMP: u64 = (1 << 63) - 1;

/// The message a cosignature signs, for checkpoint text `text` at `time`.
pub fn message(text: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// The time a valid cosignature of `text` by `key` claims, or `None`.
pub(crate) fn check(key: &PublicKey, text: &str, signature: &[u8]) -> Option<u64> {
    let signature = <&[u8; 72]>::try_from(signature).ok()?;
    let (time, signature) = signature.split_at(8);
    let time = u64::from_be_bytes(time.try_into().ok()?);
    if time > MAX_TIMESTAMP {
        return None;
    }
    let signature = <&[u8; 64]>::try_from(signature).ok()?;
    key.verifies(message(text, time).as_bytes(), signature).then_some(time)
}

/// A witness's key: makes cosignatures under its name.
#[derive(Debug, Clone)]
pub struct Cosigner {
    name: String,
    key_id: u32,
    key: SecretKey,
}

impl Cosigner {
    /// A cosigner named `name` (a schema-less URL is recommended, e.g.
    /// `regulator.example/witness`).
    pub fn new(name: &str, key: SecretKey) -> Result<Cosigner, NoteError> {
        let verifier = Verifier::cosigner(name, key.public())?;
        Ok(Cosigner { name: name.to_owned(), key_id: verifier.key().key_id, key })
    }

    /// The verifier of its cosignatures.
    pub fn verifier(&self) -> Verifier {
        Verifier::cosigner(&self.name, self.key.public()).expect("the name was checked")
    }

    /// Its cosignature of `note`'s text at `time` (Unix seconds).
    ///
    /// ```
    /// use flowgate_log::cosignature::Cosigner;
    /// use flowgate_log::keys::SecretKey;
    /// use flowgate_log::note::Note;
    /// let witness = Cosigner::new("regulator.example/w", SecretKey::generate().unwrap()).unwrap();
    /// let mut note = Note::new("log.example\n1\nbjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n").unwrap();
    /// note.push(witness.cosign(&note, 1_700_000_000)).unwrap();
    /// let verified = note.verify(&[witness.verifier()]).unwrap();
    /// assert_eq!(verified.signatures[0].timestamp, Some(1_700_000_000));
    /// ```
    pub fn cosign(&self, note: &Note, time: u64) -> Signature {
        let time = time.min(MAX_TIMESTAMP);
        let mut bytes = time.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.key.sign(message(note.text(), time).as_bytes()));
        Signature { name: self.name.clone(), key_id: self.key_id, bytes }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The key id of a cosigner (signature type `0x04`).
pub fn cosigner_key_id(name: &str, key: &PublicKey) -> u32 {
    key_id(name, SignatureKind::Cosignature.type_byte(), key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::KeyRef;

    /// Computed independently with Python's `cryptography` (Ed25519) and
    /// `hashlib`, see `testdata/cosignature_vector.py`: the witness key of
    /// seed 0x01 × 32 named `witness.example/w1` cosigning the C2SP
    /// checkpoint example at time 1679315147.
    const CHECKPOINT: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    const VECTOR: &str = include_str!("../testdata/cosignature_vector.txt");

    fn vector() -> (String, String, String) {
        let mut lines = VECTOR.lines().filter(|l| !l.starts_with('#'));
        let mut next = || lines.next().unwrap().to_owned();
        (next(), next(), next())
    }

    #[test]
    fn the_independent_vector_is_reproduced_and_verifies() {
        let (vkey, line, note_sig_line) = vector();
        let witness = Cosigner::new("witness.example/w1", SecretKey::from_seed(&[1; 32])).unwrap();
        assert_eq!(witness.verifier().to_vkey(), vkey);
        let mut note = Note::new(CHECKPOINT).unwrap();
        let cosignature = witness.cosign(&note, 1_679_315_147);
        assert_eq!(cosignature.line(), line, "Ed25519 is deterministic: the same bytes as the script");
        note.push(cosignature).unwrap();
        let verifier = Verifier::parse_vkey(&vkey).unwrap();
        let verified = note.verify(std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(verified.signatures[0].timestamp, Some(1_679_315_147));
        // The same key as a plain note signer (type 0x01) has another id
        // and signs the bare text: the script's line for that verifies as
        // Ed25519, and is no cosignature.
        let note_signer = crate::note::Signer::new("witness.example/w1", SecretKey::from_seed(&[1; 32])).unwrap();
        assert_eq!(note_signer.sign(CHECKPOINT).line(), note_sig_line);
        assert_ne!(note_signer.verifier().key().key_id, verifier.key().key_id);
    }

    #[test]
    fn a_cosignature_covers_its_time_and_the_whole_text() {
        let witness = Cosigner::new("w.example", SecretKey::generate().unwrap()).unwrap();
        let note = Note::new(CHECKPOINT).unwrap();
        let cosignature = witness.cosign(&note, 1000);
        let verify = |text: &str, signature: &Signature| {
            let mut note = Note::new(text).unwrap();
            note.push(signature.clone()).unwrap();
            note.verify(&[witness.verifier()])
        };
        assert!(verify(CHECKPOINT, &cosignature).is_ok());
        // Another time in the signature bytes: refused.
        let mut moved = cosignature.clone();
        moved.bytes[7] ^= 1;
        let key = KeyRef { name: "w.example".into(), key_id: witness.verifier().key().key_id };
        assert_eq!(verify(CHECKPOINT, &moved), Err(NoteError::BadSignature(key.clone())));
        // Another text (an extension line added): refused.
        assert_eq!(verify(&format!("{CHECKPOINT}ext\n"), &cosignature), Err(NoteError::BadSignature(key.clone())));
        // A timestamp beyond 2^63 - 1: refused even if signed.
        let mut far = cosignature.clone();
        far.bytes[..8].copy_from_slice(&(MAX_TIMESTAMP + 1).to_be_bytes());
        assert_eq!(check(witness.verifier().public_key(), CHECKPOINT, &far.bytes), None);
        // A plain Ed25519 note verifier of the same name and key does not
        // accept it: another key id, so it is unknown to it.
        let plain = Verifier::ed25519("w.example", *witness.verifier().public_key()).unwrap();
        assert!(matches!(
            verify(CHECKPOINT, &cosignature).and({
                let mut n = Note::new(CHECKPOINT).unwrap();
                n.push(cosignature.clone()).unwrap();
                n.verify(&[plain])
            }),
            Err(NoteError::UnknownKey { .. })
        ));
        assert_eq!(cosigner_key_id("w.example", witness.verifier().public_key()), key.key_id);
    }
}
