//! The decision log: every decision's receipt, written before the decision
//! is returned, into a transparency log ([`flowgate_log::store`]).
//!
//! Threads hand their receipts to one queue under a short lock, where each
//! gets its index and time (never earlier than the entry before it, so the
//! log's times never go back, even when the clock does) and is encoded;
//! a policy-set entry goes first whenever the deciding set is not the one
//! the log names last (and at the first receipt after each start). Then
//! one of the threads writes everything queued, with one `write` per file,
//! one signed checkpoint and, under [`Durability::Fsync`], `fdatasync`s:
//! group commit. A thread returns once a group that holds its receipts is
//! written and signed.
//!
//! A group that fails (a full disk, a file-size limit) is cut back from
//! every file: its receipts are never written and their decisions fail
//! closed; the log carries on when writes succeed again. A failed sync is
//! fatal: the log refuses every later receipt until it is opened again,
//! which checks it (see [`flowgate_log::store::Appender::open`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flowgate_log::receipt::push_placed;
use flowgate_log::store::{AppendOptions, Appender, Durability, Group, Head, Recovery, push_frame};

use crate::bundle::SecretKey;
use crate::decide::PolicySet;
use crate::model::Digest;

use super::error::LogError;
use super::receipt::{Batch, Numbering, Unloggable};

/// How a decision log is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// When a receipt counts as written.
    pub durability: Durability,
    /// Also keep each record, beside its receipt (which holds only its digest).
    pub keep_records: bool,
    /// Keep a checkpoint in the log's history, and sync its tree, at least
    /// this often while receipts arrive.
    pub checkpoint_every: Duration,
    /// The log's name in its checkpoints. `None`: the one the log has, or,
    /// for a new log, one derived from its key (`flowgate.local/` and 16 hex
    /// digits). A log keeps its origin: another one is refused.
    pub origin: Option<String>,
}

impl Default for LogOptions {
    /// `fsync`, no records, a checkpoint kept every minute, the key's origin.
    fn default() -> LogOptions {
        LogOptions {
            durability: Durability::Fsync,
            keep_records: false,
            checkpoint_every: Duration::from_secs(60),
            origin: None,
        }
    }
}

/// A decision log being written. See the module docs.
pub struct DecisionLog {
    dir: PathBuf,
    options: LogOptions,
    queue: Mutex<Queue>,
    writer: Mutex<Writer>,
    recovery: Recovery,
    /// The numbering of the set that decided last.
    numbering: Mutex<Option<Arc<Numbering>>>,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog").field("dir", &self.dir).field("options", &self.options).finish_non_exhaustive()
    }
}

/// What threads append to.
struct Queue {
    /// Bumped when queued entries are dropped after a failed write.
    generation: u64,
    /// The index the next entry gets.
    next: u64,
    last_time: u64,
    /// The set the newest queued (or written) entries name: id and index.
    set: Option<(Digest, u64)>,
    /// Queued entries, framed.
    pending: Vec<u8>,
    records: Vec<(u64, String)>,
    /// Set when the log can take no more receipts.
    refused: Option<String>,
}

/// The files: what one thread at a time writes.
struct Writer {
    appender: Appender,
    /// A buffer to swap with the queue's.
    spare: Vec<u8>,
    generation: u64,
    /// For each earlier generation, the size the log had when it ended.
    survived: Vec<u64>,
    /// The set the log names last, as written.
    set: Option<(Digest, u64)>,
    last_error: String,
    closed: bool,
}

