//! Regulators' signing keys: Ed25519 key pairs in two small text files.
//!
//! `ID.key` holds the secret (created with mode 0600, never overwritten);
//! `ID.pub` holds the public key on one line, `ed25519:` and 64 hex digits,
//! the form a trust file pastes in.

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::fs::{self, FileError};
use crate::model::hex;

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "flowgate-ed25519-secret:";

/// Why a key could not be read, made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read or written, or is not private.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file does not hold a public key.
    #[error("`{path}` is not a public key (`{PUBLIC_PREFIX}` and 64 hex digits)")]
    NotPublic {
        /// The file.
        path: PathBuf,
    },
    /// The file does not hold a secret key.
    #[error("`{path}` is not a Flowgate secret key (`{SECRET_PREFIX}` and 64 hex digits)")]
    NotSecret {
        /// The file.
        path: PathBuf,
    },
    /// A key id that cannot name files.
    #[error("`{id}` is not a key id: use letters, digits, `-`, `_` and `.`")]
    BadId {
        /// The id asked for.
        id: String,
    },
    /// A key file of that name exists: keys are never overwritten.
    #[error("`{path}` exists already; keys are never overwritten")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The operating system gave no randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    NoRandomness(String),
}

/// A public key, as a trust file names it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses `ed25519:<64 hex digits>`.
    ///
    /// ```
    /// let line = "ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    /// let key: flowgate::PublicKey = line.parse().unwrap();
    /// assert_eq!(key.to_string(), line);
    /// assert!("ed25519:00".parse::<flowgate::PublicKey>().is_err());
    /// ```
    pub fn parse(text: &str) -> Option<PublicKey> {
        let bytes = hex::decode::<32>(text.trim().strip_prefix(PUBLIC_PREFIX)?)?;
        VerifyingKey::from_bytes(&bytes).ok().map(PublicKey)
    }

    /// Reads an `ID.pub` file (as `flowgate key new` writes it).
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let bytes = fs::read_capped(path, 256)?;
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(PublicKey::parse)
            .ok_or_else(|| KeyError::NotPublic { path: path.to_owned() })
    }

    /// Whether `signature` is this key's signature of `message` (strict
    /// Ed25519 verification: no malleable or small-order forms).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }
}

impl std::str::FromStr for PublicKey {
    type Err = String;

    fn from_str(text: &str) -> Result<PublicKey, String> {
        PublicKey::parse(text).ok_or_else(|| format!("expected `{PUBLIC_PREFIX}` and 64 hex digits of a valid key"))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A secret signing key, read from an `ID.key` file. Its `Debug` form
/// shows only the public key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public())
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<SecretKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|err| KeyError::NoRandomness(err.to_string()))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Reads a key written by [`SecretKey::write_pair`]; the file must be a
    /// regular file that only its owner can read.
    pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
        let bytes = fs::read_capped(path, 256)?;
        fs::check_private(path, &fs::metadata(path)?, true)?;
        let text = std::str::from_utf8(&bytes).ok().map(str::trim);
        let seed = text.and_then(|t| t.strip_prefix(SECRET_PREFIX)).and_then(hex::decode::<32>);
        seed.map(|seed| SecretKey(SigningKey::from_bytes(&seed)))
            .ok_or_else(|| KeyError::NotSecret { path: path.to_owned() })
    }

    /// Writes `ID.key` (mode 0600) and `ID.pub` into `dir`, refusing to
    /// replace either; returns their paths.
    pub fn write_pair(&self, dir: &Path, id: &str) -> Result<(PathBuf, PathBuf), KeyError> {
        let valid = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !id.starts_with('.');
        if !valid {
            return Err(KeyError::BadId { id: id.to_owned() });
        }
        let secret = dir.join(format!("{id}.key"));
        let public = dir.join(format!("{id}.pub"));
        for path in [&secret, &public] {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(KeyError::Exists { path: path.clone() });
            }
        }
        fs::write_new(&secret, 0o600, format!("{SECRET_PREFIX}{}\n", hex::encode(self.0.as_bytes())).as_bytes())?;
        fs::write_new(&public, 0o644, format!("{}\n", self.public()).as_bytes())?;
        Ok((secret, public))
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}
