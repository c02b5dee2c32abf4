//! The on-disk cache of compiled modules.
//!
//! Compiling a policy takes milliseconds to seconds; loading a compiled one
//! takes microseconds. An entry is keyed by the module's SHA-256, the
//! wasmtime version and the engine's configuration, so a restart, or a
//! reload of an unchanged module, does not compile again.
//!
//! Loading a compiled module runs native code as-is, so an entry is never
//! trusted blindly: it carries its key and a SHA-256 of its payload, and
//! wasmtime checks its own header too. A corrupted, truncated or foreign
//! entry is discarded and rebuilt. Entries are written to a temporary file
//! and renamed into place, so a reader never sees half an entry.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

const MAGIC: &[u8; 8] = b"FGCACHE1";
const HEADER: usize = MAGIC.len() + 32 + 32;

/// A directory of compiled modules for one engine configuration.
#[derive(Debug)]
pub(crate) struct ModuleCache {
    dir: PathBuf,
    engine_key: [u8; 32],
}

impl ModuleCache {
    pub(crate) fn new(dir: &Path, engine: &Engine) -> ModuleCache {
        // The compatibility hash covers wasmtime's version and every setting
        // that changes generated code.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let mut key = Sha256::new();
        key.update(b"flowgate ");
        key.update(env!("CARGO_PKG_VERSION").as_bytes());
        key.update(hasher.finish().to_le_bytes());
        ModuleCache { dir: dir.to_owned(), engine_key: key.finalize().into() }
    }

    /// The compiled module for `wasm`: from the cache if a sound entry is
    /// there, otherwise compiled and stored. A cache that cannot be written
    /// is not an error: the module is still returned.
    pub(crate) fn module(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Module> {
        let key = self.key(wasm);
        let path = self.dir.join(format!("{}.cwasm", crate::compiled::hex(&key[..16])));
        if let Ok(bytes) = std::fs::read(&path) {
            if let Some(module) = self.load(engine, &key, &bytes) {
                return Ok(module);
            }
            let _ = std::fs::remove_file(&path);
        }
        let module = Module::new(engine, wasm)?;
        if let Ok(payload) = module.serialize() {
            let _ = self.store(&path, &key, &payload);
        }
        Ok(module)
    }

    /// The entry's key: the module's digest under this engine configuration.
    fn key(&self, wasm: &[u8]) -> [u8; 32] {
        let mut key = Sha256::new();
        key.update(self.engine_key);
        key.update(Sha256::digest(wasm));
        key.finalize().into()
    }

    fn load(&self, engine: &Engine, key: &[u8; 32], bytes: &[u8]) -> Option<Module> {
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC || &bytes[8..40] != key {
            return None;
        }
        let payload = &bytes[HEADER..];
        if Sha256::digest(payload).as_slice() != &bytes[40..72] {
            return None;
        }
        // SAFETY: the payload is byte for byte what `Module::serialize`
        // produced for this module under this engine configuration: its key
        // and its SHA-256 match, and wasmtime checks its own header again.
        #[allow(unsafe_code)]
        unsafe {
            Module::deserialize(engine, payload).ok()
        }
    }

    fn store(&self, path: &Path, key: &[u8; 32], payload: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut entry = Vec::with_capacity(HEADER + payload.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(key);
        entry.extend_from_slice(&Sha256::digest(payload));
        entry.extend_from_slice(payload);
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, &entry)?;
        std::fs::rename(&temporary, path)
    }
}
