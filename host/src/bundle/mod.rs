//! Bundles, and what vouches for them: a policy's manifest and Wasm module
//! read from disk within caps, the shape caps checked before compiling, the
//! regulators' keys and signatures, and the trust file they are verified
//! against.
//!
//! On disk a bundle is a directory holding `manifest.toml`, `policy.wasm`
//! and, once signed, `signatures.toml`; a directory of policies holds one
//! bundle per subdirectory. A bundle can also be made from bytes, for
//! policies that arrive over the network or are embedded in a binary.
//!
//! A bundle is exactly those files (a closed list): anything else in its
//! directory, such as an editor's temporary file, is not part of it and is
//! never read. Its [`Bundle::digest`] covers all of them, so any change to
//! any of them is a different bundle.

mod error;
mod load_limits;
mod shape;
mod manifest;
mod keys;
mod signature;
mod trust;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs;
use crate::model::Digest;

pub use error::BundleError;
pub use keys::{KeyError, PublicKey, SecretKey};
pub use load_limits::LoadLimits;
pub(crate) use manifest::key_line;
pub use manifest::{LimitOverrides, Manifest, TestVector};
pub use shape::ShapeError;
pub(crate) use shape::check as check_shape;
pub use signature::{BundleSignature, SIGNATURES_FILE};
pub use trust::{TrustError, TrustFileError, TrustPolicy, UnmatchedEntry};

/// The file name of a bundle's manifest.
pub const MANIFEST_FILE: &str = "manifest.toml";
/// The file name of a bundle's Wasm module.
pub const MODULE_FILE: &str = "policy.wasm";
/// The largest `signatures.toml` read.
const MAX_SIGNATURES_BYTES: u64 = 64 << 10;

/// A manifest and its Wasm module, not yet compiled.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The module's bytes.
    pub wasm: Vec<u8>,
    /// Its module's file (or label), for error messages about the module.
    pub origin: String,
    /// The signatures it carries (unverified until a trust policy checks them).
    pub signatures: Vec<BundleSignature>,
    /// The directory (or label) it came from.
    source: String,
    manifest_digest: Digest,
    module_digest: Digest,
    signatures_digest: Option<Digest>,
    /// The files' text as read, so the bundle can be archived byte for byte.
    manifest_text: Arc<str>,
    signatures_text: Option<Arc<str>>,
}

impl Bundle {
    /// A bundle from a manifest's text and a module's bytes; `origin` names it in errors.
    pub fn from_bytes(origin: &str, manifest: &str, wasm: Vec<u8>) -> Result<Bundle, BundleError> {
        let manifest_digest = Digest::of(manifest.as_bytes());
        let parsed = Manifest::parse(&format!("{origin}/{MANIFEST_FILE}"), manifest)?;
        Ok(Bundle {
            manifest: parsed,
            module_digest: Digest::of(&wasm),
            wasm,
            origin: format!("{origin}/{MODULE_FILE}"),
            source: origin.to_owned(),
            signatures: Vec::new(),
            manifest_digest,
            signatures_digest: None,
            manifest_text: manifest.into(),
            signatures_text: None,
        })
    }

    /// This bundle with the signatures of a `signatures.toml`'s text.
    pub fn with_signatures(mut self, text: &str) -> Result<Bundle, BundleError> {
        self.signatures = signature::parse(&format!("{}/{SIGNATURES_FILE}", self.source), text)?;
        self.signatures_digest = Some(Digest::of(text.as_bytes()));
        self.signatures_text = Some(text.into());
        Ok(self)
    }

