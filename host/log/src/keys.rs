//! Ed25519 keys: regulators' bundle-signing keys, the log's signing key,
//! and the witnesses'.
//!
//! The bytes are Ed25519's (RFC 8032). The text forms are Flowgate's own,
//! those of `flowgate key new`: `ID.key` holds `flowgate-ed25519-secret:`
//! and the 32-byte seed in hex (created with mode 0600, never overwritten),
//! `ID.pub` holds `ed25519:` and the public key in hex, the form a trust
//! file pastes in. The signed-note world names keys differently (a *vkey*,
//! `name+keyid+base64`, see [`note`](crate::note)); both forms read into
//! the same [`PublicKey`].
//!
//! Verification is strict (`verify_strict`): no malleable signatures and
//! no small-order keys, so a signature has one valid spelling.

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::fs::{self, FileError};
use crate::hex;

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "flowgate-ed25519-secret:";

/// The largest key file read: a key is one short line.
const MAX_KEY_FILE: u64 = 256;

/// Why a key could not be read, made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read or written, or is not private.
    #[error(transparent)]
    File(#[from] FileError),
    /// The text is not a public key.
    #[error("is not a public key (`{PUBLIC_PREFIX}` and 64 hex digits of a valid key)")]
    NotAPublicKey,
    /// The file does not hold a public key.
    #[error("`{path}` is not a public key (`{PUBLIC_PREFIX}` and 64 hex digits of a valid key)")]
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
    /// A public key given where the secret one is needed.
    #[error("`{path}` holds a public key; signing needs the secret key (the `.key` file)")]
    PublicNotSecret {
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

/// An Ed25519 public key.
///
/// ```
/// use flowgate_log::keys::PublicKey;
/// let line = "ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// let key: PublicKey = line.parse().unwrap();
/// assert_eq!(key.to_string(), line);
/// assert!("ed25519:00".parse::<PublicKey>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// A key from its 32 bytes, if they are a valid point of small order
    /// neither (a weak key would accept forged signatures).
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<PublicKey> {
        VerifyingKey::from_bytes(bytes).ok().filter(|key| !key.is_weak()).map(PublicKey)
    }

    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Parses `ed25519:<64 hex digits>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Option<PublicKey> {
        let bytes = hex::decode::<32>(text.trim().strip_prefix(PUBLIC_PREFIX)?)?;
        PublicKey::from_bytes(&bytes)
    }

    /// Reads an `ID.pub` file (as `flowgate key new` writes it).
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let bytes = fs::read_capped(path, MAX_KEY_FILE)?;
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(PublicKey::parse)
            .ok_or_else(|| KeyError::NotPublic { path: path.to_owned() })
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }
}

impl std::str::FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<PublicKey, KeyError> {
        PublicKey::parse(text).ok_or(KeyError::NotAPublicKey)
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

/// An Ed25519 signing key. Its `Debug` form shows only the public key.
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
        Ok(SecretKey::from_seed(&seed))
    }

    /// The key of a 32-byte seed (RFC 8032's private key).
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// Its seed: handle with care.
    pub fn seed(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Parses `flowgate-ed25519-secret:<64 hex digits>`.
    pub fn parse(text: &str) -> Option<SecretKey> {
        let seed = hex::decode::<32>(text.trim().strip_prefix(SECRET_PREFIX)?)?;
        Some(SecretKey::from_seed(&seed))
    }

    /// Reads a key written by [`SecretKey::write_pair`]; the file must be a
    /// regular file that only its owner can read.
    pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
        let bytes = fs::read_capped(path, MAX_KEY_FILE)?;
        let text = std::str::from_utf8(&bytes).ok();
        if text.and_then(PublicKey::parse).is_some() {
            return Err(KeyError::PublicNotSecret { path: path.to_owned() });
        }
        fs::check_private(path, &fs::metadata(path)?, true)?;
        text.and_then(SecretKey::parse).ok_or_else(|| KeyError::NotSecret { path: path.to_owned() })
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
        fs::write_new(&secret, 0o600, format!("{SECRET_PREFIX}{}\n", hex::encode(self.seed())).as_bytes())?;
        fs::write_new(&public, 0o644, format!("{}\n", self.public()).as_bytes())?;
        Ok((secret, public))
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FileProblem;

    #[test]
    fn rfc_8032_test_1_signs_as_published() {
        // RFC 8032 §7.1, TEST 1: the empty message.
        let seed = hex::decode::<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        let key = SecretKey::from_seed(&seed);
        assert_eq!(
            key.public().to_string(),
            "ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let signature = key.sign(b"");
        assert_eq!(
            hex::encode(&signature),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(key.public().verifies(b"", &signature));
        assert!(!key.public().verifies(b"x", &signature));
        let mut edited = signature;
        edited[63] ^= 1;
        assert!(!key.public().verifies(b"", &edited));
    }

    #[test]
    fn text_forms_round_trip_and_refuse_the_wrong_form() {
        let key = SecretKey::generate().unwrap();
        let public = key.public();
        assert_eq!(PublicKey::parse(&format!(" {public}\n")).unwrap(), public);
        let secret_text = format!("{SECRET_PREFIX}{}", hex::encode(key.seed()));
        assert_eq!(SecretKey::parse(&secret_text).unwrap().public(), public);
        assert!(PublicKey::parse(&secret_text).is_none());
        assert!(matches!(secret_text.parse::<PublicKey>(), Err(KeyError::NotAPublicKey)));
        assert!(SecretKey::parse(&public.to_string()).is_none());
        // A small-order point is a valid encoding, and no key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(&identity).is_none());
        assert!(format!("{key:?}").contains(&public.to_string()), "Debug shows the public half only");
        assert!(!format!("{key:?}").contains(&hex::encode(key.seed())));
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap();
        let (secret, public) = key.write_pair(dir.path(), "log-1").unwrap();
        assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(SecretKey::read(&secret).unwrap().public(), key.public());
        assert_eq!(PublicKey::read(&public).unwrap(), key.public());
        assert!(matches!(key.write_pair(dir.path(), "log-1"), Err(KeyError::Exists { .. })));
        assert!(matches!(key.write_pair(dir.path(), "../x"), Err(KeyError::BadId { .. })));
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = SecretKey::read(&secret).unwrap_err();
        assert!(
            matches!(
                &err,
                KeyError::File(FileError::Refused { problem: FileProblem::Permissive { mode: 0o640, .. }, .. })
            ),
            "{err}"
        );
        // A public key given where a secret one is expected says so.
        assert!(matches!(SecretKey::read(&public), Err(KeyError::PublicNotSecret { .. })));
        std::fs::write(dir.path().join("bin.pub"), [0xff, 0xfe]).unwrap();
        assert!(matches!(PublicKey::read(&dir.path().join("bin.pub")), Err(KeyError::NotPublic { .. })));
        std::fs::write(dir.path().join("big.pub"), vec![b'a'; 5000]).unwrap();
        assert!(matches!(
            PublicKey::read(&dir.path().join("big.pub")),
            Err(KeyError::File(FileError::Refused { problem: FileProblem::TooLarge { .. }, .. }))
        ));
    }
}
