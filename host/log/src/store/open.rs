//! Opening a log for writing: the stored tree checked against the last
//! checkpoint, in bounded time, before anything is appended.
//!
//! 1. The two checkpoint slots are read; the valid one with the larger
//!    size signed by the log key counts (a torn write spoils at most one).
//!    None valid while the log holds entries: refused.
//! 2. The entries are counted from the last sound point of `entries.idx`
//!    (an offset whose entry states the index expected): normally at most
//!    255 entries read; the index is rebuilt from there if it lags. Fewer
//!    entries than the checkpoint signed: refused (a deletion).
//! 3. The stored tree is cut to what all its levels hold consistently,
//!    rebuilt from the entries up to the checkpoint if it lags (it is
//!    synced once a minute, the entries with every group), and its root at
//!    the checkpoint's size, from one stored hash per set bit of the size,
//!    must be the signed root. Otherwise: refused.
//! 4. The newest [`OPEN_WINDOW`] to 2·`OPEN_WINDOW` entries up to the
//!    checkpoint are read again, decoded, checked (index, time order,
//!    policy sets) and re-hashed, and their stored hashes compared: where
//!    the next appends join, entries and tree agree. A problem: refused.
//! 5. Entries after the checkpoint were never acknowledged (a group's
//!    checkpoint is written before its decisions are returned): they are
//!    cut, with their records, counted in [`Recovery::cut`], and never
//!    signed. So a key-less edit of the newest entries is never signed by
//!    the next start.
//!
//! Work: O(log n) hash reads, at most 2·`OPEN_WINDOW` entries re-hashed,
//! and whatever the index and tree lag behind (at most a minute of appends
//! after a crash; all of it if those files were deleted), whatever the
//! log's size. Damage older than the window is not read at open; it cannot
//! be signed over (new roots are computed from the frontier, which matched
//! the signed root, so no later checkpoint covers an edited older entry),
//! and `audit verify` names it.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::digest::Digest;
use crate::entry::Entry;
use crate::frontier::Frontier;
use crate::fs::{self, FileAction, FileError};
use crate::keys::SecretKey;
use crate::merkle::{EMPTY_ROOT, Subtree, leaf_hash};
use crate::note::{Signer, is_valid_name};
use crate::tiles::{Tiled, is_stored};
use crate::verify::{ChunkVerifier, Problem};

use super::append::Durability;
use super::error::StoreError;
use super::files::{
    self, CHUNK, ENTRIES, Frames, HISTORY, INDEX, INDEX_STRIDE, LEVELS, OPEN_WINDOW, RECORDS, SLOTS,
    consistent_tree_size, default_origin, file_len, level_count, level_lens, level_of, level_path, records_path,
};
use super::records::{RecordLines, TORN, exposed};
use super::stored::{Stored, StoredCheckpoint, from_prove};

/// How a log is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOptions {
    /// The log's name in its checkpoints (the origin line); `None`: the
    /// one it has, or for a new log [`default_origin`]. A log keeps its
    /// origin for good: another one is refused.
    pub origin: Option<String>,
    /// When an entry counts as written.
    pub durability: Durability,
    /// Whether records are kept beside the receipts.
    pub keep_records: bool,
    /// How often a checkpoint joins the history file, and the tree and
    /// index files are synced.
    pub checkpoint_every: Duration,
}

impl Default for AppendOptions {
    /// The key's origin, `fsync`, no records, a checkpoint kept every minute.
    fn default() -> AppendOptions {
        AppendOptions {
            origin: None,
            durability: Durability::Fsync,
            keep_records: false,
            checkpoint_every: Duration::from_secs(60),
        }
    }
}

/// What opening a log found, and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The log's origin.
    pub origin: String,
    /// Entries in the log, all signed by its last checkpoint.
    pub size: u64,
    /// Whether the log was created.
    pub created: bool,
    /// Entries after the last checkpoint, cut (never acknowledged, never signed).
    pub cut: u64,
    /// Leaf hashes recomputed from the entries (the tree lagged).
    pub tree_rebuilt: u64,
    /// Index offsets recomputed from the entries (the index lagged).
    pub index_rebuilt: u64,
    /// Kept-record lines cut (of cut entries, or torn).
    pub records_cut: u64,
    /// Entries read again and re-hashed to check the log.
    pub checked: u64,
}