    /// Reads the bundle in `dir`, with the default [`LoadLimits`].
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        Bundle::from_dir_with(dir, &LoadLimits::default())
    }

    /// Reads the bundle in `dir`: each file must be a regular file (not a
    /// link, FIFO or device) within the caps of `limits`. `signatures.toml`
    /// is optional.
    pub fn from_dir_with(dir: impl AsRef<Path>, limits: &LoadLimits) -> Result<Bundle, BundleError> {
        let dir = dir.as_ref();
        let manifest_path = dir.join(MANIFEST_FILE);
        let module_path = dir.join(MODULE_FILE);
        let manifest = fs::read_capped(&manifest_path, limits.manifest_bytes)?;
        let wasm = fs::read_capped(&module_path, limits.module_bytes)?;
        let manifest = String::from_utf8(manifest).map_err(|_| BundleError::Manifest {
            origin: manifest_path.display().to_string(),
            line: 1,
            column: 1,
            message: "the file is not UTF-8 text".into(),
        })?;
        let bundle = Bundle::from_bytes(&dir.display().to_string(), &manifest, wasm)?;
        let signatures_path = dir.join(SIGNATURES_FILE);
        match fs::read_capped(&signatures_path, MAX_SIGNATURES_BYTES) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| BundleError::Signatures {
                    origin: signatures_path.display().to_string(),
                    problem: "the file is not UTF-8 text".into(),
                })?;
                bundle.with_signatures(&text)
            }
            Err(err) if err.is_not_found() => Ok(bundle),
            Err(err) => Err(err.into()),
        }
    }

    /// Reads every bundle in the subdirectories of `dir`, sorted by directory name.
    pub fn all_in_dir(dir: impl AsRef<Path>, limits: &LoadLimits) -> Result<Vec<Bundle>, BundleError> {
        bundle_dirs(dir.as_ref())?.into_iter().map(|dir| Bundle::from_dir_with(dir, limits)).collect()
    }

    /// What identifies this exact bundle: a digest over the digests of its
    /// files, so no byte of any of them can change without changing it.
    pub fn digest(&self) -> Digest {
        let none = Digest::from_bytes([0; 32]);
        Digest::of_parts(&[
            self.manifest_digest.as_bytes(),
            self.module_digest.as_bytes(),
            self.signatures_digest.as_ref().unwrap_or(&none).as_bytes(),
        ])
    }

    /// What decides: a digest over the name, version and the files a
    /// signature covers (not the signatures themselves, so another
    /// regulator's signature changes no decision's provenance).
    pub fn content_digest(&self) -> Digest {
        Digest::of(&self.signed_message())
    }

    /// The directory (or label) it was read from: how a person names the bundle.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Its `manifest.toml`, as errors about the manifest name it.
    pub fn manifest_origin(&self) -> String {
        format!("{}/{MANIFEST_FILE}", self.source)
    }

    /// The manifest's text, as read.
    pub(crate) fn manifest_text(&self) -> &str {
        &self.manifest_text
    }

    /// The keys whose signatures no longer match this bundle's name,
    /// version and files: signed before the module or manifest changed (a
    /// rebuild), or tampered with.
    pub fn stale_signatures(&self) -> Vec<PublicKey> {
        let message = self.signed_message();
        self.signatures.iter().filter(|signature| !signature.verifies(&message)).map(|s| s.key).collect()
    }

    /// SHA-256 of `manifest.toml`.
    pub fn manifest_digest(&self) -> Digest {
        self.manifest_digest
    }

    /// The exact bytes a signature of this bundle covers.
    pub(crate) fn signed_message(&self) -> Vec<u8> {
        signature::signed_message(
            &self.manifest.name,
            &self.manifest.version,
            &self.manifest_digest,
            &self.module_digest,
        )
    }

    /// This bundle without its module's bytes (its digests stay): what a
    /// serving policy keeps to be verified again.
    pub(crate) fn without_module(&self) -> Bundle {
        Bundle {
            manifest: self.manifest.clone(),
            wasm: Vec::new(),
            origin: self.origin.clone(),
            source: self.source.clone(),
            signatures: self.signatures.clone(),
            manifest_digest: self.manifest_digest,
            module_digest: self.module_digest,
            signatures_digest: self.signatures_digest,
            manifest_text: Arc::clone(&self.manifest_text),
            signatures_text: self.signatures_text.clone(),
        }
    }

    /// Its files, as read: `manifest.toml`, `policy.wasm`, and
    /// `signatures.toml` if it has one.
    pub(crate) fn files(&self) -> Vec<(&'static str, &[u8])> {
        let mut files = vec![(MANIFEST_FILE, self.manifest_text.as_bytes()), (MODULE_FILE, self.wasm.as_slice())];
        if let Some(text) = &self.signatures_text {
            files.push((SIGNATURES_FILE, text.as_bytes()));
        }
        files
    }

    /// Adds `key`'s signature to the bundle in `dir` (replacing an earlier
    /// one by the same key), writing `signatures.toml` atomically.
    pub fn sign_dir(dir: impl AsRef<Path>, key: &SecretKey) -> Result<Bundle, BundleError> {
        let dir = dir.as_ref();
        let mut bundle = Bundle::from_dir(dir)?;
        let signed = signature::sign(key, &bundle.signed_message());
        bundle.signatures.retain(|s| s.key != signed.key);
        bundle.signatures.push(signed);
        let text = signature::render(&bundle.signatures);
        fs::replace(&dir.join(SIGNATURES_FILE), 0o644, text.as_bytes())?;
        bundle.with_signatures(&text)
    }
}

/// The subdirectories of `dir` that hold a manifest, sorted. A link to a
/// directory is not followed: a bundle lives inside the policies directory.
pub(crate) fn bundle_dirs(dir: &Path) -> Result<Vec<PathBuf>, fs::FileError> {
    let dirs = fs::list(dir)?.into_iter().map(|entry| entry.path());
    Ok(dirs
        .filter(|path| fs::is_real_dir(path) && std::fs::symlink_metadata(path.join(MANIFEST_FILE)).is_ok())
        .collect())
}