impl DecisionLog {
    /// Opens (or creates) the log in `dir`, checking it first: the stored
    /// tree against the last checkpoint; entries no checkpoint signed are
    /// cut (see [`DecisionLog::recovery`]); a damaged log is refused.
    /// Checkpoints are signed with `key`.
    pub fn open(dir: impl Into<PathBuf>, key: SecretKey, options: LogOptions) -> Result<DecisionLog, LogError> {
        let dir = dir.into();
        let append_options = AppendOptions {
            origin: options.origin.clone(),
            durability: options.durability,
            keep_records: options.keep_records,
            checkpoint_every: options.checkpoint_every,
        };
        let (appender, recovery) =
            Appender::open(&dir, key, append_options).map_err(|source| LogError::Store { dir: dir.clone(), source })?;
        let queue = Queue {
            generation: 0,
            next: appender.size(),
            last_time: appender.last_time(),
            set: None,
            pending: Vec::new(),
            records: Vec::new(),
            refused: None,
        };
        let writer = Writer {
            appender,
            spare: Vec::new(),
            generation: 0,
            survived: Vec::new(),
            set: None,
            last_error: String::new(),
            closed: false,
        };
        Ok(DecisionLog {
            dir,
            options,
            queue: Mutex::new(queue),
            writer: Mutex::new(writer),
            recovery,
            numbering: Mutex::new(None),
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

    /// Its origin: the name its checkpoints give it.
    pub fn origin(&self) -> String {
        lock(&self.writer).appender.origin().to_owned()
    }

    /// How it is written.
    pub fn options(&self) -> &LogOptions {
        &self.options
    }

    /// Entries in the log, queued ones included: receipts and policy sets.
    pub fn size(&self) -> u64 {
        lock(&self.queue).next
    }

    /// The newest signed checkpoint.
    pub fn head(&self) -> Head {
        lock(&self.writer).appender.head().clone()
    }

    /// The numbering of `set`, made once per set.
    pub(crate) fn numbering(&self, set: &PolicySet) -> Result<Arc<Numbering>, LogError> {
        let mut cached = lock(&self.numbering);
        if let Some(numbering) = cached.as_ref().filter(|n| n.id == set.id) {
            return Ok(Arc::clone(numbering));
        }
        let numbering = Arc::new(Numbering::of(set).map_err(|problem| self.unloggable(problem))?);
        *cached = Some(Arc::clone(&numbering));
        Ok(numbering)
    }

    pub(crate) fn unloggable(&self, problem: Unloggable) -> LogError {
        LogError::Refused { dir: self.dir.clone(), problem: problem.to_string() }
    }

    /// Appends the receipts of `batch` (decided by the set `numbering`
    /// numbers) and returns once they are written as
    /// [`LogOptions::durability`] says.
    pub(crate) fn append(&self, numbering: &Numbering, batch: Batch) -> Result<(), LogError> {
        if batch.len() == 0 {
            return Ok(());
        }
        let (generation, last) = {
            let mut queue = lock(&self.queue);
            if let Some(problem) = &queue.refused {
                return Err(self.refused(problem.clone()));
            }
            let now = now_ms().max(queue.last_time);
            queue.last_time = now;
            let set = match queue.set {
                Some((id, index)) if id == numbering.id => index,
                _ => {
                    let index = queue.next;
                    let entry = numbering.entry(index, now);
                    push_frame(&mut queue.pending, &entry);
                    queue.set = Some((numbering.id, index));
                    queue.next += 1;
                    index
                }
            };
            let first = queue.next;
            let Queue { pending, records, .. } = &mut *queue;
            let mut start = 0;
            for (at, &end) in batch.ends.iter().enumerate() {
                push_placed(pending, first + at as u64, now, set, &batch.fields[start..end]);
                start = end;
            }
            records.extend(batch.records.into_iter().map(|(at, record)| (first + at as u64, record)));
            queue.next += batch.ends.len() as u64;
            (queue.generation, queue.next)
        };
        self.write_through(generation, last)
    }

    /// Writes everything queued, unless a group already holds the entries
    /// of `generation` up to (not including) `end`.
    fn write_through(&self, generation: u64, end: u64) -> Result<(), LogError> {
        let mut writer = lock(&self.writer);
        if generation < writer.generation {
            return if end <= writer.survived[generation as usize] {
                Ok(())
            } else {
                Err(self.refused(format!("the receipts were not written: {}", writer.last_error)))
            };
        }
        if writer.appender.size() >= end {
            return Ok(());
        }
        if writer.closed {
            return Err(self.refused("the log is closed".into()));
        }
        // The queue gets the writer's spare buffer, emptied: its capacity
        // is reused, group after group.
        let mut entries = std::mem::take(&mut writer.spare);
        entries.clear();
        let (records, set) = {
            let mut queue = lock(&self.queue);
            std::mem::swap(&mut entries, &mut queue.pending);
            (std::mem::take(&mut queue.records), queue.set)
        };
        let appended = writer.appender.append(&Group { entries: &entries, records: &records }).map(|_| ());
        writer.spare = entries;
        match appended {
            Ok(_) => {
                writer.set = set;
                Ok(())
            }
            Err(failure) => {
                // The group never happened: the files are cut back; the
                // queue goes back to the log as written.
                let size = writer.appender.size();
                writer.survived.push(size);
                writer.generation += 1;
                writer.last_error = failure.error.to_string();
                let mut queue = lock(&self.queue);
                queue.generation = writer.generation;
                queue.next = size;
                queue.set = writer.set;
                queue.pending.clear();
                queue.records.clear();
                if failure.fatal {
                    queue.refused =
                        Some(format!("{}; the log takes no more receipts until it is opened again", failure.error));
                }
                Err(LogError::NotWritten { dir: self.dir.clone(), source: failure.error })
            }
        }
    }

    /// Keeps the newest checkpoint in the log's history, syncs every
    /// file, and returns the checkpoint.
    pub fn checkpoint(&self) -> Result<Head, LogError> {
        let mut writer = lock(&self.writer);
        match writer.appender.checkpoint() {
            Ok(head) => Ok(head.clone()),
            Err(source) => {
                lock(&self.queue).refused =
                    Some(format!("{source}; the log takes no more receipts until it is opened again"));
                Err(LogError::Store { dir: self.dir.clone(), source })
            }
        }
    }

    /// Closes the log: its newest checkpoint is kept in its history and
    /// every file synced; later receipts are refused. Dropping the log does
    /// the same, without reporting a failure.
    pub fn close(&self) -> Result<Head, LogError> {
        {
            let mut writer = lock(&self.writer);
            if writer.closed {
                return Err(self.refused("the log is closed".into()));
            }
            writer.closed = true;
        }
        lock(&self.queue).refused = Some("the log is closed".into());
        self.checkpoint()
    }

    fn refused(&self, problem: String) -> LogError {
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic cannot leave the queue half-updated in a way that matters
    // more than refusing to log: carry on with the data as it is.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
