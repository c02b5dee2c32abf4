//! A log directory opened for reading: entries by index, the stored tree,
//! the checkpoints, and the proofs made of them. Reading never writes.
//!
//! Proofs cost O(log n) reads whatever the log's size: an entry is found
//! from `entries.idx` (one offset) and at most 255 entries after it, and a
//! proof's hashes from at most `2·log2 n` runs of at most 256 stored hashes
//! ([`tiles`](crate::tiles)). Everything read is checked before it is
//! handed out: the entry against its own stated index, the proof against
//! the checkpoint's root. A damaged log gives an error, never a proof that
//! does not verify.

use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::digest::Digest;
use crate::entry::Entry;
use crate::fs::{self, FileError, FileProblem};
use crate::merkle::{self, ProveError};
use crate::note::{Note, NoteError, split_notes};
use crate::proof::{ConsistencyProof, InclusionProof, base64_hashes};
use crate::tiles::{StoredLevels, TILE_HEIGHT, Tiled};

use super::error::StoreError;
use super::files::{
    self, ENTRIES, Frames, HISTORY, INDEX, INDEX_STRIDE, MAX_HISTORY_BYTES, SLOTS, consistent_tree_size, file_len,
    level_lens, level_path,
};
use super::records::RecordLines;

/// A checkpoint note as read (from the log, or given), and what it says.
/// Whose signatures it carries is for the reader to check
/// ([`SignedCheckpoint`](crate::checkpoint::SignedCheckpoint)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// What it says.
    pub checkpoint: Checkpoint,
    /// The note, with every signature as read.
    pub note: Note,
}

impl StoredCheckpoint {
    /// Reads a note that must be a checkpoint; signatures are not checked.
    pub fn parse(bytes: &[u8]) -> Result<StoredCheckpoint, CheckpointError> {
        let note = Note::parse(bytes).map_err(NoteError::from)?;
        let checkpoint = Checkpoint::from_body(note.text())?;
        Ok(StoredCheckpoint { checkpoint, note })
    }

    /// The note as text, signatures included.
    pub fn text(&self) -> String {
        self.note.to_text()
    }
}

/// A log directory, for reading.
#[derive(Debug)]
pub struct Stored {
    dir: PathBuf,
}

