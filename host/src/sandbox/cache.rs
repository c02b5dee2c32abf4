//! The on-disk cache of compiled modules.
//!
//! Compiling a policy takes milliseconds to seconds; loading a compiled one
//! takes microseconds. An entry is keyed by the module's SHA-256, the
//! wasmtime version and the engine's configuration, so a restart, or a
//! reload of an unchanged module, does not compile again.
//!
//! Loading a compiled entry runs its native code as-is, so the cache is a
//! trust boundary. The trust assumption: only the user the host runs as
//! can write the cache directory or read its key. The host checks it and
//! refuses a directory that is a link, belongs to another user, or that
//! group or others may write (as ssh does with its keys). Every entry
//! carries an HMAC-SHA256 under a random key kept in the directory with
//! mode 0600, so an entry can be made only by someone who can read that
//! key: that is, by someone who could already replace the host's binary.
//! A corrupted, truncated, foreign or forged entry is discarded and the
//! module compiled again. Entries are written to a fresh temporary file
//! (created exclusively, never through a link) and renamed into place, so
//! a reader never sees half an entry and a planted link is never followed.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::{Engine, Module};

use crate::fs::{self, FileError};
use crate::model::Digest;

use super::error::SandboxError;

const MAGIC: &[u8; 8] = b"FGCACHE2";
const HEADER: usize = MAGIC.len() + 32 + 32;
/// The file holding the key entries are authenticated with.
const KEY_FILE: &str = "key";
/// The largest entry read back (compiled code is a few times its module).
const MAX_ENTRY_BYTES: u64 = 256 << 20;

/// A directory of compiled modules for one engine configuration.
#[derive(Debug)]
pub(crate) struct ModuleCache {
    dir: PathBuf,
    engine_key: Digest,
    mac_key: [u8; 32],
}

impl ModuleCache {
    /// Opens (or creates, with mode 0700) the cache in `dir`, refusing a
    /// directory or key file that someone other than this user could change.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<ModuleCache, SandboxError> {
        fs::create_private_dir(dir, 0o700).map_err(unsafe_cache)?;
        fs::check_private(dir, &fs::metadata(dir).map_err(unsafe_cache)?, false).map_err(unsafe_cache)?;
        let mac_key = load_or_create_key(&dir.join(KEY_FILE))?;
        // The compatibility hash covers wasmtime's version and every setting
        // that changes generated code.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key =
            Digest::of_parts(&[b"flowgate ", env!("CARGO_PKG_VERSION").as_bytes(), &hasher.finish().to_le_bytes()]);
        Ok(ModuleCache { dir: dir.to_owned(), engine_key, mac_key })
    }

    /// The compiled module for `wasm`: from the cache if a sound entry is
    /// there, otherwise compiled (by `compile`) and stored. A cache that cannot be written
    /// is not an error: the module is still returned.
    pub(crate) fn module<E>(
        &self,
        engine: &Engine,
        wasm: &[u8],
        compile: impl FnOnce() -> Result<Module, E>,
    ) -> Result<Module, E> {
        let key = Digest::of_parts(&[self.engine_key.as_bytes(), Digest::of(wasm).as_bytes()]);
        let path = self.dir.join(format!("{}.cwasm", &key.to_string()[..32]));
        if let Ok(bytes) = fs::read_capped(&path, MAX_ENTRY_BYTES)
            && let Some(module) = self.load(engine, &key, &bytes)
        {
            return Ok(module);
        }
        let module = compile()?;
        if let Ok(payload) = module.serialize() {
            let _ = self.store(&path, &key, &payload);
        }
        Ok(module)
    }

    /// The entry's authentication tag: over its magic, key and payload.
    fn tag(&self, key: &Digest, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.mac_key).expect("HMAC takes keys of any length");
        mac.update(MAGIC);
        mac.update(key.as_bytes());
        mac.update(payload);
        mac
    }

    fn load(&self, engine: &Engine, key: &Digest, bytes: &[u8]) -> Option<Module> {
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC || &bytes[8..40] != key.as_bytes() {
            return None;
        }
        let payload = &bytes[HEADER..];
        self.tag(key, payload).verify_slice(&bytes[40..72]).ok()?;
        // SAFETY: `deserialize` runs the payload's native code as-is. The
        // payload is authenticated: its HMAC is under a key that only this
        // user can read, in a directory only this user can write (checked
        // when the cache was opened), so it is what this host serialised
        // for this module and engine configuration, unless someone who
        // could already replace the host's binary forged it. That is the
        // trust assumption the docs state; wasmtime checks its own header
        // and engine compatibility again.
        #[allow(unsafe_code)]
        unsafe {
            Module::deserialize(engine, payload).ok()
        }
    }

    fn store(&self, path: &Path, key: &Digest, payload: &[u8]) -> Result<(), FileError> {
        let mut entry = Vec::with_capacity(HEADER + payload.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(key.as_bytes());
        entry.extend_from_slice(&self.tag(key, payload).finalize().into_bytes());
        entry.extend_from_slice(payload);
        fs::replace(path, 0o600, &entry)
    }
}

/// Reads the cache key, or creates it if there is none yet.
fn load_or_create_key(path: &Path) -> Result<[u8; 32], SandboxError> {
    if std::fs::symlink_metadata(path).is_err() {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|err| SandboxError::Engine(format!("no randomness for a cache key: {err}").into()))?;
        match fs::write_new(path, 0o600, &key) {
            Ok(()) => return Ok(key),
            // Another host created it first: use theirs.
            Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(SandboxError::Cache(err)),
        }
    }
    let bytes = fs::read_capped(path, 32).map_err(unsafe_cache)?;
    fs::check_private(path, &fs::metadata(path).map_err(unsafe_cache)?, true).map_err(unsafe_cache)?;
    let size = bytes.len() as u64;
    let problem = fs::FileProblem::WrongSize { size, expected: 32 };
    bytes.try_into().map_err(|_| SandboxError::UnsafeCache { path: path.to_owned(), problem })
}

/// A file problem of the cache's directory or key says why it cannot hold
/// the cache; any other failure is the cache's own.
fn unsafe_cache(err: FileError) -> SandboxError {
    match err {
        FileError::Refused { path, problem } => SandboxError::UnsafeCache { path, problem },
        other => SandboxError::Cache(other),
    }
}
