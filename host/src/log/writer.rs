//! The decision log: every decision's receipt, chained, written before the
//! decision is returned.
//!
//! Threads append receipts to one in-memory chain (a short critical section:
//! each receipt's last members are hashed there, its decision members were
//! hashed before), then one of them writes everything pending with one
//! `write` and, under [`Durability::Fsync`], one `fsync`: group commit. A
//! thread returns once a write that holds its receipts has finished.
//!
//! A write that fails (a full disk, a file-size limit) is cut back to the
//! last whole receipt and the chain rolls back to it: the receipts of that
//! group are never written, and their decisions fail closed. The log then
//! carries on when writes succeed again. A failed `fsync` is different: the
//! kernel may have dropped the pages, so the log refuses every later
//! receipt until it is opened again (which recovers it).
//!
//! Opening a log recovers it: a torn last receipt (a crash mid-write) is cut
//! and reported, a segment left open by a crash is closed with a
//! checkpoint, and a new segment continues the chain.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bundle::SecretKey;
use crate::fs::{self, FileAction, FileError};
use crate::model::Digest;

use super::checkpoint::Checkpoint;
use super::error::LogError;
use super::receipt::{GENESIS, Receipt, Unsealed};
use super::segments::{self, Lines};

/// When a receipt counts as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// On disk: every group of receipts is `fsync`ed before its decisions
    /// are returned. Survives a power cut.
    #[default]
    Fsync,
    /// Handed to the operating system (`write`) before the decisions are
    /// returned, `fsync`ed at checkpoints. Survives the process being
    /// killed, not a power cut.
    Buffered,
}

/// How a decision log is written.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// When a receipt counts as written.
    pub durability: Durability,
    /// A segment is closed, with a checkpoint, once it reaches this size.
    pub segment_bytes: u64,
    /// Also write each record, beside the chain (which holds only its digest).
    pub keep_records: bool,
    /// Write a checkpoint at least this often while receipts arrive.
    pub checkpoint_every: Duration,
}

impl Default for LogOptions {
    /// `fsync`, 64 MiB segments, no records, a checkpoint a minute.
    fn default() -> LogOptions {
        LogOptions {
            durability: Durability::Fsync,
            segment_bytes: 64 << 20,
            keep_records: false,
            checkpoint_every: Duration::from_secs(60),
        }
    }
}

/// What opening a log found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Receipts already in the log.
    pub receipts: u64,
    /// A torn last line that was cut: its segment and length in bytes.
    pub cut: Option<(u64, u64)>,
    /// A segment a crash left open, closed now with a checkpoint.
    pub closed: Option<u64>,
}

/// A decision log being written. See the module docs.
pub struct DecisionLog {
    dir: PathBuf,
    key: SecretKey,
    options: LogOptions,
    chain: Mutex<Chain>,
    writer: Mutex<Writer>,
    recovery: Recovery,
    /// Held for the life of the log: one writer per directory.
    _lock: File,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog").field("dir", &self.dir).field("options", &self.options).finish_non_exhaustive()
    }
}

/// The chain in memory: what threads append to.
struct Chain {
    /// Bumped when pending receipts are dropped after a failed write.
    generation: u64,
    seq: u64,
    head: Digest,
    pending: Vec<u8>,
    pending_records: Vec<u8>,
    /// Times of the first and last pending receipt.
    pending_times: Option<(u64, u64)>,
    /// Set when the log can take no more receipts.
    refused: Option<String>,
}

/// The files: what one thread at a time writes.
struct Writer {
    generation: u64,
    /// For each earlier generation, the last receipt that reached the file.
    survived: Vec<u64>,
    segment: u64,
    file: File,
    records: Option<File>,
    bytes: u64,
    records_bytes: u64,
    /// The last receipt written, and its hash.
    written: u64,
    head: Digest,
    /// Times of this segment's first and last receipt.
    times: Option<(u64, u64)>,
    last_checkpoint: Instant,
    last_error: String,
    closed: bool,
}

