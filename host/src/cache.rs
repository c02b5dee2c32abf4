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

use std::fs::{DirBuilder, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::{Engine, Module};

use crate::digest::Digest;
use crate::error::Error;
use crate::files::read_capped;

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
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<ModuleCache, Error> {
        let unsafe_dir = |problem: String| Error::UnsafeCache { path: dir.to_owned(), problem };
        if std::fs::symlink_metadata(dir).is_err() {
            DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| Error::io(dir, e))?;
        }
        let metadata = std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
        if !metadata.is_dir() {
            return Err(unsafe_dir("is not a directory (a link to one is not followed)".into()));
        }
        check_owner(&metadata, 0o022).map_err(unsafe_dir)?;
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
    /// there, otherwise compiled and stored. A cache that cannot be written
    /// is not an error: the module is still returned.
    pub(crate) fn module(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Module> {
        let key = Digest::of_parts(&[self.engine_key.as_bytes(), Digest::of(wasm).as_bytes()]);
        let path = self.dir.join(format!("{}.cwasm", &key.to_string()[..32]));
        if let Ok(bytes) = read_capped(&path, MAX_ENTRY_BYTES) {
            if let Some(module) = self.load(engine, &key, &bytes) {
                return Ok(module);
            }
        }
        let module = Module::new(engine, wasm)?;
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

    fn store(&self, path: &Path, key: &Digest, payload: &[u8]) -> std::io::Result<()> {
        let mut entry = Vec::with_capacity(HEADER + payload.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(key.as_bytes());
        entry.extend_from_slice(&self.tag(key, payload).finalize().into_bytes());
        entry.extend_from_slice(payload);
        let temporary = self.dir.join(format!(".{}.{}.tmp", std::process::id(), random_hex()?));
        let mut file = create_private(&temporary)?;
        let written = file.write_all(&entry).and_then(|()| file.sync_all());
        if let Err(err) = written.and_then(|()| std::fs::rename(&temporary, path)) {
            let _ = std::fs::remove_file(&temporary);
            return Err(err);
        }
        Ok(())
    }
}

/// Reads the cache key, or creates it if there is none yet.
fn load_or_create_key(path: &Path) -> Result<[u8; 32], Error> {
    let unsafe_key = |problem: String| Error::UnsafeCache { path: path.to_owned(), problem };
    if std::fs::symlink_metadata(path).is_err() {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|err| unsafe_key(format!("no randomness for a new key: {err}")))?;
        match create_private(path) {
            Ok(mut file) => {
                file.write_all(&key).and_then(|()| file.sync_all()).map_err(|e| Error::io(path, e))?;
                return Ok(key);
            }
            // Another host created it first: use theirs.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(Error::io(path, err)),
        }
    }
    let bytes = read_capped(path, 32)?;
    let metadata = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    check_owner(&metadata, 0o077).map_err(unsafe_key)?;
    bytes.try_into().map_err(|_| unsafe_key("is not a 32-byte key".into()))
}

/// Refuses what another user owns, or what the `forbidden` mode bits
/// (group and others' write, or any access) would let others change.
fn check_owner(metadata: &std::fs::Metadata, forbidden: u32) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me {
        return Err(format!("belongs to user {}, not to the user the host runs as ({me})", metadata.uid()));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & forbidden != 0 {
        return Err(format!(
            "has mode {mode:o}; group and others must not be able to {}",
            if forbidden == 0o022 { "write it" } else { "read or write it" }
        ));
    }
    Ok(())
}

/// Creates `path` for writing, mode 0600, failing if anything (a file or
/// a link) is already there.
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

fn random_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|err| std::io::Error::other(err.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
