//! Where a witness keeps, per log, the last checkpoint it cosigned.
//!
//! A witness's promise is only as good as its memory: if its state could
//! go back, it could be led to cosign a fork. So the state is kept as
//! durably as the log's own checkpoints:
//!
//! ```text
//! STATE/lock                   held while one witness run reads and writes
//! STATE/<sha256(origin) hex>   the last cosigned checkpoint note of that origin
//! ```
//!
//! A file is replaced atomically: written to a temporary name in the same
//! directory, `fsync`ed, renamed over the old one, and the directory
//! `fsync`ed, so a crash leaves the old state or the new, never half of
//! one. The lock is held from reading the state to writing the new one
//! (C2SP `tlog-witness` warns of the race otherwise: two runs both
//! checking against size N, the later one writing N back over N+K).
//! Links are never followed, and a state file larger than a note is
//! refused unread.

use std::fs::File;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::fs::{self, FileError};
use crate::note::MAX_NOTE_BYTES;
use crate::witness::state_file_name;

/// A witness's state directory, locked for as long as this value lives.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    _lock: File,
}

/// The state directory cannot be used.
#[derive(Debug, Error)]
pub enum StateError {
    /// Another witness run holds the lock.
    #[error("`{0}` is in use by another witness run")]
    Busy(PathBuf),
    /// A state file larger than any checkpoint note, a link, or not a
    /// file; or reading or writing failed.
    #[error(transparent)]
    File(#[from] FileError),
}

impl StateDir {
    /// Opens (creating it, private, if needed) and locks a state directory.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        fs::create_private_dir(dir, 0o700)?;
        match fs::lock_exclusive(&dir.join("lock"), 0o600)? {
            Some(lock) => Ok(StateDir { dir: dir.to_owned(), _lock: lock }),
            None => Err(StateError::Busy(dir.to_owned())),
        }
    }

    /// The path of `origin`'s state.
    pub fn path(&self, origin: &str) -> PathBuf {
        self.dir.join(state_file_name(origin))
    }

    /// The last cosigned note of `origin`, if there is one.
    pub fn load(&self, origin: &str) -> Result<Option<Vec<u8>>, StateError> {
        match fs::read_capped(&self.path(origin), MAX_NOTE_BYTES as u64) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Replaces `origin`'s state with `note`, atomically and durably.
    pub fn store(&self, origin: &str, note: &str) -> Result<(), StateError> {
        fs::replace(&self.path(origin), 0o600, note.as_bytes())?;
        fs::sync_dir(&self.dir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_replaced_whole_and_the_directory_has_one_user() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(state.load("log.example/a").unwrap(), None);
        state.store("log.example/a", "first\n").unwrap();
        state.store("log.example/a", "second\n").unwrap();
        assert_eq!(state.load("log.example/a").unwrap().as_deref(), Some(&b"second\n"[..]));
        assert_eq!(state.load("log.example/b").unwrap(), None, "one file per origin");
        // Only the lock and the state file: no temporary left behind.
        let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from(state_file_name("log.example/a")), "lock".into()]);
        assert!(matches!(StateDir::open(dir.path()), Err(StateError::Busy(_))));
        drop(state);
        let state = StateDir::open(dir.path()).unwrap();
        std::fs::write(state.path("big"), vec![b'a'; MAX_NOTE_BYTES + 1]).unwrap();
        assert!(matches!(state.load("big"), Err(StateError::File(FileError::Refused { .. }))));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_place_of_a_state_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "planted\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, state.path("log.example/a")).unwrap();
        assert!(matches!(state.load("log.example/a"), Err(StateError::File(FileError::Refused { .. }))));
    }
}
