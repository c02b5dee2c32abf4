//! Appending to a log: groups of entries, each ending in a signed
//! checkpoint of the tree that holds them.
//!
//! Per group, in this order:
//! 1. the entries (one `write`), their index offsets when a multiple of
//!    256 is crossed, the leaf hashes and every completed stored-level hash
//!    ([`Frontier::push`](crate::frontier::Frontier::push) reports them),
//!    and the kept records;
//! 2. with [`Durability::Fsync`], the entries and records are `fdatasync`ed;
//! 3. a checkpoint of the new size is signed and written over the older of
//!    the two slots (then `fdatasync`ed too): only now is the group
//!    acknowledged, and only what it signs survives the next start;
//! 4. once a minute (and at [`Appender::checkpoint`]), the checkpoint joins
//!    the history file, and the tree and index files are synced.
//!
//! A group that fails is cut back from every file, and the tree in memory
//! with it: the log is as it was before the group, and can take the next
//! one once writes succeed again. A failed `fdatasync` is different (the
//! kernel may have dropped the pages): the failure says it is fatal, and
//! the writer must reopen the log, which checks it again.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::checkpoint::Checkpoint;
use crate::digest::Digest;
use crate::frontier::Frontier;
use crate::fs::{self, FileAction, FileError};
use crate::keys::SecretKey;
use crate::merkle::leaf_hash;
use crate::note::Signer;
use crate::tiles::is_stored;
use crate::wire::Reader;

use super::error::StoreError;
use super::files::{
    CHUNK, ENTRIES, HISTORY, INDEX, INDEX_STRIDE, LEVELS, LOCK, RECORDS, SLOTS, level_count, level_of, level_path,
    records_path,
};
use super::open::{self, AppendOptions, Recovery};
use super::records;

/// When an entry counts as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// On disk: every group's entries, then its checkpoint, are
    /// `fdatasync`ed before it is acknowledged. Survives a power cut.
    #[default]
    Fsync,
    /// Handed to the operating system (`write`) before it is acknowledged,
    /// synced once a minute. Survives the process being killed, not a
    /// power cut.
    Buffered,
}

/// Entries to append, framed ([`push_frame`](super::push_frame)), with the
/// records kept for some of them.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    /// The entries, framed, in index order from the log's size.
    pub entries: &'a [u8],
    /// Kept records: the entry's index and the record's JSON, ascending.
    pub records: &'a [(u64, String)],
}

/// The log's newest signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Entries it covers.
    pub size: u64,
    /// The root of their tree.
    pub root: Digest,
    /// The signed note.
    pub note: String,
}

/// A group that was not appended; the log is as it was before it.
#[derive(Debug)]
pub struct AppendFailure {
    /// What went wrong.
    pub error: StoreError,
    /// Whether the log must be opened again before it takes more (a sync
    /// failed: what the kernel holds is unknown).
    pub fatal: bool,
}

/// A log open for appending, locked for as long as this value lives.
///
/// ```
/// use flowgate_log::keys::SecretKey;
/// use flowgate_log::store::{AppendOptions, Appender, Durability, Group, Stored, push_frame};
/// # let dir = tempfile::tempdir().unwrap();
/// let key = SecretKey::generate().unwrap();
/// let options = AppendOptions { origin: Some("example.com/log".into()), durability: Durability::Buffered, ..AppendOptions::default() };
/// let (mut log, recovery) = Appender::open(dir.path(), key.clone(), options).unwrap();
/// assert!(recovery.created);
/// let mut entries = Vec::new();
/// for i in 0..3u8 {
///     push_frame(&mut entries, &[0x7f, i]); // any bytes: the store does not decode
/// }
/// let head = log.append(&Group { entries: &entries, records: &[] }).unwrap();
/// assert_eq!(head.size, 3);
/// let stored = Stored::open(dir.path()).unwrap();
/// assert_eq!(stored.head(Some(&key.public())).unwrap().checkpoint.size, 3);
/// ```
#[derive(Debug)]
pub struct Appender {
    dir: PathBuf,
    signer: Signer,
    origin: String,
    options: AppendOptions,
    entries: File,
    index: File,
    levels: [Option<File>; LEVELS],
    slots: [File; 2],
    /// The slots' lengths, so a note of the same length is written in
    /// place without changing the file's size.
    slot_lens: [u64; 2],
    records: Option<(u64, File)>,
    frontier: Frontier,
    entries_len: u64,
    slot_next: usize,
    head: Head,
    last_time: u64,
    /// The size of the newest checkpoint in the history file.
    history_size: Option<u64>,
    last_history: Instant,
    _lock: File,
}

