//! A policy bundle: a manifest and the Wasm module it describes.
//!
//! On disk a bundle is a directory holding `manifest.toml` and
//! `policy.wasm`; a directory of policies holds one bundle per
//! subdirectory. A bundle can also be made from bytes, for policies that
//! arrive over the network or are embedded in a binary.

use std::path::{Path, PathBuf};

use crate::error::Error;
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
}

impl Bundle {
    /// A bundle from a manifest's text and a module's bytes; `origin` names it in errors.
    pub fn from_bytes(origin: &str, manifest: &str, wasm: Vec<u8>) -> Result<Bundle, Error> {
        let manifest = Manifest::parse(&format!("{origin}/{MANIFEST_FILE}"), manifest)?;
        Ok(Bundle { manifest, wasm, origin: format!("{origin}/{MODULE_FILE}") })
    }

    /// Reads the bundle in `dir` (`manifest.toml` and `policy.wasm`).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Bundle, Error> {
        let dir = dir.as_ref();
        let manifest_path = dir.join(MANIFEST_FILE);
        let module_path = dir.join(MODULE_FILE);
        let manifest = std::fs::read_to_string(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        let wasm = std::fs::read(&module_path).map_err(|e| Error::io(&module_path, e))?;
        let manifest = Manifest::parse(&manifest_path.display().to_string(), &manifest)?;
        Ok(Bundle { manifest, wasm, origin: module_path.display().to_string() })
    }

    /// Reads every bundle in the subdirectories of `dir`, sorted by directory name.
    pub fn all_in_dir(dir: impl AsRef<Path>) -> Result<Vec<Bundle>, Error> {
        bundle_dirs(dir.as_ref())?.into_iter().map(Bundle::from_dir).collect()
    }
}

/// The subdirectories of `dir` that hold a manifest, sorted.
pub(crate) fn bundle_dirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.join(MANIFEST_FILE).is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}