impl DecisionLog {
    /// Opens (or creates) the log in `dir`, recovering it after a crash;
    /// checkpoints are signed with `key`. See [`DecisionLog::recovery`].
    pub fn open(dir: impl Into<PathBuf>, key: SecretKey, options: LogOptions) -> Result<DecisionLog, LogError> {
        let dir = dir.into();
        fs::create_private_dir(&dir, 0o750)?;
        let lock = lock_dir(&dir)?;
        let found = segments::list(&dir)?;
        let mut recovery = Recovery::default();
        let mut newest = None;
        let mut last = None;
        // The newest segment that holds a receipt gives the chain's head;
        // only the newest of all may end in a torn line.
        for (i, (number, path)) in found.iter().enumerate().rev() {
            let is_newest = i + 1 == found.len();
            let tail = scan(path, is_newest)?;
            if is_newest {
                if let Some(len) = tail.torn {
                    cut_to(path, tail.good_end)?;
                    cut_records(&segments::records_path(&dir, *number))?;
                    recovery.cut = Some((*number, len));
                }
                newest = Some((*number, path, tail.closed, tail.times.unwrap_or((0, 0))));
            }
            if tail.last.is_some() {
                last = tail.last;
                break;
            }
        }
        let (seq, head) = last.unwrap_or((0, GENESIS));
        recovery.receipts = seq;
        if let Some((number, path, false, (from, to))) = newest {
            append_checkpoint(path, &Checkpoint::sign(&key, number, seq, head, from, to))?;
            recovery.closed = Some(number);
        }
        let segment = found.last().map_or(1, |(n, _)| n + 1);
        let (file, records) = create_segment(&dir, segment, options.keep_records)?;
        let writer = Writer {
            generation: 0,
            survived: Vec::new(),
            segment,
            file,
            records,
            bytes: 0,
            records_bytes: 0,
            written: seq,
            head,
            times: None,
            last_checkpoint: Instant::now(),
            last_error: String::new(),
            closed: false,
        };
        let chain = Chain {
            generation: 0,
            seq,
            head,
            pending: Vec::new(),
            pending_records: Vec::new(),
            pending_times: None,
            refused: None,
        };
        Ok(DecisionLog {
            dir,
            key,
            options,
            chain: Mutex::new(chain),
            writer: Mutex::new(writer),
            recovery,
            _lock: lock,
        })
    }

    /// What opening the log found and repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How it is written.
    pub fn options(&self) -> &LogOptions {
        &self.options
    }

    /// Receipts chained so far.
    pub fn count(&self) -> u64 {
        lock(&self.chain).seq
    }

