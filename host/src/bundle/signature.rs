//! Bundle signatures: what a regulator's signature covers, and the
//! `signatures.toml` file that carries them inside a bundle.
//!
//! A signature covers the policy's name and version and the SHA-256 of each
//! file the bundle consists of (`manifest.toml` and `policy.wasm`), so no
//! file can be swapped between bundles or versions. Several regulators can
//! sign the same bundle; each signature names its public key.
//!
//! ```toml
//! [[signature]]
//! key = "ed25519:3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
//! signature = "<128 hex digits>"
//! ```

use serde::{Deserialize, Serialize};

use crate::model::{Digest, hex};

use super::error::BundleError;
use super::keys::{PublicKey, SecretKey};

/// The file name of a bundle's signatures.
pub const SIGNATURES_FILE: &str = "signatures.toml";

/// One signature of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSignature {
    /// The key that signed.
    pub key: PublicKey,
    signature: [u8; 64],
}

impl BundleSignature {
    /// Whether this is a valid signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8]) -> bool {
        self.key.verifies(message, &self.signature)
    }
}

/// The exact bytes a signature covers.
pub(crate) fn signed_message(name: &str, version: &str, manifest: &Digest, module: &Digest) -> Vec<u8> {
    format!(
        "flowgate bundle signature v1\nname {name}\nversion {version}\nmanifest.toml sha256 {manifest}\npolicy.wasm sha256 {module}\n"
    )
    .into_bytes()
}

/// Signs `message` with `key`.
pub(crate) fn sign(key: &SecretKey, message: &[u8]) -> BundleSignature {
    BundleSignature { key: key.public(), signature: key.sign(message) }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignaturesFile {
    #[serde(default)]
    signature: Vec<SignatureText>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureText {
    key: String,
    signature: String,
}

/// The most signatures one bundle may carry.
const MAX_SIGNATURES: usize = 64;

/// Parses a `signatures.toml`; `origin` names it in errors.
pub(crate) fn parse(origin: &str, text: &str) -> Result<Vec<BundleSignature>, BundleError> {
    let bad = |message: String| BundleError::Signatures { origin: origin.to_owned(), problem: message };
    let file: SignaturesFile = toml::from_str(text).map_err(|err| bad(err.message().to_owned()))?;
    if file.signature.len() > MAX_SIGNATURES {
        return Err(bad(format!("more than {MAX_SIGNATURES} signatures")));
    }
    file.signature
        .iter()
        .enumerate()
        .map(|(n, entry)| {
            let key = PublicKey::parse(&entry.key)
                .ok_or_else(|| bad(format!("signature {}: `key` is not `ed25519:` and 64 hex digits", n + 1)))?;
            let signature = hex::decode::<64>(&entry.signature)
                .ok_or_else(|| bad(format!("signature {}: `signature` is not 128 hex digits", n + 1)))?;
            Ok(BundleSignature { key, signature })
        })
        .collect()
}

/// The text of a `signatures.toml` holding `signatures`.
pub(crate) fn render(signatures: &[BundleSignature]) -> String {
    let file = SignaturesFile {
        signature: signatures
            .iter()
            .map(|s| SignatureText { key: s.key.to_string(), signature: hex::encode(&s.signature) })
            .collect(),
    };
    let body = toml::to_string(&file).expect("signatures serialise");
    format!(
        "# Signatures of this bundle. Each covers the policy's name and version and\n\
         # the SHA-256 of manifest.toml and policy.wasm (`flowgate sign`, `flowgate verify`).\n{body}"
    )
}