/// A log found sound, ready to append to.
pub(crate) struct Opened {
    pub(crate) signer: Signer,
    pub(crate) head: StoredCheckpoint,
    pub(crate) frontier: Frontier,
    pub(crate) entries_len: u64,
    pub(crate) last_time: u64,
    /// The slot the next checkpoint goes to.
    pub(crate) slot_next: usize,
    pub(crate) history_size: Option<u64>,
}

/// Checks (or creates) the log in `dir`; the caller holds its lock.
pub(crate) fn open(dir: &Path, key: &SecretKey, options: &AppendOptions) -> Result<(Opened, Recovery), StoreError> {
    let stored = Stored::at(dir.to_owned())?;
    let public = key.public();
    let mut problems = Vec::new();
    let mut valid: Vec<(usize, StoredCheckpoint)> = Vec::new();
    for (slot, read) in stored.slots()?.into_iter().enumerate() {
        let Some(read) = read else { continue };
        let opened = read
            .and_then(|found| SignedCheckpoint::open_with_key(found.text().as_bytes(), &public, &[]).map(|_| found));
        match opened {
            Ok(found) => valid.push((slot, found)),
            Err(err) => problems.push(format!("`{}`: {err}", SLOTS[slot])),
        }
    }
    let entries_len = file_len(&dir.join(ENTRIES))?;
    let Some((slot, head)) = valid.iter().max_by_key(|(_, found)| found.checkpoint.size).cloned() else {
        let empty =
            entries_len == 0 && level_lens(dir)?.iter().all(|&len| len == 0) && file_len(&dir.join(HISTORY))? == 0;
        if empty {
            return create(dir, key, options);
        }
        if problems.is_empty() {
            problems.push("no checkpoint slot".into());
        }
        return Err(StoreError::NoCheckpoint { problems: problems.join("; ") });
    };
    if let [(_, a), (_, b)] = valid.as_slice()
        && a.checkpoint.size == b.checkpoint.size
        && a.checkpoint.root != b.checkpoint.root
    {
        return Err(StoreError::Equivocation {
            size: a.checkpoint.size,
            roots: (a.checkpoint.root, b.checkpoint.root),
        });
    }
    let checkpoint = &head.checkpoint;
    if let Some(origin) = options.origin.as_ref().filter(|origin| **origin != checkpoint.origin) {
        return Err(StoreError::OtherOrigin { log: checkpoint.origin.clone(), given: origin.clone() });
    }
    let signer = signer(&checkpoint.origin, key)?;
    let size = checkpoint.size;
    let mut recovery = Recovery { origin: checkpoint.origin.clone(), size, ..Recovery::default() };

    // 2. Count the entries; rebuild the index where it lags (once the
    //    count shows nothing signed is missing: a damaged log is left as found).
    let count = count_entries(dir, size)?;
    if count.entries < size {
        return Err(StoreError::Truncated { entries: count.entries, signed: size });
    }
    let index_path = dir.join(INDEX);
    cut(&index_path, count.index_kept * 8)?;
    let mut index = fs::open_for_writing(&index_path, true)?;
    std::io::Write::write_all(&mut index, &count.index_rebuilt)
        .map_err(|e| FileError::io(FileAction::Write, &index_path, e))?;
    recovery.index_rebuilt = count.index_rebuilt.len() as u64 / 8;

    // 3. The stored tree, up to the checkpoint, against its root.
    let frontier = tree_at(&stored, dir, size, &mut recovery)?;
    if frontier.root() != checkpoint.root {
        return Err(StoreError::Rewritten { size, stored: frontier.root(), signed: checkpoint.root });
    }

    // 4. The newest entries, read again.
    let last_time = check_window(&stored, dir, size, &mut recovery)?;

    // 5. What no checkpoint signed is cut.
    if count.entries > size {
        recovery.cut = count.entries - size;
        cut(&dir.join(ENTRIES), count.offset_of_size)?;
        cut(&dir.join(INDEX), size.div_ceil(INDEX_STRIDE) * 8)?;
    }
    cut_records(dir, size, options.keep_records, &mut recovery)?;
    let history_size = None;
    let opened = Opened {
        signer,
        head,
        frontier,
        entries_len: count.offset_of_size,
        last_time,
        slot_next: 1 - slot,
        history_size,
    };
    Ok((opened, recovery))
}

