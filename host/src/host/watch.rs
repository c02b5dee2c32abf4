//! Watching a directory of bundles and reloading what changes in it.
//!
//! A policy's identity is the name in its manifest. A bundle directory
//! that appears is added, one whose files change is replaced, and a policy
//! is removed only when no directory claims its name any more. A second
//! directory claiming a name that another directory serves is rejected (the
//! serving one keeps serving); a bundle that moves (its old path gone and
//! the same name elsewhere within one quiet period) keeps serving
//! throughout. Every change to a bundle's files is activated or rejected
//! with a reason, never ignored.
//!
//! Filesystem events only wake the watcher: it waits until the directory
//! has been quiet for [`QUIET`], then compares every bundle's digest with
//! what it saw last, so a file written in several steps is read once,
//! whole. A bundle read mid-write fails its checks (a truncated module does
//! not compile, a half manifest does not parse) and is rejected without
//! replacing anything; when the write completes, the next event loads it.
//! Only `manifest.toml` and `policy.wasm` are read, as regular files within
//! the load caps: editors' temporary files, links, FIFOs and devices can
//! neither be read nor stall the watcher.
//!
//! Events come from the platform's notification API (`notify`); where that
//! is not available, from polling every [`POLL_INTERVAL`].
//!
//! The trust file may be a link (Kubernetes mounts a ConfigMap as links
//! into a directory it swaps atomically): its directory is watched, and
//! the file it leads to is read again every [`TRUST_RECHECK`] too, so a
//! swap is seen wherever the link points. A changed trust file is applied
//! before any bundle is read again: a revocation takes effect first, and
//! every bundle is then judged by the new trust.
//!
//! With a trust file, the floor under each policy is the highest version
//! activated since start (and the trust file's `[minimum]`): removing a
//! policy's directory and adding an older signed version is a downgrade,
//! refused like any other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use notify::{PollWatcher, RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::bundle::{Bundle, TrustPolicy, bundle_dirs};
use crate::error::Error;
use crate::fs::{FileAction, FileError};
use crate::model::Digest;

use super::Host;
use super::events::{PolicyEvent, error_chain};

/// How long the directory must be quiet before it is read.
pub const QUIET: Duration = Duration::from_millis(200);
/// How often the directory is polled where notifications are not available.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often the trust file is read again, whatever the events say.
pub const TRUST_RECHECK: Duration = Duration::from_secs(1);

/// Keeps a host in step with a directory (and its trust file) until dropped.
pub struct Watcher {
    wake: mpsc::Sender<Wake>,
    thread: Option<JoinHandle<()>>,
    _events: Vec<Box<dyn notify::Watcher + Send>>,
}

enum Wake {
    Changed,
    Stop,
}

