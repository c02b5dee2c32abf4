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
//! through a link) and a rename, and never changed. Reading one back checks its digest: an archive is stored
//! by the platform and read by whoever replays, so it is not trusted either.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bundle::Bundle;
use crate::digest::Digest;
use crate::error::Error;
use crate::files::{is_real_dir, read_capped};
use crate::keys::write_new;
use crate::load_limits::LoadLimits;
use crate::policy_set::PolicySet;

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
    pub fn open(dir: impl Into<PathBuf>) -> Result<Archive, Error> {
        let dir = dir.into();
        for sub in ["bundles", "sets"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| Error::io(dir.join(sub), e))?;
        }
        if !is_real_dir(&dir) {
            return Err(Error::io(&dir, std::io::Error::other("an archive must be a directory, not a link")));
        }
        Ok(Archive { dir, archived: AtomicU64::new(0) })
    }

    /// Keeps `bundle`'s files, unless a bundle of the same digest is kept.
    pub(crate) fn keep_bundle(&self, bundle: &Bundle) -> Result<(), Error> {
        let target = self.dir.join("bundles").join(bundle.digest().to_string());
        if target.exists() {
            return Ok(());
        }
        let temporary = self.dir.join("bundles").join(format!(".{}.{}.tmp", bundle.digest(), std::process::id()));
        let _ = std::fs::remove_dir_all(&temporary);
        std::fs::create_dir(&temporary).map_err(|e| Error::io(&temporary, e))?;
        for (name, bytes) in bundle.files() {
            write_new(&temporary.join(name), 0o644, bytes)?;
        }
        match std::fs::rename(&temporary, &target) {
            Ok(()) => Ok(()),
            // Another host sharing the archive kept the same bundle first.
            Err(_) if target.exists() => {
                let _ = std::fs::remove_dir_all(&temporary);
                Ok(())
            }
            Err(err) => Err(Error::io(&target, err)),
        }
    }

    /// Keeps the list of `set`'s bundles, once per activation.
    pub(crate) fn keep_set(&self, set: &PolicySet) -> Result<(), Error> {
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
            let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
            let _ = std::fs::remove_file(&temporary);
            write_new(&temporary, 0o644, text.as_bytes())?;
            std::fs::rename(&temporary, &path).map_err(|e| Error::io(&path, e))?;
        }
        self.archived.store(set.activation, Ordering::Release);
        Ok(())
    }

    /// The bundles of the policy set `id`, read back and checked against
    /// their digests.
    pub fn set(&self, id: &Digest) -> Result<Vec<Bundle>, Error> {
        let path = self.dir.join("sets").join(format!("{id}.txt"));
        let bytes = read_capped(&path, MAX_SET_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::io(&path, std::io::Error::other("not UTF-8 text")))?;
        let mut bundles = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let invalid =
                |problem: &str| Error::io(&path, std::io::Error::other(format!("line {}: {problem}", number + 1)));
            let digest = line.split(' ').nth(2).ok_or_else(|| invalid("expected `name version bundle-digest`"))?;
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("the bundle digest is not 64 hex digits"));
            }
            bundles.push(self.bundle(digest)?);
        }
        Ok(bundles)
    }

    fn bundle(&self, digest: &str) -> Result<Bundle, Error> {
        let dir = self.dir.join("bundles").join(digest);
        let bundle = Bundle::from_dir_with(&dir, &LoadLimits::default())?;
        if bundle.digest().to_string() != digest {
            return Err(Error::io(&dir, std::io::Error::other("its files do not match the digest it is kept under")));
        }
        Ok(bundle)
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
