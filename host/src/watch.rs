//! Watching a directory of bundles and reloading what changes in it.
//!
//! A bundle directory that appears is added, one whose files change is
//! replaced, one that disappears is removed. Filesystem events only wake the
//! watcher: it waits until the directory has been quiet for [`QUIET`], then
//! compares every bundle's content with what it saw last, so a file written
//! in several steps is read once, whole. A bundle read mid-write fails its
//! checks (a truncated module does not compile, a half manifest does not
//! parse) and is rejected without replacing anything; when the write
//! completes, the next event loads it. Editors' temporary files and swap
//! files are never read: only `manifest.toml` and `policy.wasm` are.
//!
//! Events come from the platform's notification API (`notify`); where that
//! is not available, from polling every [`POLL_INTERVAL`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use notify::{PollWatcher, RecommendedWatcher, RecursiveMode, Watcher as _};
use sha2::{Digest, Sha256};

use crate::bundle::{Bundle, MANIFEST_FILE, MODULE_FILE, bundle_dirs};
use crate::error::Error;
use crate::events::{PolicyEvent, error_chain};
use crate::host::Host;

/// How long the directory must be quiet before it is read.
pub const QUIET: Duration = Duration::from_millis(200);
/// How often the directory is polled where notifications are not available.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Keeps a host in step with a directory until dropped.
pub struct Watcher {
    wake: mpsc::Sender<Wake>,
    thread: Option<JoinHandle<()>>,
    _events: Box<dyn notify::Watcher + Send>,
}

enum Wake {
    Changed,
    Stop,
}

impl Host {
    /// Watches `dir` and loads, replaces and removes policies as their
    /// bundles change in it (see [`Host::load`] for what a version must pass).
    /// Watching stops when the returned [`Watcher`] is dropped.
    pub fn watch(self: &Arc<Self>, dir: impl Into<PathBuf>) -> Result<Watcher, Error> {
        let dir = dir.into();
        let (wake, woken) = mpsc::channel();
        let notify_wake = wake.clone();
        let on_event = move |_event: notify::Result<notify::Event>| {
            let _ = notify_wake.send(Wake::Changed);
        };
        let events = watch_events(&dir, on_event).map_err(|source| Error::io(&dir, source))?;
        let host = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("flowgate-watch".into())
            .spawn(move || {
                let mut seen = HashMap::new();
                sync(&host, &dir, &mut seen);
                while let Ok(Wake::Changed) = woken.recv() {
                    // Let a burst of events (a copy, an editor's save) settle.
                    loop {
                        match woken.recv_timeout(QUIET) {
                            Ok(Wake::Changed) => continue,
                            Err(RecvTimeoutError::Timeout) => break,
                            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    sync(&host, &dir, &mut seen);
                }
            })
            .map_err(|source| Error::io("<watch thread>", source))?;
        Ok(Watcher { wake, thread: Some(thread), _events: events })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.wake.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Native notifications on `dir` and its bundles, or polling where they fail.
fn watch_events(
    dir: &Path,
    on_event: impl Fn(notify::Result<notify::Event>) + Send + Clone + 'static,
) -> std::io::Result<Box<dyn notify::Watcher + Send>> {
    let native = RecommendedWatcher::new(on_event.clone(), notify::Config::default())
        .and_then(|mut watcher| watcher.watch(dir, RecursiveMode::Recursive).map(|()| watcher));
    if let Ok(watcher) = native {
        return Ok(Box::new(watcher));
    }
    let config = notify::Config::default().with_poll_interval(POLL_INTERVAL).with_compare_contents(true);
    let mut watcher = PollWatcher::new(on_event, config).map_err(std::io::Error::other)?;
    watcher.watch(dir, RecursiveMode::Recursive).map_err(std::io::Error::other)?;
    Ok(Box::new(watcher))
}

/// What the watcher last saw in one bundle directory.
struct Seen {
    fingerprint: [u8; 32],
    /// The policy it loaded from there, if it loaded one.
    loaded: Option<String>,
}

/// Brings the host in step with the directory.
fn sync(host: &Host, dir: &Path, seen: &mut HashMap<PathBuf, Seen>) {
    let present = match bundle_dirs(dir) {
        Ok(present) => present,
        Err(err) => {
            host.emit(PolicyEvent::Rejected { origin: dir.display().to_string(), reason: error_chain(&err) });
            return;
        }
    };
    for bundle_dir in &present {
        let (Ok(manifest), Ok(wasm)) =
            (std::fs::read(bundle_dir.join(MANIFEST_FILE)), std::fs::read(bundle_dir.join(MODULE_FILE)))
        else {
            continue; // a bundle being created: its second file has not landed yet
        };
        let fingerprint: [u8; 32] = Sha256::new().chain_update(&manifest).chain_update(&wasm).finalize().into();
        let previous = seen.get(bundle_dir);
        if previous.is_some_and(|seen| seen.fingerprint == fingerprint) {
            continue;
        }
        let mut loaded = previous.and_then(|seen| seen.loaded.clone());
        let origin = bundle_dir.display().to_string();
        let bundle = String::from_utf8(manifest)
            .map_err(|_| format!("`{MANIFEST_FILE}` is not UTF-8"))
            .and_then(|manifest| Bundle::from_bytes(&origin, &manifest, wasm).map_err(|err| error_chain(&err)));
        match bundle {
            Err(reason) => host.emit(PolicyEvent::Rejected { origin, reason }),
            Ok(bundle) => {
                let manifest = &bundle.manifest;
                let digest = crate::compiled::hex(&Sha256::digest(&bundle.wasm));
                // The host may already serve it (loaded at start from this directory).
                if host.serves(&manifest.name, &manifest.version, &digest) || host.load(&bundle).is_ok() {
                    loaded = Some(manifest.name.clone());
                }
            }
        }
        seen.insert(bundle_dir.clone(), Seen { fingerprint, loaded });
    }
    let gone: Vec<PathBuf> = seen.keys().filter(|known| !present.contains(known)).cloned().collect();
    for bundle_dir in gone {
        if let Some(name) = seen.remove(&bundle_dir).and_then(|seen| seen.loaded) {
            host.remove(&name);
        }
    }
}