    /// Chains `receipts` (with their records' JSON, when records are kept)
    /// and returns once they are written as [`LogOptions::durability`] says.
    pub(crate) fn append(&self, receipts: Vec<(Unsealed, Option<String>)>) -> Result<(), LogError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let (generation, last) = {
            let mut chain = lock(&self.chain);
            if let Some(problem) = &chain.refused {
                return Err(self.error(problem.clone()));
            }
            let now = now_ms();
            for (receipt, record) in receipts {
                let seq = chain.seq + 1;
                if let Some(record) = record {
                    let line = format!("{{\"seq\":{seq},\"record\":{record}}}\n");
                    chain.pending_records.extend_from_slice(line.as_bytes());
                }
                let Chain { pending, head, .. } = &mut *chain;
                *head = receipt.seal(seq, now, head, pending);
                chain.seq = seq;
            }
            chain.pending_times = Some(chain.pending_times.map_or((now, now), |(first, _)| (first, now)));
            (chain.generation, chain.seq)
        };
        self.write_through(generation, last)
    }

    /// Writes every pending receipt, unless a write already holds receipt
    /// `last` of `generation`.
    fn write_through(&self, generation: u64, last: u64) -> Result<(), LogError> {
        let mut writer = lock(&self.writer);
        if generation < writer.generation {
            return if last <= writer.survived[generation as usize] {
                Ok(())
            } else {
                Err(self.error(format!("the receipts were not written: {}", writer.last_error)))
            };
        }
        if writer.written >= last {
            return Ok(());
        }
        if writer.closed {
            return Err(self.error("the log is closed".into()));
        }
        let (bytes, records, seq, head, times) = {
            let mut chain = lock(&self.chain);
            (
                std::mem::take(&mut chain.pending),
                std::mem::take(&mut chain.pending_records),
                chain.seq,
                chain.head,
                chain.pending_times.take(),
            )
        };
        match self.write_group(&mut writer, &bytes, &records) {
            Ok(()) => {
                writer.written = seq;
                writer.head = head;
                if let Some((first, last)) = times {
                    writer.times = Some(writer.times.map_or((first, last), |(from, _)| (from, last)));
                }
                self.checkpoint_if_due(&mut writer).map_err(|err| self.refuse(&mut writer, err))
            }
            Err(WriteError { problem, recoverable }) => {
                // The group never happened: cut the files back, and roll the
                // chain back to the last receipt on disk.
                let cut = writer.file.set_len(writer.bytes).and_then(|()| writer.file.seek(SeekFrom::End(0)));
                let records_bytes = writer.records_bytes;
                let cut_records = match writer.records.as_mut() {
                    Some(file) => file.set_len(records_bytes).and_then(|()| file.seek(SeekFrom::End(0))),
                    None => Ok(0),
                };
                let survived = writer.written;
                writer.survived.push(survived);
                writer.generation += 1;
                writer.last_error = problem.clone();
                let mut chain = lock(&self.chain);
                chain.generation = writer.generation;
                chain.seq = writer.written;
                chain.head = writer.head;
                chain.pending.clear();
                chain.pending_records.clear();
                chain.pending_times = None;
                if !recoverable || cut.is_err() || cut_records.is_err() {
                    chain.refused = Some(format!("{problem}; the log takes no more receipts until it is opened again"));
                }
                Err(self.error(format!("the receipts were not written: {problem}")))
            }
        }
    }

    fn write_group(&self, writer: &mut Writer, bytes: &[u8], records: &[u8]) -> Result<(), WriteError> {
        if let Some(file) = writer.records.as_mut().filter(|_| !records.is_empty()) {
            file.write_all(records).map_err(WriteError::recoverable)?;
        }
        writer.file.write_all(bytes).map_err(WriteError::recoverable)?;
        if self.options.durability == Durability::Fsync {
            sync(writer).map_err(WriteError::fatal)?;
        }
        writer.bytes += bytes.len() as u64;
        writer.records_bytes += records.len() as u64;
        Ok(())
    }

    /// Writes a checkpoint when the segment is full (then starts the next)
    /// or the interval has passed.
    fn checkpoint_if_due(&self, writer: &mut Writer) -> Result<(), String> {
        let full = writer.bytes >= self.options.segment_bytes;
        if full || writer.last_checkpoint.elapsed() >= self.options.checkpoint_every {
            self.write_checkpoint(writer)?;
        }
        if full {
            let next = writer.segment + 1;
            let (file, records) =
                create_segment(&self.dir, next, self.options.keep_records).map_err(|e| e.to_string())?;
            writer.segment = next;
            writer.file = file;
            writer.records = records;
            writer.bytes = 0;
            writer.records_bytes = 0;
            writer.times = None;
        }
        Ok(())
    }

    fn write_checkpoint(&self, writer: &mut Writer) -> Result<Checkpoint, String> {
        let (from, to) = writer.times.unwrap_or((0, 0));
        let checkpoint = Checkpoint::sign(&self.key, writer.segment, writer.written, writer.head, from, to);
        let line = format!("{}\n", checkpoint.to_line());
        let written = writer.file.write_all(line.as_bytes()).and_then(|()| sync(writer));
        written.map_err(|err| format!("cannot write a checkpoint to segment {}: {err}", writer.segment))?;
        writer.bytes += line.len() as u64;
        writer.last_checkpoint = Instant::now();
        Ok(checkpoint)
    }

    /// Writes a checkpoint of everything written so far, and returns it.
    pub fn checkpoint(&self) -> Result<Checkpoint, LogError> {
        let mut writer = lock(&self.writer);
        self.write_checkpoint(&mut writer).map_err(|problem| self.refuse(&mut writer, problem))
    }

    /// Closes the current segment with a checkpoint; later receipts are refused.
    /// Dropping the log does the same, without reporting a failure.
    pub fn close(&self) -> Result<Checkpoint, LogError> {
        let mut writer = lock(&self.writer);
        if writer.closed {
            return Err(self.error("the log is closed".into()));
        }
        writer.closed = true;
        lock(&self.chain).refused = Some("the log is closed".into());
        self.write_checkpoint(&mut writer).map_err(|problem| self.error(problem))
    }

    fn refuse(&self, writer: &mut Writer, problem: String) -> LogError {
        writer.last_error = problem.clone();
        lock(&self.chain).refused = Some(format!("{problem}; the log takes no more receipts until it is opened again"));
        self.error(problem)
    }

    fn error(&self, problem: String) -> LogError {
        LogError::Refused { dir: self.dir.clone(), problem }
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        let closed = lock(&self.writer).closed;
        if !closed {
            let _ = self.close();
        }
    }
}

struct WriteError {
    problem: String,
    /// Whether the log can go on once writes succeed again.
    recoverable: bool,
}

impl WriteError {
    fn recoverable(err: std::io::Error) -> WriteError {
        WriteError { problem: format!("cannot write: {err}"), recoverable: true }
    }