/// A new log: its files, and a signed checkpoint of the empty tree, so
/// the directory is a log (with its origin) from the start.
fn create(dir: &Path, key: &SecretKey, options: &AppendOptions) -> Result<(Opened, Recovery), StoreError> {
    let origin = options.origin.clone().unwrap_or_else(|| default_origin(&key.public()));
    let signer = signer(&origin, key)?;
    for name in [ENTRIES, INDEX] {
        fs::open_or_create(&dir.join(name), 0o640)?;
    }
    fs::create_private_dir(&dir.join(files::TREE), 0o750)?;
    fs::open_or_create(&level_path(dir, 0), 0o640)?;
    let note = Checkpoint::new(&origin, 0, EMPTY_ROOT)
        .sign(&signer)
        .map_err(|err| StoreError::Refused(format!("cannot sign a checkpoint: {err}")))?;
    let text = note.to_text();
    fs::replace(&dir.join(SLOTS[0]), 0o640, text.as_bytes())?;
    let mut history = fs::open_or_create(&dir.join(HISTORY), 0o640)?;
    std::io::Write::write_all(&mut history, format!("{text}\n").as_bytes())
        .and_then(|()| history.sync_data())
        .map_err(|e| FileError::io(FileAction::Write, dir.join(HISTORY), e))?;
    fs::sync_dir(dir)?;
    let head = StoredCheckpoint::parse(text.as_bytes()).expect("a checkpoint just signed reads back");
    let opened = Opened {
        signer,
        head,
        frontier: Frontier::new(),
        entries_len: 0,
        last_time: 0,
        slot_next: 1,
        history_size: Some(0),
    };
    Ok((opened, Recovery { origin, created: true, ..Recovery::default() }))
}

fn signer(origin: &str, key: &SecretKey) -> Result<Signer, StoreError> {
    if !is_valid_name(origin) || origin.contains('\n') {
        return Err(StoreError::Refused(format!(
            "`{}` cannot be a log's origin: use a name without spaces or `+`, such as `platform.example/decisions`",
            origin.escape_debug()
        )));
    }
    Signer::new(origin, key.clone()).map_err(|err| StoreError::Refused(err.to_string()))
}

struct Count {
    /// Whole entries in the file (stopping at the first that is not).
    entries: u64,
    /// Where entry `size` starts (where the file is cut).
    offset_of_size: u64,
    /// Index points found sound, kept.
    index_kept: u64,
    /// The offsets after them, found by reading the entries.
    index_rebuilt: Vec<u8>,
}

