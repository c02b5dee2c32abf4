//! Ed25519 keys: the log's signing key, and the witnesses'.
//!
//! The bytes are Ed25519's (RFC 8032). The text forms are Flowgate's own,
//! unchanged from the host's `flowgate key new`: `ID.key` holds
//! `flowgate-ed25519-secret:` and the 32-byte seed in hex (created with
//! mode 0600, never overwritten), `ID.pub` holds `ed25519:` and the public
//! key in hex. The signed-note world names keys differently (a *vkey*,
//! `name+keyid+base64`, see [`note`](crate::note)); both forms read into the
//! same [`PublicKey`].
//!
//! Verification is strict (`verify_strict`): no malleable signatures and
//! no small-order keys, so a signature has one valid spelling.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::hex;

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "flowgate-ed25519-secret:";

/// The largest key file read: a key is one short line.
const MAX_KEY_FILE: u64 = 4096;

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
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = text.trim().strip_prefix(PUBLIC_PREFIX).and_then(hex::decode::<32>);
        bytes.and_then(|b| PublicKey::from_bytes(&b)).ok_or(KeyError::NotAPublicKey)
    }

    /// Reads an `ID.pub` file.
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let text = read_small(path)?;
        PublicKey::parse(&text).map_err(|err| err.at(path))
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }
}

impl std::str::FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<PublicKey, KeyError> {
        PublicKey::parse(text)
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
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        let seed = text.trim().strip_prefix(SECRET_PREFIX).and_then(hex::decode::<32>);
        seed.map(|seed| SecretKey::from_seed(&seed)).ok_or(KeyError::NotASecretKey)
    }

    /// Reads a key written by [`SecretKey::write_pair`]; the file must be a
    /// regular file that only its owner can read.
    pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
        let text = read_small(path)?;
        if PublicKey::parse(&text).is_ok() {
            return Err(KeyError::PublicNotSecret(path.to_owned()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let metadata = std::fs::symlink_metadata(path).map_err(|e| KeyError::io(path, e))?;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Exposed { path: path.to_owned(), mode });
            }
        }
        SecretKey::parse(&text).map_err(|err| err.at(path))
    }

    /// Writes `ID.key` (mode 0600) and `ID.pub` into `dir`, refusing to
    /// replace either; returns their paths.
    pub fn write_pair(&self, dir: &Path, id: &str) -> Result<(PathBuf, PathBuf), KeyError> {
        let valid = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !id.starts_with('.');
        if !valid {
            return Err(KeyError::BadId(id.to_owned()));
        }
        let secret = dir.join(format!("{id}.key"));
        let public = dir.join(format!("{id}.pub"));
        for path in [&secret, &public] {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(KeyError::Exists(path.clone()));
            }
        }
        write_new(&secret, 0o600, format!("{SECRET_PREFIX}{}\n", hex::encode(self.seed())).as_bytes())?;
        write_new(&public, 0o644, format!("{}\n", self.public()).as_bytes())?;
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

/// A key could not be read, parsed or written.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The text is not `ed25519:` and 64 hex digits of a valid key.
    #[error("is not a public key (`{PUBLIC_PREFIX}` and 64 hex digits of a valid key)")]
    NotAPublicKey,
    /// The text is not `flowgate-ed25519-secret:` and 64 hex digits.
    #[error("is not a Flowgate secret key (`{SECRET_PREFIX}` and 64 hex digits)")]
    NotASecretKey,
    /// A key file's content is wrong.
    #[error("`{path}` {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Box<KeyError>,
    },
    /// A secret key file others can read.
    #[error("`{path}` has mode {mode:o}; a secret key must be readable by its owner only (chmod 600)")]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A public key given where the secret one is needed.
    #[error("`{0}` holds a public key; signing needs the secret key (the `.key` file)")]
    PublicNotSecret(PathBuf),
    /// A key file that is not text.
    #[error("`{0}` is not a key: not UTF-8 text")]
    NotText(PathBuf),
    /// A key id that would not make a plain file name.
    #[error("`{0}` is not a key id: use letters, digits, `-`, `_` and `.`")]
    BadId(String),
    /// Keys are never overwritten.
    #[error("`{0}` exists already; keys are never overwritten")]
    Exists(PathBuf),
    /// A key file larger than any key.
    #[error("`{0}` is too large to be a key")]
    TooLarge(PathBuf),
    /// The operating system gave no randomness.
    #[error("no randomness for a new key: {0}")]
    NoRandomness(String),
    /// Reading or writing failed.
    #[error("`{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

impl KeyError {
    fn io(path: &Path, source: std::io::Error) -> KeyError {
        KeyError::Io { path: path.to_owned(), source }
    }

    fn at(self, path: &Path) -> KeyError {
        KeyError::File { path: path.to_owned(), problem: Box::new(self) }
    }
}

/// A key file's text, refusing links and anything larger than a key.
fn read_small(path: &Path) -> Result<String, KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| KeyError::io(path, e))?;
    let mut text = String::new();
    let read = file.take(MAX_KEY_FILE + 1).read_to_string(&mut text);
    match read {
        Ok(n) if n as u64 > MAX_KEY_FILE => Err(KeyError::TooLarge(path.to_owned())),
        Ok(_) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::InvalidData => Err(KeyError::NotText(path.to_owned())),
        Err(err) => Err(KeyError::io(path, err)),
    }
}

/// Writes a new file with `mode`, refusing one that exists (or a link in
/// its place), and syncs it.
fn write_new(path: &Path, mode: u32, bytes: &[u8]) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| KeyError::io(path, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| KeyError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(PublicKey::parse(&secret_text), Err(KeyError::NotAPublicKey)));
        assert!(matches!(SecretKey::parse(&public.to_string()), Err(KeyError::NotASecretKey)));
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
        assert!(matches!(key.write_pair(dir.path(), "log-1"), Err(KeyError::Exists(_))));
        assert!(matches!(key.write_pair(dir.path(), "../x"), Err(KeyError::BadId(_))));
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = SecretKey::read(&secret).unwrap_err();
        assert!(matches!(err, KeyError::Exposed { mode: 0o640, .. }), "{err}");
        // A public key given where a secret one is expected says so.
        assert!(matches!(SecretKey::read(&public), Err(KeyError::PublicNotSecret(_))));
        std::fs::write(dir.path().join("bin.pub"), [0xff, 0xfe]).unwrap();
        assert!(matches!(PublicKey::read(&dir.path().join("bin.pub")), Err(KeyError::NotText(_))));
        std::fs::write(dir.path().join("big.pub"), vec![b'a'; 5000]).unwrap();
        assert!(matches!(PublicKey::read(&dir.path().join("big.pub")), Err(KeyError::TooLarge(_))));
    }
}