    fn fatal(err: std::io::Error) -> WriteError {
        WriteError { problem: format!("cannot fsync: {err}"), recoverable: false }
    }
}

fn sync(writer: &mut Writer) -> std::io::Result<()> {
    if let Some(records) = &writer.records {
        records.sync_data()?;
    }
    writer.file.sync_data()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic cannot leave the chain half-updated in a way that matters
    // more than refusing to log: carry on with the data as it is.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the end of a segment holds.
#[derive(Default)]
struct Tail {
    /// The last receipt: its number and hash.
    last: Option<(u64, Digest)>,
    /// Times of the segment's first and last receipt.
    times: Option<(u64, u64)>,
    /// Where the last whole line ends.
    good_end: u64,
    /// The length of a torn last line.
    torn: Option<u64>,
    /// Whether its last line is a checkpoint.
    closed: bool,
}

/// Reads a segment through, checking each line and each link within it.
/// Only a torn last line of the newest segment (a crash mid-write: its
/// decisions were never returned) is tolerated: anything else is damage for
/// `flowgate audit verify` to find and name, not for the log to write over.
fn scan(path: &Path, newest: bool) -> Result<Tail, LogError> {
    let broken = |line: u64, problem: String| LogError::Broken { path: path.to_owned(), line, problem };
    let mut tail = Tail::default();
    let mut lines = Lines::open(path)?;
    let mut number = 0;
    while let Some(line) = lines.next_line()? {
        number += 1;
        if !line.complete {
            if !newest {
                return Err(broken(number, "a torn line, though a newer segment follows".into()));
            }
            tail.torn = Some(line.len);
            break;
        }
        let problem = if line.too_long() {
            Some("the line is too long".to_owned())
        } else if Checkpoint::is_checkpoint_line(&line.bytes) {
            Checkpoint::parse(&line.bytes).err().map(|err| err.to_string())
        } else {
            match Receipt::parse(&line.bytes) {
                Err(problem) => Some(problem.to_string()),
                Ok((_, false)) => Some("its hash does not match its bytes".into()),
                Ok((receipt, true)) => match tail.last {
                    Some((seq, hash)) if receipt.seq != seq + 1 || receipt.prev != hash => {
                        Some(format!("receipt {} does not follow receipt {seq}", receipt.seq))
                    }
                    _ => {
                        tail.last = Some((receipt.seq, receipt.hash));
                        let time = receipt.time_ms;
                        tail.times = Some(tail.times.map_or((time, time), |(first, _)| (first, time)));
                        None
                    }
                },
            }
        };
        if let Some(problem) = problem {
            return Err(broken(number, problem));
        }
        tail.good_end = line.end();
        tail.closed = Checkpoint::is_checkpoint_line(&line.bytes);
    }
    Ok(tail)
}

/// Cuts a segment back to its last whole line.
fn cut_to(path: &Path, len: u64) -> Result<(), LogError> {
    let file = fs::open_for_writing(path, false)?;
    file.set_len(len).and_then(|()| file.sync_all()).map_err(|e| FileError::io(FileAction::Write, path, e))?;
    Ok(())
}

/// Cuts a torn last line from a records file (its receipt may be gone).
fn cut_records(path: &Path) -> Result<(), LogError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let mut lines = Lines::open(path)?;
    let mut good_end = 0;
    while let Some(line) = lines.next_line()? {
        if line.complete {
            good_end = line.end();
        }
    }
    cut_to(path, good_end)
}

fn append_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), LogError> {
    let mut file = fs::open_for_writing(path, true)?;
    file.write_all(format!("{}\n", checkpoint.to_line()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| FileError::io(FileAction::Write, path, e))?;
    Ok(())
}

fn create_segment(dir: &Path, number: u64, keep_records: bool) -> Result<(File, Option<File>), FileError> {
    let file = fs::create_new(&segments::segment_path(dir, number), 0o640, true)?;
    let records =
        keep_records.then(|| fs::create_new(&segments::records_path(dir, number), 0o640, true)).transpose()?;
    // The new names must survive a crash as well as what is written to them.
    fs::sync_dir(dir)?;
    Ok((file, records))
}

fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let path = dir.join("lock");
    let file = fs::open_or_create(&path, 0o640)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Refused {
            dir: dir.to_owned(),
            problem: "is being written by another process: one log has one writer".into(),
        }),
        Err(std::fs::TryLockError::Error(err)) => Err(FileError::io(FileAction::Lock, &path, err).into()),
    }
}