impl Stored {
    /// Opens the log in `dir`. A directory of Flowgate 0.1's hash-chain
    /// format is named as such.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Stored, StoreError> {
        let stored = Stored::at(dir.into())?;
        if std::fs::symlink_metadata(stored.dir.join(ENTRIES)).is_err() {
            return Err(StoreError::NotALog { dir: stored.dir });
        }
        Ok(stored)
    }

    /// The directory as a log, whether it holds one yet or not (for the writer).
    pub(crate) fn at(dir: PathBuf) -> Result<Stored, StoreError> {
        if !fs::is_real_dir(&dir) {
            fs::metadata(&dir)?;
            return Err(FileError::refused(&dir, FileProblem::NotDirectory).into());
        }
        if files::holds_old_format(&dir)? {
            return Err(StoreError::OldFormat { dir });
        }
        Ok(Stored { dir })
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many leaves the stored tree holds, consistently across its levels.
    pub fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(consistent_tree_size(&level_lens(&self.dir)?))
    }

    /// The two checkpoint slots, each read (`None`: the slot file is missing).
    pub fn slots(&self) -> Result<[Option<Result<StoredCheckpoint, CheckpointError>>; 2], StoreError> {
        let read = |name: &str| -> Result<_, StoreError> {
            match fs::read_capped(&self.dir.join(name), crate::note::MAX_NOTE_BYTES as u64) {
                Ok(bytes) => Ok(Some(StoredCheckpoint::parse(&bytes))),
                Err(err) if err.is_not_found() => Ok(None),
                Err(err) => Err(err.into()),
            }
        };
        Ok([read(SLOTS[0])?, read(SLOTS[1])?])
    }

    /// The checkpoints of the history file, in order, each read; and
    /// whether the file was longer than what is read of it (64 MiB).
    pub fn history(&self) -> Result<(Vec<Result<StoredCheckpoint, CheckpointError>>, bool), StoreError> {
        let path = self.dir.join(HISTORY);
        let len = file_len(&path)?;
        if len == 0 {
            return Ok((Vec::new(), false));
        }
        let file = fs::open_regular(&path)?;
        let read = len.min(MAX_HISTORY_BYTES);
        let mut bytes = vec![0u8; read as usize];
        fs::read_exact_at(&file, &path, 0, &mut bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        let notes = split_notes(&text).into_iter().map(|note| StoredCheckpoint::parse(note.as_bytes())).collect();
        Ok((notes, len > MAX_HISTORY_BYTES))
    }

    /// The root of the tree of the first `size` entries, from stored hashes.
    pub fn root_at(&self, size: u64) -> Result<Digest, StoreError> {
        let stored = self.tree_size()?;
        if size > stored {
            return Err(StoreError::TreeShort { stored, needed: size });
        }
        merkle::tree_root(&Tiled(self), size).map_err(from_prove)
    }

    /// Checks that the stored tree of `checkpoint.size` entries has the
    /// checkpoint's root: that this log holds what it signed.
    pub fn holds(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let stored = self.root_at(checkpoint.size)?;
        if stored != checkpoint.root {
            return Err(StoreError::Rewritten { size: checkpoint.size, stored, signed: checkpoint.root });
        }
        Ok(())
    }

    /// The newest checkpoint of the two slots that the stored tree holds
    /// (and, given `key`, that the log key signed): what the log says it is.
    pub fn head(&self, key: Option<&crate::keys::PublicKey>) -> Result<StoredCheckpoint, StoreError> {
        let mut best: Option<StoredCheckpoint> = None;
        let mut problems = Vec::new();
        for (slot, read) in self.slots()?.into_iter().enumerate() {
            let Some(read) = read else { continue };
            let checked = read.map_err(StoreError::from).and_then(|found| {
                if let Some(key) = key {
                    crate::checkpoint::SignedCheckpoint::open_with_key(found.text().as_bytes(), key, &[])?;
                }
                self.holds(&found.checkpoint)?;
                Ok(found)
            });
            match checked {
                Ok(found) if best.as_ref().is_none_or(|b| b.checkpoint.size < found.checkpoint.size) => {
                    best = Some(found);
                }
                Ok(_) => {}
                Err(err) => problems.push(format!("`{}`: {err}", SLOTS[slot])),
            }
        }
        best.ok_or_else(|| StoreError::NoCheckpoint {
            problems: if problems.is_empty() { "no checkpoint slot".to_owned() } else { problems.join("; ") },
        })
    }

    /// The byte offset of entry `index` in `entries`: from the index, then
    /// at most 255 entries read.
    pub fn entry_offset(&self, index: u64) -> Result<u64, StoreError> {
        let base = index / INDEX_STRIDE;
        let index_path = self.dir.join(INDEX);
        if file_len(&index_path)? / 8 <= base {
            return Err(StoreError::Damaged { index, problem: "`entries.idx` does not reach it".into() });
        }
        let offset = files::read_offsets(&index_path, base, 1)?[0];
        let mut frames = Frames::open(&self.dir.join(ENTRIES), offset)?;
        let mut entry = Vec::new();
        for _ in base * INDEX_STRIDE..index {
            if !frames.next_into(&mut entry)? {
                return Err(StoreError::Damaged { index, problem: "the `entries` file ends before it".into() });
            }
        }
        Ok(frames.offset())
    }

    /// The bytes of entry `index`, checked to state that index (so a wrong
    /// offset in the index gives an error, not another entry).
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        let mut frames = Frames::open(&self.dir.join(ENTRIES), self.entry_offset(index)?)?;
        let mut bytes = Vec::new();
        if !frames.next_into(&mut bytes)? {
            return Err(StoreError::Damaged { index, problem: "the `entries` file ends before it".into() });
        }
        let stated = Entry::decode(&bytes).map_err(|e| StoreError::Damaged { index, problem: e.to_string() })?.index();
        if stated != index {
            return Err(StoreError::Damaged { index, problem: format!("the entry there says it is entry {stated}") });
        }
        Ok(bytes)
    }

    /// The kept records of chunk `chunk` (entries `chunk·CHUNK..`), if any are kept.
    pub fn records(&self, chunk: u64) -> Result<Option<RecordLines>, StoreError> {
        let path = files::records_path(&self.dir, chunk);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        Ok(Some(RecordLines::open(&path)?))
    }

    /// Whether the log keeps records (its `records` directory holds a file).
    pub fn keeps_records(&self) -> Result<bool, StoreError> {
        let dir = self.dir.join(files::RECORDS);
        Ok(fs::is_real_dir(&dir) && !fs::list(&dir)?.is_empty())
    }

    /// Every entry from the first, in order, with its index.
    pub fn entries(&self) -> Result<Entries, StoreError> {
        Ok(Entries { frames: Frames::open(&self.dir.join(ENTRIES), 0)?, index: 0, failed: false })
    }

    /// The inclusion proof of entry `index` in the tree `at` signs,
    /// checked against its root before it is returned.
    pub fn inclusion(&self, index: u64, at: &StoredCheckpoint) -> Result<InclusionProof, StoreError> {
        let size = at.checkpoint.size;
        if index >= size {
            return Err(StoreError::OutOfRange { index, size });
        }
        let entry = self.entry(index)?;
        let path = merkle::inclusion_proof(&Tiled(self), index, size).map_err(from_prove)?;
        let leaf = merkle::leaf_hash(&entry);
        if let Err(error) = merkle::verify_inclusion(&leaf, index, size, &path, &at.checkpoint.root) {
            return Err(StoreError::Damaged {
                index,
                problem: format!(
                    "its proof does not lead to the checkpoint's root ({error}): run `flowgate audit verify`"
                ),
            });
        }
        use base64::Engine as _;
        Ok(InclusionProof {
            receipt: base64::engine::general_purpose::STANDARD.encode(&entry),
            index,
            tree_size: size,
            proof: base64_hashes(&path),
            checkpoint: at.text(),
        })
    }

    /// The consistency proof from `old` (a checkpoint of this log, which
    /// the stored tree must hold) to `new`, checked before it is returned.
    pub fn consistency(&self, old: &Checkpoint, new: &StoredCheckpoint) -> Result<ConsistencyProof, StoreError> {
        let checkpoint = &new.checkpoint;
        if old.origin != checkpoint.origin {
            return Err(StoreError::OtherOrigin { log: checkpoint.origin.clone(), given: old.origin.clone() });
        }
        if old.size > checkpoint.size {
            return Err(StoreError::Truncated { entries: checkpoint.size, signed: old.size });
        }
        if old.size == checkpoint.size && old.root != checkpoint.root {
            return Err(StoreError::Equivocation { size: old.size, roots: (old.root, checkpoint.root) });
        }
        self.holds(old)?;
        let path = merkle::consistency_proof(&Tiled(self), old.size, checkpoint.size).map_err(from_prove)?;
        if let Err(error) = merkle::verify_consistency(old.size, checkpoint.size, &path, &old.root, &checkpoint.root) {
            return Err(StoreError::Refused(format!(
                "the stored tree gives no valid proof from {} to {} entries ({error}): run `flowgate audit verify`",
                old.size, checkpoint.size
            )));
        }
        Ok(ConsistencyProof {
            old_size: old.size,
            new_size: checkpoint.size,
            proof: base64_hashes(&path),
            checkpoint: new.text(),
        })
    }
}