/// Counts the entries from the last sound point of the index, and the
/// index's offsets after it. Damage before `size` is refused; after it,
/// it is where the unsigned tail is cut. Nothing is written.
fn count_entries(dir: &Path, size: u64) -> Result<Count, StoreError> {
    let entries_path = dir.join(ENTRIES);
    let index_path = dir.join(INDEX);
    let entries_len = file_len(&entries_path)?;
    // Only points up to the checkpoint: the scan must pass entry `size`.
    let mut points = (file_len(&index_path)? / 8).min(size / INDEX_STRIDE + 1);
    let mut start = (0u64, 0u64);
    let mut kept = 0;
    let mut tries = 0;
    while points > 0 && tries < 4 {
        points -= 1;
        tries += 1;
        let offset = files::read_offsets(&index_path, points, 1)?[0];
        if offset < entries_len && stated_index(&entries_path, offset) == Some(points * INDEX_STRIDE) {
            start = (points * INDEX_STRIDE, offset);
            kept = points + 1;
            break;
        }
    }
    let mut rebuilt = Vec::new();
    let mut frames = Frames::open(&entries_path, start.1)?;
    let mut entry = Vec::new();
    let (mut at, mut offset_of_size) = (start.0, 0);
    loop {
        let offset = frames.offset();
        if at == size {
            offset_of_size = offset;
        }
        match frames.next_into(&mut entry) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) if at < size => return Err(err),
            // After the checkpoint: the unsigned tail ends here.
            Err(_) => break,
        }
        if at.is_multiple_of(INDEX_STRIDE) && at / INDEX_STRIDE >= kept {
            rebuilt.extend_from_slice(&offset.to_be_bytes());
        }
        at += 1;
    }
    Ok(Count { entries: at, offset_of_size, index_kept: kept, index_rebuilt: rebuilt })
}

/// The index an entry at `offset` states, if it is one.
fn stated_index(path: &Path, offset: u64) -> Option<u64> {
    let mut frames = Frames::open(path, offset).ok()?;
    let mut entry = Vec::new();
    frames.next_into(&mut entry).ok().filter(|read| *read)?;
    Entry::decode(&entry).ok().map(|entry| entry.index())
}

/// The frontier of the stored tree at `size`: the levels cut to what they
/// hold consistently (and no further than `size`), the leaves they lack
/// hashed again from the entries.
fn tree_at(stored: &Stored, dir: &Path, size: u64, recovery: &mut Recovery) -> Result<Frontier, StoreError> {
    fs::create_private_dir(&dir.join(files::TREE), 0o750)?;
    let held = consistent_tree_size(&level_lens(dir)?).min(size);
    for t in 0..LEVELS {
        let path = level_path(dir, level_of(t));
        if file_len(&path)? > level_count(held, t) * 32 {
            cut(&path, level_count(held, t) * 32)?;
        }
    }
    let mut frontier = Frontier::load(&Tiled(stored), held).map_err(from_prove)?;
    if held < size {
        let mut levels: [Vec<u8>; LEVELS] = Default::default();
        let mut frames = Frames::open(&dir.join(ENTRIES), stored.entry_offset(held)?)?;
        let mut entry = Vec::new();
        for _ in held..size {
            if !frames.next_into(&mut entry)? {
                return Err(StoreError::Truncated { entries: frontier.size(), signed: size });
            }
            frontier.push(leaf_hash(&entry), |subtree, hash| {
                if is_stored(subtree.level) {
                    levels[usize::from(subtree.level / 8)].extend_from_slice(hash.as_bytes());
                }
            });
        }
        for (t, bytes) in levels.iter().enumerate().filter(|(_, bytes)| !bytes.is_empty()) {
            let path = level_path(dir, level_of(t));
            let mut file = fs::open_or_create(&path, 0o640)?;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
                .and_then(|_| std::io::Write::write_all(&mut file, bytes))
                .and_then(|()| file.sync_data())
                .map_err(|e| FileError::io(FileAction::Write, &path, e))?;
        }
        recovery.tree_rebuilt = size - held;
    }
    Ok(frontier)
}