impl Host {
    /// Watches `dir` and loads, replaces and removes policies as their
    /// bundles change in it (see [`Host::load`] for what a version must
    /// pass), and the trust file given to [`HostBuilder::trust_file`](crate::HostBuilder::trust_file).
    /// Watching stops when the returned [`Watcher`] is dropped.
    pub fn watch(self: &Arc<Self>, dir: impl Into<PathBuf>) -> Result<Watcher, Error> {
        let dir = dir.into();
        let (wake, woken) = mpsc::channel();
        let notify_wake = wake.clone();
        let on_event = move |event: notify::Result<notify::Event>| {
            // Reading a bundle is an access, not a change: waking on it
            // would read everything again, for ever.
            if event.as_ref().is_ok_and(|event| event.kind.is_access()) {
                return;
            }
            let _ = notify_wake.send(Wake::Changed);
        };
        let mut events = vec![
            watch_events(&dir, RecursiveMode::Recursive, on_event.clone())
                .map_err(|source| FileError::io(FileAction::Watch, &dir, source))?,
        ];
        if let Some(file) = &self.trust_file {
            let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            events.push(
                watch_events(parent, RecursiveMode::NonRecursive, on_event)
                    .map_err(|source| FileError::io(FileAction::Watch, parent, source))?,
            );
        }
        // The first reading happens before `watch` returns, so whatever the
        // directory holds now is what the watcher compares changes with.
        let mut state = State::default();
        sync(self, &dir, &mut state);
        let host = Arc::clone(self);
        // Without a trust file, only events wake the watcher.
        let recheck = if self.trust_file.is_some() { TRUST_RECHECK } else { Duration::MAX };
        let thread = std::thread::Builder::new()
            .name("flowgate-watch".into())
            .spawn(move || {
                loop {
                    match woken.recv_timeout(recheck) {
                        Ok(Wake::Changed) => {}
                        Err(RecvTimeoutError::Timeout) => {
                            if follow_trust_file(&host, &mut state) {
                                state.seen.clear();
                                sync_bundles(&host, &dir, &mut state);
                            }
                            continue;
                        }
                        Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    // Let a burst of events (a copy, an editor's save) settle.
                    loop {
                        match woken.recv_timeout(QUIET) {
                            Ok(Wake::Changed) => continue,
                            Err(RecvTimeoutError::Timeout) => break,
                            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    sync(&host, &dir, &mut state);
                }
            })
            .map_err(|source| Error::Thread { name: "flowgate-watch", source })?;
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

/// Native notifications on `dir` (and below it, if `mode` says so), or
/// polling where they fail.
fn watch_events(
    dir: &Path,
    mode: RecursiveMode,
    on_event: impl Fn(notify::Result<notify::Event>) + Send + Clone + 'static,
) -> std::io::Result<Box<dyn notify::Watcher + Send>> {
    let native = RecommendedWatcher::new(on_event.clone(), notify::Config::default())
        .and_then(|mut watcher| watcher.watch(dir, mode).map(|()| watcher));
    if let Ok(watcher) = native {
        return Ok(Box::new(watcher));
    }
    let config = notify::Config::default().with_poll_interval(POLL_INTERVAL).with_compare_contents(true);
    let mut watcher = PollWatcher::new(on_event, config).map_err(std::io::Error::other)?;
    watcher.watch(dir, mode).map_err(std::io::Error::other)?;
    Ok(Box::new(watcher))
}

/// What the watcher knows of the directory.
#[derive(Default)]
struct State {
    /// What each bundle directory held when last read.
    seen: HashMap<PathBuf, Seen>,
    /// Which directory serves each policy name.
    owners: HashMap<String, PathBuf>,
    /// Why the trust file was last refused, so it is reported once.
    trust_problem: Option<String>,
}

/// What one bundle directory held when last read.
#[derive(Clone, PartialEq, Eq)]
enum Seen {
    /// A readable bundle claiming a policy name.
    Claims { name: String, digest: Digest },
    /// A bundle that could not be read or parsed, and why (reported once).
    Broken(String),
}

/// Brings the host in step with its trust file, then with the directory.
fn sync(host: &Host, dir: &Path, state: &mut State) {
    if follow_trust_file(host, state) {
        // Bundles refused or admitted under the old trust are judged again.
        state.seen.clear();
    }
    sync_bundles(host, dir, state);
}

/// Brings the host in step with the directory.
fn sync_bundles(host: &Host, dir: &Path, state: &mut State) {
    let present = match bundle_dirs(dir) {
        Ok(present) => present,
        Err(err) => {
            host.emit(PolicyEvent::Rejected {
                origin: dir.display().to_string(),
                policy: None,
                reason: error_chain(&err),
            });
            return;
        }
    };
    state.seen.retain(|bundle_dir, _| present.contains(bundle_dir));
    for bundle_dir in &present {
        read_one(host, bundle_dir, state);
    }
    release_unclaimed(host, state);
}

/// Applies a changed trust file; returns whether the trust policy changed.
/// An invalid file is rejected and the policy in force stays.
fn follow_trust_file(host: &Host, state: &mut State) -> bool {
    let Some(path) = &host.trust_file else { return false };
    let current = host.trust().map(|trust| trust.digest());
    match TrustPolicy::from_file(path) {
        Ok(trust) if Some(trust.digest()) == current => false,
        Ok(trust) => {
            state.trust_problem = None;
            host.set_trust(trust);
            true
        }
        Err(err) => {
            let reason = format!("{}; the trust policy in force stays", error_chain(&err));
            if state.trust_problem.as_ref() != Some(&reason) {
                state.trust_problem = Some(reason.clone());
                host.emit(PolicyEvent::Rejected { origin: path.display().to_string(), policy: None, reason });
            }
            false
        }
    }
}

/// Reads one bundle directory and loads what changed in it.
fn read_one(host: &Host, bundle_dir: &Path, state: &mut State) {
    let origin = bundle_dir.display().to_string();
    let bundle = match Bundle::from_dir_with(bundle_dir, host.load_limits()) {
        Ok(bundle) => bundle,
        // A bundle being created: its second file has not landed yet.
        Err(crate::bundle::BundleError::File(err)) if err.is_not_found() => return,
        Err(err) => {
            let reason = error_chain(&err);
            let seen = Seen::Broken(reason.clone());
            if state.seen.insert(bundle_dir.to_owned(), seen.clone()).as_ref() != Some(&seen) {
                host.emit(PolicyEvent::Rejected { origin, policy: None, reason });
            }
            return;
        }
    };
    let name = bundle.manifest.name.clone();
    let seen = Seen::Claims { name: name.clone(), digest: bundle.digest() };
    if state.seen.insert(bundle_dir.to_owned(), seen.clone()).as_ref() == Some(&seen) {
        return; // unchanged since it was last read
    }
    let owner = state.owners.get(&name).filter(|owner| owner.as_path() != bundle_dir);
    if let Some(owner) = owner.filter(|owner| claims(state, owner, &name)) {
        let reason =
            format!("policy `{name}` is served from `{}`; a second directory may not take its name", owner.display());
        let policy = Some(format!("{name} {}", bundle.manifest.version));
        host.emit(PolicyEvent::Rejected { origin, policy, reason });
        return;
    }
    // The host may already serve it (loaded at start, or moved here unchanged).
    if host.serves(&bundle) || host.load(&bundle).is_ok() {
        state.owners.insert(name, bundle_dir.to_owned());
    } else if owner.is_some() || !state.owners.contains_key(&name) {
        // Its old directory is gone: this one claims the name now, even
        // while the version it holds is refused and the old one serves.
        state.owners.insert(name, bundle_dir.to_owned());
    }
}

/// Whether `bundle_dir` still holds a bundle for `name` (or one it cannot
/// read now, which keeps the name: a rejected version never removes one).
fn claims(state: &State, bundle_dir: &Path, name: &str) -> bool {
    match state.seen.get(bundle_dir) {
        Some(Seen::Claims { name: claimed, .. }) => claimed == name,
        Some(Seen::Broken(_)) => true,
        None => false,
    }
}

/// Moves each name whose directory no longer claims it to another that
/// does, or removes the policy when none does.
fn release_unclaimed(host: &Host, state: &mut State) {
    let released: Vec<String> =
        state.owners.iter().filter(|(name, owner)| !claims(state, owner, name)).map(|(name, _)| name.clone()).collect();
    for name in released {
        let heir = state.seen.iter().find_map(|(dir, seen)| match seen {
            Seen::Claims { name: claimed, .. } if *claimed == name => Some(dir.clone()),
            _ => None,
        });
        match heir {
            Some(heir) => {
                // It was refused while the other served; now it is the one.
                if let Ok(bundle) = Bundle::from_dir_with(&heir, host.load_limits())
                    && !host.serves(&bundle)
                {
                    let _ = host.load(&bundle);
                }
                state.owners.insert(name, heir);
            }
            None => {
                state.owners.remove(&name);
                host.remove(&name);
            }
        }
    }
}
