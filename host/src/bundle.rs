//! A policy bundle: a manifest and the Wasm module it describes.
//!
//! On disk a bundle is a directory holding `manifest.toml` and
//! `policy.wasm`; a directory of policies holds one bundle per
//! subdirectory. A bundle can also be made from bytes, for policies that
//! arrive over the network or are embedded in a binary.
//!
//! A bundle is exactly those two files (a closed list): anything else in
//! its directory, such as an editor's temporary file, is not part of it
//! and is never read. Its [`Bundle::digest`] covers both files, so any
//! change to either is a different bundle.

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::Error;
use crate::files::{is_real_dir, read_capped};
use crate::load_limits::LoadLimits;
use crate::manifest::Manifest;

/// The file name of a bundle's manifest.
pub const MANIFEST_FILE: &str = "manifest.toml";
/// The file name of a bundle's Wasm module.
pub const MODULE_FILE: &str = "policy.wasm";

/// A manifest and its Wasm module, not yet compiled.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The module's bytes.
    pub wasm: Vec<u8>,
    /// Where it came from, for error messages (a path or a label).
    pub origin: String,
    /// The digest of the bundle's files (see [`Bundle::digest`]).
    digest: Digest,
}

impl Bundle {
    /// A bundle from a manifest's text and a module's bytes; `origin` names it in errors.
    pub fn from_bytes(origin: &str, manifest: &str, wasm: Vec<u8>) -> Result<Bundle, Error> {
        let digest = files_digest(manifest.as_bytes(), &wasm);
        let manifest = Manifest::parse(&format!("{origin}/{MANIFEST_FILE}"), manifest)?;
        Ok(Bundle { manifest, wasm, origin: format!("{origin}/{MODULE_FILE}"), digest })
    }

    /// Reads the bundle in `dir` (`manifest.toml` and `policy.wasm`), with
    /// the default [`LoadLimits`].
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Bundle, Error> {
        Bundle::from_dir_with(dir, &LoadLimits::default())
    }

    /// Reads the bundle in `dir`: each file must be a regular file (not a
    /// link, FIFO or device) within the caps of `limits`.
    pub fn from_dir_with(dir: impl AsRef<Path>, limits: &LoadLimits) -> Result<Bundle, Error> {
        let dir = dir.as_ref();
        let manifest_path = dir.join(MANIFEST_FILE);
        let module_path = dir.join(MODULE_FILE);
        let manifest = read_capped(&manifest_path, limits.manifest_bytes)?;
        let wasm = read_capped(&module_path, limits.module_bytes)?;
        let digest = files_digest(&manifest, &wasm);
        let manifest = String::from_utf8(manifest).map_err(|_| Error::Manifest {
            origin: manifest_path.display().to_string(),
            line: 1,
            column: 1,
            message: "the file is not UTF-8 text".into(),
        })?;
        let manifest = Manifest::parse(&manifest_path.display().to_string(), &manifest)?;
        Ok(Bundle { manifest, wasm, origin: module_path.display().to_string(), digest })
    }

    /// Reads every bundle in the subdirectories of `dir`, sorted by directory name.
    pub fn all_in_dir(dir: impl AsRef<Path>, limits: &LoadLimits) -> Result<Vec<Bundle>, Error> {
        bundle_dirs(dir.as_ref())?.into_iter().map(|dir| Bundle::from_dir_with(dir, limits)).collect()
    }

    /// What identifies this exact bundle: a digest over its manifest and
    /// its module, each named and length-prefixed, so no byte of either
    /// can change, and no byte move between them, without changing it.
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

/// The digest of a bundle's two files.
fn files_digest(manifest: &[u8], wasm: &[u8]) -> Digest {
    let manifest_len = (manifest.len() as u64).to_le_bytes();
    let wasm_len = (wasm.len() as u64).to_le_bytes();
    Digest::of_parts(&[
        MANIFEST_FILE.as_bytes(),
        b"\0",
        &manifest_len,
        manifest,
        MODULE_FILE.as_bytes(),
        b"\0",
        &wasm_len,
        wasm,
    ])
}

/// The subdirectories of `dir` that hold a manifest, sorted. A link to a
/// directory is not followed: a bundle lives inside the policies directory.
pub(crate) fn bundle_dirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if is_real_dir(&path) && std::fs::symlink_metadata(path.join(MANIFEST_FILE)).is_ok() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}
