//! The bundle archive: every bundle a host activated, by digest, and every
//! policy set it decided with, so that the exact set a receipt names can be
//! found again (`flowgate audit replay --archive DIR`).
//!
//! ```text
//! DIR/bundles/<bundle digest>/manifest.toml, policy.wasm[, signatures.toml]
//! DIR/sets/<policy set id>.json   {"content": "<the text the id digests>",
//!                                  "bundles": ["<bundle digest>", …]}
//! ```
//!
//! `content` is exactly the text the policy set's content id is the SHA-256
//! of (each policy's name, version, content digest and state, and the
//! host's handling of unmatched flows), and `bundles` the bundle of each of
//! its policies, in the same order. Entries are written once, through a
//! temporary name (created new, never through a link) and a rename, and
//! never changed. Reading one back checks everything against the id it is
//! kept under: the content against the id, each bundle against its digest,
//! and each bundle's name, version and content digest against its line. An
//! archive is stored by the platform and read by whoever replays, so it is
//! not trusted either.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, LoadLimits};
use crate::decide::PolicySet;
use crate::fs;
use crate::model::Digest;

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

/// An archived set's file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFile {
    content: String,
    bundles: Vec<String>,
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

    /// Keeps the content and bundles of `set`, once per activation.
    pub(crate) fn keep_set(&self, set: &PolicySet) -> Result<(), LogError> {
        if self.archived.load(Ordering::Acquire) == set.activation {
            return Ok(());
        }
        let path = self.set_path(&set.id);
        if std::fs::symlink_metadata(&path).is_err() {
            let file = SetFile {
                content: set.content_text(),
                bundles: set.policies.iter().map(|p| p.info.bundle_digest.to_string()).collect(),
            };
            let text = serde_json::to_string_pretty(&file).expect("a set file always serialises");
            fs::replace(&path, 0o644, text.as_bytes())?;
        }
        self.archived.store(set.activation, Ordering::Release);
        Ok(())
    }

    fn set_path(&self, id: &Digest) -> PathBuf {
        self.dir.join("sets").join(format!("{id}.json"))
    }

    /// The bundles of the policy set `id`, read back and checked against
    /// the id (see the module docs).
    pub fn set(&self, id: &Digest) -> Result<Vec<Bundle>, LogError> {
        let path = self.set_path(id);
        let invalid = |problem: String| LogError::ArchiveSet { path: path.clone(), problem };
        let bytes = fs::read_capped(&path, MAX_SET_BYTES)?;
        let file: SetFile = serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not a set file: {e}")))?;
        if Digest::of(file.content.as_bytes()) != *id {
            return Err(invalid(format!(
                "its content is not that of policy set {id} (it digests to {}): the list was changed",
                Digest::of(file.content.as_bytes())
            )));
        }
        let policies: Vec<Vec<&str>> = file
            .content
            .lines()
            .filter_map(|line| line.strip_prefix("policy "))
            .map(|line| line.split(' ').collect())
            .collect();
        if policies.len() != file.bundles.len() {
            return Err(invalid(format!(
                "it lists {} bundles for the {} policies of its content",
                file.bundles.len(),
                policies.len()
            )));
        }
        let mut bundles = Vec::with_capacity(policies.len());
        for (fields, digest) in policies.iter().zip(&file.bundles) {
            let digest =
                Digest::from_hex(digest).ok_or_else(|| invalid(format!("`{digest}` is not a bundle digest")))?;
            let bundle = self.bundle(&digest)?;
            let (name, version, content) = (&bundle.manifest.name, &bundle.manifest.version, bundle.content_digest());
            if fields.len() != 4 || fields[0] != name || fields[1] != version || fields[2] != content.to_string() {
                return Err(invalid(format!(
                    "bundle {} is `{name}` {version} (content {}), not the policy its line names",
                    digest.short(),
                    content.short()
                )));
            }
            bundles.push(bundle);
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
