//! The bundle archive: every bundle a host activated, by digest, and every
//! policy set it decided with, so that the exact set a receipt names can be
//! found again (`flowgate audit replay --archive DIR`).
//!
//! ```text
//! DIR/bundles/<bundle digest>/manifest.toml, policy.wasm[, signatures.toml]
//! DIR/sets/<policy set id>.txt   one line per policy: name version bundle-digest
//! ```
//!
//! Entries are written once, through a temporary name (created new, never
//! through a link) and a rename, and never changed. Reading one back checks
//! its digest: an archive is stored by the platform and read by whoever
//! replays, so it is not trusted either.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bundle::{Bundle, LoadLimits};
use crate::decide::PolicySet;
use crate::fs;
use crate::model::{Digest, hex};

use super::error::LogError;

/// The largest set file read: a line per policy.
const MAX_SET_BYTES: u64 = 1 << 20;

/// Where a host keeps the bundles and sets it decided with.
#[derive(Debug)]
pub struct Archive {
    dir: PathBuf,
    /// The activation whose set was archived last, to archive each set once.
    archived: AtomicU64,
}

impl Archive {
    /// Opens (or creates) the archive in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Archive, LogError> {
        let dir = dir.into();
        fs::create_private_dir(&dir, 0o755)?;
        for sub in ["bundles", "sets"] {
            fs::create_private_dir(&dir.join(sub), 0o755)?;
        }
        Ok(Archive { dir, archived: AtomicU64::new(0) })
    }

    /// Keeps `bundle`'s files, unless a bundle of the same digest is kept.
    pub(crate) fn keep_bundle(&self, bundle: &Bundle) -> Result<(), LogError> {
        let target = self.dir.join("bundles").join(bundle.digest().to_string());
        fs::write_dir_new(&target, 0o644, bundle.files())?;
        Ok(())
    }

    /// Keeps the list of `set`'s bundles, once per activation.
    pub(crate) fn keep_set(&self, set: &PolicySet) -> Result<(), LogError> {
        if self.archived.load(Ordering::Acquire) == set.activation {
            return Ok(());
        }
        let path = self.dir.join("sets").join(format!("{}.txt", set.id));
        if !path.exists() {
            let text: String = set
                .policies
                .iter()
                .map(|p| format!("{} {} {}\n", p.info.name, p.info.version, p.info.bundle_digest))
                .collect();
            fs::replace(&path, 0o644, text.as_bytes())?;
        }
        self.archived.store(set.activation, Ordering::Release);
        Ok(())
    }

    /// The bundles of the policy set `id`, read back and checked against
    /// their digests.
    pub fn set(&self, id: &Digest) -> Result<Vec<Bundle>, LogError> {
        let path = self.dir.join("sets").join(format!("{id}.txt"));
        let bytes = fs::read_capped(&path, MAX_SET_BYTES)?;
        let invalid = |line, problem| LogError::ArchiveSet { path: path.clone(), line, problem };
        let text = String::from_utf8(bytes).map_err(|_| invalid(0, "not UTF-8 text"))?;
        let mut bundles = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let digest =
                line.split(' ').nth(2).ok_or_else(|| invalid(number + 1, "expected `name version bundle-digest`"))?;
            let digest = hex::decode::<32>(digest)
                .map(Digest::from_bytes)
                .ok_or_else(|| invalid(number + 1, "the bundle digest is not 64 hex digits"))?;
            bundles.push(self.bundle(&digest)?);
        }
        Ok(bundles)
    }

    fn bundle(&self, digest: &Digest) -> Result<Bundle, LogError> {
        let dir = self.dir.join("bundles").join(digest.to_string());
        let bundle = Bundle::from_dir_with(&dir, &LoadLimits::default())
            .map_err(|source| LogError::ArchiveBundle { dir: dir.clone(), source })?;
        let found = bundle.digest();
        if found != *digest {
            return Err(LogError::ArchiveMismatch { dir, found });
        }
        Ok(bundle)
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