/// A stored hash that cannot be read becomes a store error.
pub(crate) fn from_prove(err: ProveError<StoreError>) -> StoreError {
    match err {
        ProveError::Read(err) => err,
        other => StoreError::Refused(format!("reading the tree: {other}")),
    }
}

impl StoredLevels for Stored {
    type Error = StoreError;

    fn read_run(&self, level: u8, start: u64, count: u64) -> Result<Vec<Digest>, StoreError> {
        debug_assert!(level.is_multiple_of(TILE_HEIGHT));
        let path = level_path(&self.dir, level);
        let stored = file_len(&path)? / 32;
        if start + count > stored {
            let needed = (start + count) << level;
            return Err(StoreError::TreeShort { stored: stored << level, needed });
        }
        let file = fs::open_regular(&path)?;
        Ok(files::read_hashes(&file, &path, start, count)?)
    }
}

/// The entries of a log from the first, in order: `(index, bytes)`. Stops
/// after the first error.
pub struct Entries {
    frames: Frames,
    index: u64,
    failed: bool,
}

impl Iterator for Entries {
    type Item = Result<(u64, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut bytes = Vec::new();
        match self.frames.next_into(&mut bytes) {
            Ok(true) => {
                self.index += 1;
                Some(Ok((self.index - 1, bytes)))
            }
            Ok(false) => None,
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}