/// Reads the newest entries up to `size` again, from a point aligned to
/// [`OPEN_WINDOW`]: each must decode, state its index, keep time order and
/// name earlier policy sets, and its stored hashes must be its own.
/// Returns the time of the last entry.
fn check_window(stored: &Stored, dir: &Path, size: u64, recovery: &mut Recovery) -> Result<u64, StoreError> {
    if size == 0 {
        return Ok(0);
    }
    let start = size.saturating_sub(OPEN_WINDOW) / OPEN_WINDOW * OPEN_WINDOW;
    const { assert!(OPEN_WINDOW <= CHUNK) };
    let mut verifier = ChunkVerifier::new(start);
    let mut frames = Frames::open(&dir.join(ENTRIES), stored.entry_offset(start)?)?;
    // The stored hashes of the window: its leaves, and the subtrees of 256
    // and of 65,536 leaves it completes.
    let leaves = read_level(dir, 0, start, size - start)?;
    let eights = read_level(dir, 8, start >> 8, (size >> 8) - (start >> 8))?;
    let sixteens = read_level(dir, 16, start >> 16, (size >> 16) - (start >> 16))?;
    let mut mismatch: Option<Subtree> = None;
    let mut entry = Vec::new();
    let mut last_time = 0;
    for index in start..size {
        if !frames.next_into(&mut entry)? {
            return Err(StoreError::Truncated { entries: index, signed: size });
        }
        let decoded = verifier.push(&entry, |subtree: Subtree, hash: &Digest| {
            let (run, base) = match subtree.level {
                0 => (&leaves, start),
                8 => (&eights, start >> 8),
                16 => (&sixteens, start >> 16),
                _ => return,
            };
            if run.get((subtree.index - base) as usize) != Some(hash) {
                mismatch = mismatch.or(Some(subtree));
            }
        });
        if let Some(decoded) = decoded {
            last_time = decoded.time_ms();
        }
    }
    recovery.checked = size - start;
    let report = verifier.finish();
    let first = mismatch
        .map(|subtree| Problem::StoredHash { subtree })
        .iter()
        .chain(&report.problems)
        .map(|problem| (problem.index(), problem.to_string()))
        .min_by_key(|(index, _)| *index);
    if let Some((index, problem)) = first {
        return Err(StoreError::Damaged { index, problem: format!("{problem}; run `flowgate audit verify`") });
    }
    Ok(last_time)
}

/// `count` hashes of stored level `level` from `start`.
fn read_level(dir: &Path, level: u8, start: u64, count: u64) -> Result<Vec<Digest>, StoreError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let path = level_path(dir, level);
    let file = fs::open_regular(&path)?;
    Ok(files::read_hashes(&file, &path, start, count)?)
}

/// Cuts the kept records of entries from `size` on (and a torn last line);
/// refuses records others can read.
fn cut_records(dir: &Path, size: u64, keep_records: bool, recovery: &mut Recovery) -> Result<(), StoreError> {
    let records = dir.join(RECORDS);
    if std::fs::symlink_metadata(&records).is_err() {
        if keep_records {
            fs::create_private_dir(&records, 0o700)?;
        }
        return Ok(());
    }
    if !fs::is_real_dir(&records) {
        return Err(FileError::refused(&records, crate::fs::FileProblem::NotDirectory).into());
    }
    let files: Vec<_> = fs::list(&records)?.into_iter().map(|entry| entry.path()).collect();
    for path in std::iter::once(&records).chain(&files) {
        if let Some(mode) = exposed(path)? {
            return Err(StoreError::Records(format!(
                "`{}` has mode {mode:o}; kept records are personal data, readable by their owner only (chmod 700 the directory, 600 its files)",
                path.display()
            )));
        }
        fs::check_private(path, &fs::metadata(path)?, true)?;
    }
    for chunk in (size / CHUNK)..=(size / CHUNK + 1) {
        let path = records_path(dir, chunk);
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let mut lines = RecordLines::open(&path)?;
        let (mut keep, mut cutting) = (0, false);
        while let Some(read) = lines.next_record()? {
            cutting |= match read {
                Ok(record) => record.index >= size,
                Err(bad) => bad.problem == TORN,
            };
            if cutting {
                recovery.records_cut += 1;
            } else {
                keep = lines.offset();
            }
        }
        cut(&path, keep)?;
    }
    Ok(())
}

/// Cuts `path` to `len` bytes, durably.
pub(crate) fn cut(path: &Path, len: u64) -> Result<(), StoreError> {
    if file_len(path)? == len {
        return Ok(());
    }
    let file: File = fs::open_for_writing(path, false)?;
    file.set_len(len).and_then(|()| file.sync_all()).map_err(|e| FileError::io(FileAction::Write, path, e))?;
    Ok(())
}