/// What a group changes, to cut back to.
struct Before {
    frontier: Frontier,
    entries_len: u64,
    records: Option<(u64, u64)>,
}

impl Appender {
    /// Opens (or creates) the log in `dir`, checking it first (what is
    /// checked is in `docs/receipts.md`, "Opening a log"; what is repaired,
    /// in the [`Recovery`](super::Recovery) returned);
    /// checkpoints are signed with `key`.
    pub fn open(
        dir: impl Into<PathBuf>,
        key: SecretKey,
        options: AppendOptions,
    ) -> Result<(Appender, Recovery), StoreError> {
        let dir = dir.into();
        fs::create_private_dir(&dir, 0o750)?;
        if super::files::holds_old_format(&dir)? {
            return Err(StoreError::OldFormat { dir });
        }
        let lock = fs::lock_exclusive(&dir.join(LOCK), 0o640)?.ok_or_else(|| StoreError::Busy { dir: dir.clone() })?;
        let (opened, recovery) = open::open(&dir, &key, &options)?;
        let slot = |name| fs::open_or_create(&dir.join(name), 0o640);
        let mut levels: [Option<File>; LEVELS] = Default::default();
        for (t, level) in levels.iter_mut().enumerate() {
            let path = level_path(&dir, level_of(t));
            if std::fs::symlink_metadata(&path).is_ok() {
                *level = Some(fs::open_for_writing(&path, true)?);
            }
        }
        let checkpoint = &opened.head.checkpoint;
        let appender = Appender {
            origin: checkpoint.origin.clone(),
            head: Head { size: checkpoint.size, root: checkpoint.root, note: opened.head.text() },
            signer: opened.signer,
            entries: fs::open_for_writing(&dir.join(ENTRIES), true)?,
            index: fs::open_for_writing(&dir.join(INDEX), true)?,
            levels,
            slot_lens: [super::files::file_len(&dir.join(SLOTS[0]))?, super::files::file_len(&dir.join(SLOTS[1]))?],
            slots: [slot(SLOTS[0])?, slot(SLOTS[1])?],
            records: None,
            frontier: opened.frontier,
            entries_len: opened.entries_len,
            slot_next: opened.slot_next,
            last_time: opened.last_time,
            history_size: opened.history_size,
            last_history: Instant::now(),
            options,
            dir,
            _lock: lock,
        };
        Ok((appender, recovery))
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Entries in the log.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The time of the newest entry when the log was opened (ms since the
    /// Unix epoch): new entries are dated no earlier.
    pub fn last_time(&self) -> u64 {
        self.last_time
    }

    /// The newest signed checkpoint.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// How it is written.
    pub fn options(&self) -> &AppendOptions {
        &self.options
    }

    /// Appends `group` and signs a checkpoint of the tree that holds it;
    /// returns that checkpoint once the group counts as written.
    pub fn append(&mut self, group: &Group<'_>) -> Result<&Head, AppendFailure> {
        let before = Before {
            frontier: self.frontier.clone(),
            entries_len: self.entries_len,
            records: self.records.as_ref().map(|(chunk, file)| (*chunk, file.metadata().map_or(0, |m| m.len()))),
        };
        let written = self.write_group(group);
        match written {
            Ok(()) => {}
            Err(failure) => {
                self.cut_back(before);
                return Err(failure);
            }
        }
        if self.last_history.elapsed() >= self.options.checkpoint_every
            && let Err(error) = self.checkpoint()
        {
            return Err(AppendFailure { error, fatal: true });
        }
        Ok(&self.head)
    }

    fn write_group(&mut self, group: &Group<'_>) -> Result<(), AppendFailure> {
        let recoverable = |error: StoreError| AppendFailure { error, fatal: false };
        let fatal = |error: StoreError| AppendFailure { error, fatal: true };
        let start = self.frontier.size();
        let mut offsets = Vec::new();
        let mut levels: [Vec<u8>; LEVELS] = Default::default();
        let mut reader = Reader::new(group.entries);
        while reader.remaining() > 0 {
            let at = group.entries.len() - reader.remaining();
            let len = reader.uint("entry length").map_err(|e| recoverable(StoreError::Refused(e.to_string())))?;
            let body = &group.entries[group.entries.len() - reader.remaining()..];
            let Some(entry) = body.get(..len as usize) else {
                return Err(recoverable(StoreError::Refused("a group's last entry is cut short".into())));
            };
            if self.frontier.size().is_multiple_of(INDEX_STRIDE) {
                offsets.extend_from_slice(&(self.entries_len + at as u64).to_be_bytes());
            }
            self.frontier.push(leaf_hash(entry), |subtree, hash| {
                if is_stored(subtree.level) {
                    levels[usize::from(subtree.level / 8)].extend_from_slice(hash.as_bytes());
                }
            });
            reader = Reader::new(&body[len as usize..]);
        }
        let size = self.frontier.size();
        // 1. Everything but the checkpoint.
        let dir = self.dir.clone();
        let path = |name: &str| dir.join(name);
        write(&mut self.entries, &path(ENTRIES), group.entries).map_err(recoverable)?;
        self.entries_len += group.entries.len() as u64;
        write(&mut self.index, &path(INDEX), &offsets).map_err(recoverable)?;
        for (t, bytes) in levels.iter().enumerate().filter(|(_, bytes)| !bytes.is_empty()) {
            let level_path = level_path(&self.dir, level_of(t));
            if self.levels[t].is_none() {
                self.levels[t] = Some(fs::open_appending(&level_path, 0o640).map_err(|e| recoverable(e.into()))?);
                fs::sync_dir(&self.dir.join(super::files::TREE)).map_err(|e| recoverable(e.into()))?;
            }
            let file = self.levels[t].as_mut().expect("opened above");
            write(file, &level_path, bytes).map_err(recoverable)?;
        }
        self.write_records(group.records, start, size).map_err(recoverable)?;
        // 2. Durable before it is signed: a checkpoint never covers entries
        //    a crash could take back.
        if self.options.durability == Durability::Fsync {
            sync(&self.entries, &path(ENTRIES)).map_err(fatal)?;
            if let Some((chunk, file)) = &self.records {
                sync(file, &records_path(&self.dir, *chunk)).map_err(fatal)?;
            }
        }
        // 3. The checkpoint.
        let root = self.frontier.root();
        let note = Checkpoint::new(&self.origin, size, root)
            .sign(&self.signer)
            .map_err(|e| recoverable(StoreError::Refused(format!("cannot sign a checkpoint: {e}"))))?
            .to_text();
        let slot_path = path(SLOTS[self.slot_next]);
        let slot = &self.slots[self.slot_next];
        fs::write_all_at(slot, &slot_path, 0, note.as_bytes()).map_err(|e| recoverable(e.into()))?;
        if self.slot_lens[self.slot_next] != note.len() as u64 {
            slot.set_len(note.len() as u64)
                .map_err(|e| recoverable(FileError::io(FileAction::Write, &slot_path, e).into()))?;
            self.slot_lens[self.slot_next] = note.len() as u64;
        }
        if self.options.durability == Durability::Fsync {
            sync(slot, &slot_path).map_err(fatal)?;
        }
        self.slot_next ^= 1;
        self.head = Head { size, root, note };
        Ok(())
    }

    /// Appends the records of entries `start..end`, each to its chunk's file.
    fn write_records(&mut self, kept: &[(u64, String)], start: u64, end: u64) -> Result<(), StoreError> {
        let mut at = 0;
        while at < kept.len() {
            let chunk = kept[at].0 / CHUNK;
            let run = kept[at..].iter().take_while(|(index, _)| index / CHUNK == chunk).count();
            let lines: String = kept[at..at + run]
                .iter()
                .filter(|(index, _)| (start..end).contains(index))
                .map(|(index, record)| records::line(*index, record))
                .collect();
            if self.records.as_ref().is_none_or(|(open, _)| *open != chunk) {
                // The file it replaces keeps what this group wrote to it.
                if let Some((old, file)) = &self.records {
                    sync(file, &records_path(&self.dir, *old))?;
                }
                let dir = self.dir.join(RECORDS);
                fs::create_private_dir(&dir, 0o700)?;
                let path = records_path(&self.dir, chunk);
                let file = match fs::create_new(&path, 0o600, true) {
                    Ok(file) => file,
                    Err(_) if std::fs::symlink_metadata(&path).is_ok() => fs::open_for_writing(&path, true)?,
                    Err(err) => return Err(err.into()),
                };
                fs::sync_dir(&dir)?;
                self.records = Some((chunk, file));
            }
            let (_, file) = self.records.as_mut().expect("opened above");
            write(file, &records_path(&self.dir, chunk), lines.as_bytes())?;
            at += run;
        }
        Ok(())
    }

    /// Cuts every file back to `before`, and the tree in memory with it.
    fn cut_back(&mut self, before: Before) {
        let size = before.frontier.size();
        let cut = |file: &File, len: u64| {
            let _ = file.set_len(len);
        };
        cut(&self.entries, before.entries_len);
        cut(&self.index, size.div_ceil(INDEX_STRIDE) * 8);
        for (t, level) in self.levels.iter().enumerate() {
            if let Some(file) = level {
                cut(file, level_count(size, t) * 32);
            }
        }
        if let Some((chunk, file)) = &self.records {
            match before.records {
                Some((open, len)) if open == *chunk => cut(file, len),
                earlier => {
                    // The group opened this chunk's file: it held nothing
                    // before, and the file before it is cut back by path.
                    cut(file, 0);
                    if let Some((open, len)) = earlier
                        && let Ok(file) = fs::open_for_writing(&records_path(&self.dir, open), true)
                    {
                        cut(&file, len);
                    }
                }
            }
        }
        self.entries_len = before.entries_len;
        self.frontier = before.frontier;
    }

    /// Keeps the newest checkpoint in the history file (unless it is there
    /// already) and syncs every file: what `close` and the minute's timer do.
    pub fn checkpoint(&mut self) -> Result<&Head, StoreError> {
        let dir = self.dir.clone();
        sync(&self.entries, &dir.join(ENTRIES))?;
        sync(&self.index, &dir.join(INDEX))?;
        for (t, level) in self.levels.iter().enumerate() {
            if let Some(file) = level {
                sync(file, &level_path(&dir, level_of(t)))?;
            }
        }
        if let Some((chunk, file)) = &self.records {
            sync(file, &records_path(&dir, *chunk))?;
        }
        for (slot, name) in self.slots.iter().zip(SLOTS) {
            sync(slot, &dir.join(name))?;
        }
        if self.history_size != Some(self.head.size) {
            let path = dir.join(HISTORY);
            let mut history = fs::open_appending(&path, 0o640)?;
            let written =
                history.write_all(format!("{}\n", self.head.note).as_bytes()).and_then(|()| history.sync_data());
            written.map_err(|e| FileError::io(FileAction::Write, &path, e))?;
            self.history_size = Some(self.head.size);
        }
        self.last_history = Instant::now();
        Ok(&self.head)
    }
}

/// Appends `bytes` to a file opened for appending (so a group cut back,
/// which shortens files under it, is written over by the next).
fn write(file: &mut File, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    if bytes.is_empty() {
        return Ok(());
    }
    file.write_all(bytes).map_err(|e| FileError::io(FileAction::Write, path, e).into())
}

fn sync(file: &File, path: &Path) -> Result<(), StoreError> {
    file.sync_data().map_err(|e| FileError::io(FileAction::Write, path, e).into())
}
