//! The SHA-256 digest: of a record, a policy module, a policy set, a Merkle
//! tree node.
//!
//! One type instead of hex or base64 strings passed around: comparisons are
//! of bytes, and a text form exists only where a person or a file format
//! reads it. Two text forms, because two audiences read digests: lower-case
//! hex where Flowgate has always shown them (receipts' record digests,
//! module digests, `flowgate policies`), and standard base64 (RFC 4648 §4,
//! padded) where the transparency-log formats demand it (checkpoint root
//! hashes, proof paths). Both decoders are strict: one spelling per digest.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
///
/// ```
/// use flowgate_log::Digest;
/// let digest = Digest::of(b"abc");
/// assert_eq!(digest.to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
/// assert_eq!(digest.to_base64(), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
/// assert_eq!(Digest::from_base64(&digest.to_base64()), Some(digest));
/// assert_eq!(digest.short(), "ba7816bf8f01");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest([u8; 32]);

/// In documents (a verified part of a log handed between machines): its
/// base64, decoded strictly.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::from_base64(&text).ok_or_else(|| serde::de::Error::custom("not a base64 SHA-256 digest"))
    }
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The digest of `parts` one after the other, as if concatenated.
    pub fn of_parts(parts: &[&[u8]]) -> Digest {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }

    /// A digest from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// Its 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest spelled as 64 hex digits (either case), or `None`.
    ///
    /// ```
    /// # use flowgate_log::Digest;
    /// assert!(Digest::from_hex("ba7816bf").is_none(), "a digest is 64 hex digits");
    /// ```
    pub fn from_hex(text: &str) -> Option<Digest> {
        crate::hex::decode::<32>(text).map(Digest)
    }

    /// Standard base64 with padding, 44 characters: the form of checkpoint
    /// root hashes and proof paths.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The digest spelled in standard padded base64, or `None`. Only the
    /// canonical spelling is accepted (no stray trailing bits, no missing
    /// padding), so a hash has one text form and a text one hash.
    pub fn from_base64(text: &str) -> Option<Digest> {
        // 32 bytes are 44 characters; anything longer is refused before it
        // is decoded.
        if text.len() != 44 {
            return None;
        }
        let bytes = STANDARD.decode(text).ok()?;
        bytes.try_into().ok().map(Digest)
    }

    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> String {
        let mut hex = self.to_string();
        hex.truncate(12);
        hex
    }
}

impl fmt::Display for Digest {
    /// Lower-case hex, 64 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_in_both_text_forms() {
        // FIPS 180-2 example and the empty string (the RFC 6962 empty tree).
        let empty = Digest::of(b"");
        assert_eq!(empty.to_string(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(empty.to_base64(), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(Digest::of_parts(&[b"a", b"", b"bc"]), Digest::of(b"abc"));
        assert_eq!(Digest::from_hex(&empty.to_string().to_uppercase()), Some(empty));
    }

    #[test]
    fn only_the_canonical_base64_spelling_is_a_digest() {
        let digest = Digest::of(b"abc");
        let text = digest.to_base64();
        assert_eq!(Digest::from_base64(&text), Some(digest));
        // The last character before `=` carries 4 bits of data and 2 that
        // must be zero: setting its lowest bit spells the same bytes
        // non-canonically.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut stray = text.clone().into_bytes();
        let value = ALPHABET.iter().position(|&c| c == stray[42]).unwrap();
        assert_eq!(value & 3, 0);
        stray[42] = ALPHABET[value | 1];
        assert_eq!(Digest::from_base64(std::str::from_utf8(&stray).unwrap()), None);
        for bad in [&text[..43], &format!("{text}="), &format!(" {}", &text[1..]), "", &text.replace('+', "-")] {
            assert_eq!(Digest::from_base64(bad), None, "{bad}");
        }
        // 33 bytes in 44 characters.
        assert_eq!(Digest::from_base64(&STANDARD.encode([7u8; 33])[..44]), None);
    }
}
