//! A whole log checked on every core, in bounded memory: what `flowgate
//! audit verify` does, and the scan behind `audit prove --flow`.
//!
//! The entries are cut into chunks of [`CHUNK`] (aligned, so each is a
//! perfect subtree), each found from `entries.idx` and read by one worker
//! with its own file handles: the worker decodes and checks every entry
//! ([`ChunkVerifier`]), re-hashes it, compares the hashes the log stores
//! for it, checks the index offsets that fall in it, and matches its kept
//! records by index and digest. A [`Combiner`] joins the chunks in order
//! (time order and policy-set references across chunks, the tree), and
//! records the root at every size a checkpoint names from the chunks'
//! edges: so every checkpoint (the log's two slots, its history, those a
//! regulator collected) is compared with the tree the entries give, not
//! with hashes the log stores.
//!
//! Memory: per worker a 256 KiB read buffer, one entry (at most 1 MiB),
//! one record line (at most 1 MiB) and a chunk's report; at most twice as
//! many chunk reports as workers wait to be joined; problems are kept to
//! the first 64 per chunk and overall. Whatever the log holds.
//!
//! What cannot be told from inside a log: a platform holding the log key
//! can rewrite its log, or cut its newest entries, and sign what is left;
//! only a checkpoint someone else kept shows it ([`VerifyOptions::collected`],
//! witnesses' cosignatures).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint, find_equivocation};
use crate::digest::Digest;
use crate::entry::Entry;
use crate::fs::{self, FileError};
use crate::keys::PublicKey;
use crate::merkle::{EMPTY_ROOT, Subtree};
use crate::note::{NoteError, Verifier};
use crate::tiles::is_stored;
use crate::verify::{ChunkReport, ChunkVerifier, Combiner, MAX_PROBLEMS, Problem, RecordProblem};

use super::error::{FrameProblem, StoreError};
use super::files::{self, CHUNK, ENTRIES, Frames, INDEX, INDEX_STRIDE, SLOTS, file_len, level_path, records_path};
use super::records::{RecordLines, exposed};
use super::stored::{Stored, StoredCheckpoint};

/// Tells a kept record's digest from its JSON, or why it is not a record:
/// the host's (a record's digest needs its binary encoding).
pub type RecordCheck<'a> = &'a (dyn Fn(&[u8]) -> Result<Digest, String> + Sync);

/// What a log is verified against.
#[derive(Clone)]
pub struct VerifyOptions<'a> {
    /// The log's public key.
    pub key: PublicKey,
    /// Checkpoints collected from the log earlier (each a note, perhaps
    /// cosigned): the log must still hold every tree they signed.
    pub collected: Vec<Vec<u8>>,
    /// Witnesses whose cosignature some collected checkpoint must carry.
    pub witnesses: Vec<Verifier>,
    /// Checks kept records; without it they are counted, not checked.
    pub records: Option<RecordCheck<'a>>,
    /// Workers; 0 for one per core.
    pub threads: usize,
}

impl fmt::Debug for VerifyOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("key", &self.key)
            .field("collected", &self.collected.len())
            .field("witnesses", &self.witnesses)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl VerifyOptions<'_> {
    /// Against `key` alone, on every core.
    pub fn new(key: PublicKey) -> VerifyOptions<'static> {
        VerifyOptions { key, collected: Vec::new(), witnesses: Vec::new(), records: None, threads: 0 }
    }
}

/// What is wrong with a log, at its gravest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BreakKind {
    /// Two checkpoints of one size with different roots: the log signed
    /// two histories.
    Equivocation,
    /// The checkpoints are signed by another key than the one given.
    WrongKey,
    /// A checkpoint that names the log key but whose signature fails, or
    /// that no key given signed.
    ForgedCheckpoint,
    /// The log holds fewer entries than a checkpoint signed.
    Truncated,
    /// The tree of a checkpoint's size is not the one it signed.
    Rewritten,
    /// An entry, a stored hash, an index offset or a kept record changed.
    Edited,
    /// Entries are missing before an entry (it states a later index).
    Deleted,
    /// An entry that is not in its place (it states an earlier index: a
    /// copy), or a kept record added.
    Inserted,
    /// Entries that swapped places (each states the other's index).
    Reordered,
    /// An entry dated before the one before it.
    TimeBackwards,
    /// No checkpoint given is cosigned by a witness required.
    NotCosigned,
    /// Kept records others can read.
    Exposed,
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakKind::Equivocation => "equivocation",
            BreakKind::WrongKey => "wrong key",
            BreakKind::ForgedCheckpoint => "forged checkpoint",
            BreakKind::Truncated => "truncated",
            BreakKind::Rewritten => "rewritten",
            BreakKind::Edited => "edited",
            BreakKind::Deleted => "deleted",
            BreakKind::Inserted => "inserted",
            BreakKind::Reordered => "reordered",
            BreakKind::TimeBackwards => "time went back",
            BreakKind::NotCosigned => "not cosigned",
            BreakKind::Exposed => "records exposed",
        })
    }
}

/// One thing wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// What kind.
    pub kind: BreakKind,
    /// The entry concerned, where there is one.
    pub index: Option<u64>,
    /// What was found.
    pub detail: String,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(index) => write!(f, "entry {index}: {}: {}", self.kind, self.detail),
            None => write!(f, "{}: {}", self.kind, self.detail),
        }
    }
}

/// What verification found. A broken log is a result, not an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Entries read.
    pub entries: u64,
    /// Receipts among them.
    pub receipts: u64,
    /// Policy sets among them.
    pub policy_sets: u64,
    /// The root of the tree of every entry.
    pub root: Digest,
    /// The log's newest checkpoint signed by the key (its slots and history).
    pub checkpoint: Option<Checkpoint>,
    /// Checkpoints of the log's history file checked.
    pub history: u64,
    /// Collected checkpoints checked.
    pub collected: u64,
    /// For each witness required, the largest tree it cosigned, by name.
    pub witnessed: Vec<(String, u64)>,
    /// Kept records that match their receipts.
    pub records: u64,
    /// Receipts whose kept record was erased (in chunks that keep records).
    pub erased: u64,
    /// Entries after the newest checkpoint: not signed; the next start cuts them.
    pub unsigned: u64,
    /// Whether there are such entries (a group being written, or a crash).
    pub open: bool,
    /// Stored hashes missing (the tree lags the entries after a crash; the
    /// next start rebuilds them).
    pub tree_lag: u64,
    /// Things worth saying that break nothing.
    pub notes: Vec<String>,
    /// The gravest problem, if any.
    pub broken: Option<Break>,
    /// The first problems, gravest first (at most 64).
    pub breaks: Vec<Break>,
    /// Problems beyond those.
    pub more: u64,
}

/// Verifies the log in `dir`; see the module docs for what is checked.
pub fn verify(dir: &Path, options: &VerifyOptions<'_>) -> Result<Verified, StoreError> {
    verify_joined(dir, options, Vec::new())
}

/// One unit of a log verified alone: the chunk of entries `[chunk·CHUNK,
/// (chunk+1)·CHUNK)`, with its stored hashes, index offsets and kept
/// records, as [`verify`] checks each chunk. Units are verified anywhere
/// the directory is readable ([`verify_unit`], on other machines) and
/// joined by [`verify_joined`], which gives the verdict [`verify`] gives.
/// It travels as JSON (serde); the joiner trusts it as much as it trusts
/// whoever verified it, and checks only that it fits its place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnitVerified {
    /// The chunk.
    pub chunk: u64,
    /// The byte offset it was read from.
    offset: u64,
    /// The checkpoint sizes within it whose roots it kept.
    interest: Vec<u64>,
    done: ChunkDone,
}

impl UnitVerified {
    /// Entries read in it.
    pub fn entries(&self) -> u64 {
        self.done.report.entries
    }

    /// Receipts among them.
    pub fn receipts(&self) -> u64 {
        self.done.report.receipts
    }

    /// The gravest problem found within the unit alone (the joined verdict
    /// may find graver ones across units and checkpoints).
    pub fn broken(&self) -> Option<Break> {
        let problems = &self.done.report.problems;
        problems.iter().map(|problem| from_problem(problem, problems)).min_by_key(|b| (b.kind, b.index))
    }

    /// Whether it was verified for this place and these checkpoint sizes.
    fn fits(&self, chunk: u64, offset: u64, interest: &[u64]) -> bool {
        let report = &self.done.report;
        self.chunk == chunk
            && self.offset == offset
            && report.start == chunk * CHUNK
            && report.entries <= CHUNK
            && self.interest == chunk_interest(interest, chunk)
    }
}

/// The units of the log in `dir`, in order: the chunks whose start
/// `entries.idx` gives (at least the first, even of an empty log).
/// Entries beyond them (an index that lags after a crash) are read by the
/// join itself.
pub fn units(dir: &Path) -> Result<Vec<u64>, StoreError> {
    Stored::open(dir)?;
    let index_points = file_len(&dir.join(INDEX))? / 8;
    Ok((0..index_points.div_ceil(CHUNK / INDEX_STRIDE).max(1)).collect())
}

/// Verifies unit `chunk` of the log in `dir` alone (see [`UnitVerified`]).
pub fn verify_unit(dir: &Path, options: &VerifyOptions<'_>, chunk_number: u64) -> Result<UnitVerified, StoreError> {
    let stored = Stored::open(dir)?;
    let interest = interest(&checkpoints(&stored, options, &mut Vec::new(), &mut Verified::default())?);
    let offset = match chunk_number {
        0 => 0,
        // A unit `units` does not list is past the index's end: an error.
        k => files::read_offsets(&dir.join(INDEX), k * (CHUNK / INDEX_STRIDE), 1)?[0],
    };
    let scan = Scan { interest: &interest, records: options.records, flow: None, threads: 1, parts: None };
    let done = chunk(dir, &scan, chunk_number, offset)?;
    Ok(UnitVerified { chunk: chunk_number, offset, interest: chunk_interest(&interest, chunk_number), done })
}

/// Verifies the log in `dir` as [`verify`] does, taking each chunk's
/// result from `parts` where one fits (same place, same checkpoints) and
/// verifying the others here: the same verdict, worded the same.
pub fn verify_joined(
    dir: &Path,
    options: &VerifyOptions<'_>,
    parts: Vec<UnitVerified>,
) -> Result<Verified, StoreError> {
    let stored = Stored::open(dir)?;
    let mut verified = Verified::default();
    let mut breaks = Vec::new();
    let seen = checkpoints(&stored, options, &mut breaks, &mut verified)?;
    let interest = interest(&seen);
    let parts: BTreeMap<u64, UnitVerified> = parts.into_iter().map(|part| (part.chunk, part)).collect();
    let scan = scan(
        &stored,
        &Scan {
            interest: &interest,
            records: options.records,
            flow: None,
            threads: options.threads,
            parts: Some(&parts),
        },
    )?;
    verified.entries = scan.entries;
    verified.receipts = scan.receipts;
    verified.policy_sets = scan.policy_sets;
    verified.root = scan.root;
    verified.records = scan.records;
    verified.erased = scan.erased;
    verified.tree_lag = scan.tree_lag;
    verified.notes.extend(scan.notes);
    for path in &scan.exposed {
        breaks.push(Break {
            kind: BreakKind::Exposed,
            index: None,
            detail: format!(
                "`{}` can be read by others than its owner: kept records are personal data",
                path.display()
            ),
        });
    }
    let signed = seen.iter().filter(|seen| seen.source.is_the_logs()).map(|seen| seen.checkpoint.size).max();
    for problem in &scan.problems {
        match problem {
            // A crash mid-write leaves a torn last entry after the newest
            // checkpoint: never acknowledged, and cut by the next start.
            Problem::Unframed { index, problem: FrameProblem::Torn, .. } if signed.is_some_and(|s| *index >= s) => {
                verified.notes.push(format!(
                    "the entries end in a torn entry {index}, after the newest checkpoint (a crash mid-write): never acknowledged, the next start cuts it"
                ));
            }
            _ => breaks.push(from_problem(problem, &scan.problems)),
        }
    }
    verified.more += scan.more_problems;

    // Every checkpoint against the tree the entries give.
    for seen in &seen {
        let checkpoint = &seen.checkpoint;
        if checkpoint.size > scan.entries {
            breaks.push(Break {
                kind: BreakKind::Truncated,
                index: Some(scan.entries),
                detail: format!(
                    "the log holds {} entries, but {} signed a tree of {}: entries were deleted",
                    scan.entries, seen.source, checkpoint.size
                ),
            });
        } else if let Some(root) = scan.roots.get(&checkpoint.size)
            && *root != checkpoint.root
        {
            breaks.push(Break {
                kind: BreakKind::Rewritten,
                index: None,
                detail: format!(
                    "the tree of the first {} entries has root {}, but {} signed root {}: the log was changed after it was signed",
                    checkpoint.size,
                    root.to_base64(),
                    seen.source,
                    checkpoint.root.to_base64()
                ),
            });
        }
    }
    let newest = seen.iter().filter(|seen| seen.source.is_the_logs()).max_by_key(|seen| seen.checkpoint.size);
    verified.checkpoint = newest.map(|seen| seen.checkpoint.clone());
    match newest {
        Some(head) if scan.entries > head.checkpoint.size => {
            verified.unsigned = scan.entries - head.checkpoint.size;
            verified.open = true;
        }
        None if scan.entries > 0 && !breaks.iter().any(|b| b.kind == BreakKind::WrongKey) => breaks.push(Break {
            kind: BreakKind::ForgedCheckpoint,
            index: None,
            detail: "the log holds entries but no checkpoint signed by the key given".into(),
        }),
        _ => {}
    }
    if let Some(equivocation) = find_equivocation(seen.iter().map(|seen| &seen.checkpoint)) {
        let (a, b) = equivocation.positions;
        breaks.push(Break {
            kind: BreakKind::Equivocation,
            index: None,
            detail: format!(
                "{} and {} both sign a tree of {} entries of `{}`, with roots {} and {}: the log signed two histories",
                seen[a].source,
                seen[b].source,
                equivocation.size,
                equivocation.origin,
                equivocation.roots.0.to_base64(),
                equivocation.roots.1.to_base64()
            ),
        });
    }
    for witness in &options.witnesses {
        let largest = seen
            .iter()
            .filter(|seen| seen.cosigned.iter().any(|name| name == witness.name()))
            .map(|seen| seen.checkpoint.size)
            .max();
        match largest {
            Some(size) => verified.witnessed.push((witness.name().to_owned(), size)),
            None => breaks.push(Break {
                kind: BreakKind::NotCosigned,
                index: None,
                detail: format!("no checkpoint given is cosigned by witness `{}`", witness.name()),
            }),
        }
    }
    breaks.sort_by_key(|b| (b.kind, b.index));
    verified.more += breaks.len().saturating_sub(MAX_PROBLEMS) as u64;
    breaks.truncate(MAX_PROBLEMS);
    verified.broken = breaks.first().cloned();
    verified.breaks = breaks;
    Ok(verified)
}

/// The sizes of the checkpoints seen, ascending, once each.
fn interest(seen: &[Seen]) -> Vec<u64> {
    let mut sizes: Vec<u64> = seen.iter().map(|seen| seen.checkpoint.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// Those of `interest` that chunk `chunk` ends a tree of.
fn chunk_interest(interest: &[u64], chunk: u64) -> Vec<u64> {
    let start = chunk * CHUNK;
    interest.iter().copied().filter(|size| *size > start && *size <= start + CHUNK).collect()
}

/// Where a checkpoint came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Slot(usize),
    History(usize),
    Collected(usize),
}

impl Source {
    fn is_the_logs(&self) -> bool {
        !matches!(self, Source::Collected(_))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Slot(slot) => write!(f, "the log's `{}`", SLOTS[*slot]),
            Source::History(n) => write!(f, "checkpoint {} of the log's history", n + 1),
            Source::Collected(n) => write!(f, "collected checkpoint {}", n + 1),
        }
    }
}

/// A checkpoint signed by the log key.
struct Seen {
    source: Source,
    checkpoint: Checkpoint,
    /// The witnesses (of those required) that cosigned it, by name.
    cosigned: Vec<String>,
}

/// The log's checkpoints and the collected ones, opened with the key; the
/// ones that do not open are breaks (or notes, for a torn slot).
fn checkpoints(
    stored: &Stored,
    options: &VerifyOptions<'_>,
    breaks: &mut Vec<Break>,
    verified: &mut Verified,
) -> Result<Vec<Seen>, StoreError> {
    let mut read: Vec<(Source, Result<StoredCheckpoint, CheckpointError>)> = Vec::new();
    for (slot, found) in stored.slots()?.into_iter().enumerate() {
        if let Some(found) = found {
            read.push((Source::Slot(slot), found));
        }
    }
    let (history, cut_short) = stored.history()?;
    if cut_short {
        verified.notes.push("the history file is longer than 64 MiB: only its first 64 MiB were read".into());
    }
    let last_history = history.len().saturating_sub(1);
    for (n, found) in history.into_iter().enumerate() {
        read.push((Source::History(n), found));
    }
    verified.history = read.iter().filter(|(s, _)| matches!(s, Source::History(_))).count() as u64;
    for (n, note) in options.collected.iter().enumerate() {
        read.push((Source::Collected(n), StoredCheckpoint::parse(note)));
    }
    verified.collected = options.collected.len() as u64;
    let mut seen = Vec::new();
    let mut origin: Option<String> = None;
    let mut wrong_key = None;
    for (source, found) in read {
        let opened = found.and_then(|found| {
            SignedCheckpoint::open_with_key(found.text().as_bytes(), &options.key, &options.witnesses)
        });
        match opened {
            Ok(signed) => {
                let cosigned = options
                    .witnesses
                    .iter()
                    .filter(|w| signed.cosigned_by(w).is_some())
                    .map(|w| w.name().to_owned())
                    .collect();
                let checkpoint = signed.checkpoint;
                match &origin {
                    Some(origin) if *origin != checkpoint.origin => breaks.push(Break {
                        kind: BreakKind::ForgedCheckpoint,
                        index: None,
                        detail: format!("{source} is of `{}`, not of this log, `{origin}`", checkpoint.origin),
                    }),
                    _ => {
                        origin.get_or_insert_with(|| checkpoint.origin.clone());
                        seen.push(Seen { source, checkpoint, cosigned });
                    }
                }
            }
            // A crash mid-write tears a slot (the other one stands) or the
            // history's last checkpoint: said, not counted against the log.
            Err(CheckpointError::Note(NoteError::Malformed(malformed)))
                if matches!(source, Source::Slot(_)) || source == Source::History(last_history) =>
            {
                if matches!(source, Source::Collected(_)) {
                    unreachable!("collected checkpoints are not torn by crashes");
                }
                verified.notes.push(format!("{source} cannot be read ({malformed}): a crash mid-write?"));
            }
            Err(CheckpointError::Note(NoteError::UnknownKey { signers, expected })) => {
                let detail = format!(
                    "{source} is signed by {} only, not by the key given ({})",
                    signers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                    expected.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                );
                wrong_key.get_or_insert(detail);
            }
            Err(CheckpointError::Note(NoteError::BadSignature(key))) => breaks.push(Break {
                kind: BreakKind::ForgedCheckpoint,
                index: None,
                detail: format!("{source}: the signature by {key} does not verify: changed after signing, or forged"),
            }),
            Err(err) => breaks.push(Break {
                kind: if matches!(source, Source::Collected(_)) {
                    BreakKind::ForgedCheckpoint
                } else {
                    BreakKind::Edited
                },
                index: None,
                detail: format!("{source} is not a checkpoint of the log: {err}"),
            }),
        }
    }
    if let Some(detail) = wrong_key {
        // Nothing opened with the key: it is most likely the wrong key, not
        // a forgery; some did: that one was signed by another key.
        let kind = if seen.is_empty() { BreakKind::WrongKey } else { BreakKind::ForgedCheckpoint };
        let detail = if seen.is_empty() {
            format!("{detail}: is it the right public key? (`flowgate key new` wrote it beside the log's `.key`)")
        } else {
            detail
        };
        breaks.push(Break { kind, index: None, detail });
    }
    Ok(seen)
}

/// A problem of an entry as a break (`all`: the other problems, to tell
/// two entries swapped from one deleted and one inserted).
fn from_problem(problem: &Problem, all: &[Problem]) -> Break {
    let index = Some(problem.index());
    let swapped = |i: u64, j: u64| all.contains(&Problem::Misplaced { index: j, stated: i });
    let kind = match problem {
        Problem::Misplaced { index, stated } if swapped(*index, *stated) => BreakKind::Reordered,
        Problem::Misplaced { index, stated } if stated > index => BreakKind::Deleted,
        Problem::Misplaced { .. } => BreakKind::Inserted,
        Problem::TimeBackwards { .. } => BreakKind::TimeBackwards,
        Problem::Record { problem: RecordProblem::Duplicate, .. } => BreakKind::Inserted,
        Problem::Record { problem: RecordProblem::NoReceipt, .. } => BreakKind::Deleted,
        _ => BreakKind::Edited,
    };
    Break { kind, index, detail: problem.to_string() }
}

/// What to read entries for.
struct Scan<'a> {
    /// Sizes whose roots are wanted, ascending.
    interest: &'a [u64],
    records: Option<RecordCheck<'a>>,
    /// Receipts of this flow (and platform, if given) are wanted.
    flow: Option<(Option<&'a str>, &'a str)>,
    threads: usize,
    /// Chunks verified elsewhere, to use where they fit.
    parts: Option<&'a BTreeMap<u64, UnitVerified>>,
}

/// What reading the entries found.
#[derive(Default)]
struct Scanned {
    entries: u64,
    receipts: u64,
    policy_sets: u64,
    root: Digest,
    roots: BTreeMap<u64, Digest>,
    records: u64,
    erased: u64,
    tree_lag: u64,
    exposed: Vec<PathBuf>,
    problems: Vec<Problem>,
    more_problems: u64,
    notes: Vec<String>,
    matches: Vec<u64>,
}

/// The most matches `find_flow` returns.
const MAX_MATCHES: usize = 1000;

/// The indexes of the receipts of flow `flow` (of `platform`, if given),
/// found by reading every entry on every core: a million receipts a second
/// per core, with no index to keep on disk. At most 1,000, in order.
pub fn find_flow(dir: &Path, platform: Option<&str>, flow: &str, threads: usize) -> Result<Vec<u64>, StoreError> {
    let stored = Stored::open(dir)?;
    let scan =
        scan(&stored, &Scan { interest: &[], records: None, flow: Some((platform, flow)), threads, parts: None })?;
    Ok(scan.matches)
}

/// One chunk's work.
struct Job {
    chunk: u64,
    offset: u64,
}

/// One chunk's result.
struct Done {
    chunk: u64,
    offset: u64,
    result: Result<ChunkDone, StoreError>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ChunkDone {
    report: ChunkReport,
    end_offset: u64,
    at_end: bool,
    edges: Vec<(u64, Vec<(Subtree, Digest)>)>,
    records: u64,
    erased: u64,
    tree_lag: u64,
    exposed: Option<PathBuf>,
    matches: Vec<u64>,
}

fn scan(stored: &Stored, scan: &Scan<'_>) -> Result<Scanned, StoreError> {
    let dir = stored.dir();
    let index_points = file_len(&dir.join(INDEX))? / 8;
    // Chunk starts the index gives (entry k·CHUNK is index point k·CHUNK/256).
    let per_chunk = CHUNK / INDEX_STRIDE;
    let known_chunks = index_points.div_ceil(per_chunk);
    let starts: Vec<u64> = (0..known_chunks)
        .map(|k| files::read_offsets(&dir.join(INDEX), k * per_chunk, 1).map(|o| o[0]))
        .collect::<Result<_, _>>()?;
    let threads = match scan.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let mut scanned = Scanned::default();
    let mut combiner = Combiner::new();
    let level_files = LevelFiles::open(dir);
    let (job_sender, job_receiver) = mpsc::channel::<Job>();
    let job_receiver = Mutex::new(job_receiver);
    let (done_sender, done_receiver) = mpsc::channel::<Done>();
    std::thread::scope(|scope| -> Result<(), StoreError> {
        for _ in 0..threads {
            let (jobs, done) = (&job_receiver, done_sender.clone());
            scope.spawn(move || {
                loop {
                    let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(job) = job else { return };
                    let result = chunk(dir, scan, job.chunk, job.offset);
                    if done.send(Done { chunk: job.chunk, offset: job.offset, result }).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_sender);
        let in_flight_most = 2 * threads as u64;
        let (mut dispatched, mut next, mut expected_offset) = (0u64, 0u64, 0u64);
        let mut waiting: BTreeMap<u64, Done> = BTreeMap::new();
        let result = loop {
            // Keep the workers busy with the chunks whose start the index gives.
            while dispatched < known_chunks && dispatched < next + in_flight_most {
                let offset = if dispatched == 0 { 0 } else { starts[dispatched as usize] };
                let part = scan.parts.and_then(|parts| parts.get(&dispatched));
                match part.filter(|part| part.fits(dispatched, offset, scan.interest)) {
                    Some(part) => {
                        let done = Done { chunk: dispatched, offset, result: Ok(part.done.clone()) };
                        waiting.insert(dispatched, done);
                    }
                    None => {
                        let _ = job_sender.send(Job { chunk: dispatched, offset });
                    }
                }
                dispatched += 1;
            }
            if next >= dispatched {
                // The index gives no start for it (it lags, or the log is
                // empty): read on from where the chunk before ended.
                let _ = job_sender.send(Job { chunk: next, offset: expected_offset });
                dispatched = next + 1;
            }
            let mut done = loop {
                if let Some(done) = waiting.remove(&next) {
                    break done;
                }
                match done_receiver.recv() {
                    Ok(done) => {
                        waiting.insert(done.chunk, done);
                    }
                    Err(_) => unreachable!("workers outlive the dispatcher"),
                }
            };
            if done.offset != expected_offset {
                // The index placed this chunk elsewhere than where the one
                // before ended: say so, and read it again from there.
                push_problem(
                    &mut scanned,
                    Problem::IndexOffset { index: next * CHUNK, stated: done.offset, actual: expected_offset },
                );
                done = Done { chunk: next, offset: expected_offset, result: chunk(dir, scan, next, expected_offset) };
            }
            let chunk_done = match done.result {
                Ok(chunk_done) => chunk_done,
                Err(err) => break Err(err),
            };
            let at_end = chunk_done.at_end;
            expected_offset = chunk_done.end_offset;
            join(&mut combiner, &mut scanned, chunk_done, &level_files);
            next += 1;
            if at_end {
                // Chunks sent past the end read nothing, and are dropped.
                break Ok(());
            }
        };
        drop(job_sender);
        result
    })?;
    scanned.entries = combiner.frontier().size();
    scanned.root = combiner.frontier().root();
    scanned.receipts = combiner.receipts();
    let (problems, more) = combiner.problems();
    for problem in problems {
        push_problem(&mut scanned, problem.clone());
    }
    scanned.more_problems += more;
    if combiner.sets_beyond() > 0 {
        scanned.notes.push(format!(
            "more than {} policy sets: references of receipts to sets in earlier chunks were not all checked",
            crate::verify::MAX_SETS
        ));
    }
    scanned.roots.insert(0, EMPTY_ROOT);
    let index_needed = scanned.entries.div_ceil(INDEX_STRIDE);
    if index_points < index_needed {
        scanned.notes.push(format!(
            "`entries.idx` lags: {} of its {index_needed} offsets are missing (the next start rebuilds them)",
            index_needed - index_points
        ));
    }
    if scanned.tree_lag > 0 {
        scanned.notes.push(format!(
            "the stored tree lags the entries by {} hashes (the next start rebuilds them)",
            scanned.tree_lag
        ));
    }
    Ok(scanned)
}

fn push_problem(scanned: &mut Scanned, problem: Problem) {
    if scanned.problems.len() < MAX_PROBLEMS {
        scanned.problems.push(problem);
    } else {
        scanned.more_problems += 1;
    }
}

/// Joins a chunk: its tree, roots at the sizes wanted, the stored hashes
/// of subtrees larger than a chunk, its counts.
fn join(combiner: &mut Combiner, scanned: &mut Scanned, done: ChunkDone, levels: &LevelFiles) {
    for (size, edge) in &done.edges {
        let mut frontier = combiner.frontier().clone();
        let joined = edge.iter().try_for_each(|(subtree, hash)| frontier.append_subtree(*subtree, *hash, |_, _| {}));
        if joined.is_ok() {
            scanned.roots.insert(*size, frontier.root());
        }
    }
    scanned.records += done.records;
    scanned.erased += done.erased;
    scanned.tree_lag += done.tree_lag;
    scanned.matches.extend(done.matches);
    scanned.matches.truncate(MAX_MATCHES);
    scanned.policy_sets += done.report.sets.len() as u64;
    scanned.exposed.extend(done.exposed);
    let mut mismatched = Vec::new();
    let mut lag = 0;
    let joined = combiner.join_reporting(done.report, |subtree, hash| {
        if is_stored(subtree.level) && subtree.level > 16 {
            match levels.hash(subtree) {
                Some(stored) if stored == *hash => {}
                Some(_) => mismatched.push(subtree),
                None => lag += 1,
            }
        }
    });
    if let Err(err) = joined {
        scanned.notes.push(format!("chunks could not be joined: {err}"));
    }
    scanned.tree_lag += lag;
    for subtree in mismatched {
        push_problem(scanned, Problem::StoredHash { subtree });
    }
}

/// The stored level files above a chunk's, for single reads.
struct LevelFiles {
    dir: PathBuf,
}

impl LevelFiles {
    fn open(dir: &Path) -> LevelFiles {
        LevelFiles { dir: dir.to_owned() }
    }

    fn hash(&self, subtree: Subtree) -> Option<Digest> {
        let path = level_path(&self.dir, subtree.level);
        if file_len(&path).ok()? < (subtree.index + 1) * 32 {
            return None;
        }
        let file = fs::open_regular(&path).ok()?;
        files::read_hashes(&file, &path, subtree.index, 1).ok()?.pop()
    }
}

/// Sequential reads of a stored level's hashes over a chunk; `None` past
/// the file's end.
struct LevelReader {
    reader: Option<BufReader<File>>,
    next: u64,
    end: u64,
}

impl LevelReader {
    fn open(dir: &Path, level: u8, start: u64, count: u64) -> Result<LevelReader, FileError> {
        let path = level_path(dir, level);
        let held = file_len(&path)? / 32;
        let end = held.min(start + count);
        if end <= start {
            return Ok(LevelReader { reader: None, next: start, end: start });
        }
        let mut file = fs::open_regular(&path)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start * 32))
            .map_err(|e| FileError::io(fs::FileAction::Read, &path, e))?;
        Ok(LevelReader { reader: Some(BufReader::with_capacity(1 << 16, file)), next: start, end })
    }

    /// Hash `index` of the level, if stored; reads must ask in order.
    fn hash(&mut self, index: u64) -> Option<Digest> {
        if index != self.next || index >= self.end {
            return None;
        }
        let mut bytes = [0u8; 32];
        self.reader.as_mut()?.read_exact(&mut bytes).ok()?;
        self.next += 1;
        Some(Digest::from_bytes(bytes))
    }
}

/// Verifies chunk `chunk`, whose first entry starts at byte `offset`.
fn chunk(dir: &Path, scan: &Scan<'_>, chunk: u64, offset: u64) -> Result<ChunkDone, StoreError> {
    let start = chunk * CHUNK;
    let mut verifier = ChunkVerifier::new(start);
    let mut frames = Frames::open(&dir.join(ENTRIES), offset)?;
    let mut levels = [
        LevelReader::open(dir, 0, start, CHUNK)?,
        LevelReader::open(dir, 8, start >> 8, CHUNK >> 8)?,
        LevelReader::open(dir, 16, start >> 16, 1)?,
    ];
    let index_path = dir.join(INDEX);
    let index_held = (file_len(&index_path)? / 8).saturating_sub(start / INDEX_STRIDE).min(CHUNK / INDEX_STRIDE);
    let offsets = files::read_offsets(&index_path, start / INDEX_STRIDE, index_held)?;
    let mut kept = Kept::open(dir, chunk, scan.records)?;
    let mut interest = scan.interest.iter().copied().filter(|size| *size > start && *size <= start + CHUNK).peekable();
    let mut done = ChunkDone {
        report: ChunkVerifier::new(start).finish(),
        end_offset: offset,
        at_end: false,
        edges: Vec::new(),
        records: 0,
        erased: 0,
        tree_lag: 0,
        exposed: kept.exposed.clone(),
        matches: Vec::new(),
    };
    let mut entry = Vec::new();
    let mut mismatches = Vec::new();
    let mut lag = 0u64;
    while verifier.entries() < CHUNK {
        let at = frames.offset();
        let index = start + verifier.entries();
        match frames.next_into(&mut entry) {
            Ok(true) => {}
            Ok(false) => {
                done.at_end = true;
                break;
            }
            Err(StoreError::Frame { offset, problem }) => {
                // The entries cannot be framed past here: the rest of the
                // log is unreadable, and named as such.
                verifier.add_problem(Problem::Unframed { index, offset, problem });
                done.at_end = true;
                break;
            }
            Err(err) => return Err(err),
        }
        if index.is_multiple_of(INDEX_STRIDE)
            && let Some(&stated) = offsets.get(((index - start) / INDEX_STRIDE) as usize)
            && stated != at
        {
            verifier.add_problem(Problem::IndexOffset { index, stated, actual: at });
        }
        let decoded = verifier.push(&entry, |subtree, hash| {
            let slot = match subtree.level {
                0 => 0,
                8 => 1,
                16 => 2,
                _ => return,
            };
            match levels[slot].hash(subtree.index) {
                Some(stored) if stored == *hash => {}
                Some(_) => mismatches.push(subtree),
                None => lag += 1,
            }
        });
        for subtree in mismatches.drain(..) {
            verifier.add_problem(Problem::StoredHash { subtree });
        }
        kept.entry(index, decoded.as_ref(), &mut verifier, &mut done)?;
        if let (Some((platform, flow)), Some(Entry::Receipt(receipt))) = (scan.flow, &decoded)
            && receipt.flow == flow
            && platform.is_none_or(|p| p == receipt.platform)
            && done.matches.len() < MAX_MATCHES
        {
            done.matches.push(index);
        }
        let entries = start + verifier.entries();
        while interest.next_if_eq(&entries).is_some() {
            done.edges.push((entries, verifier.edge()));
        }
    }
    kept.finish(start + verifier.entries(), &mut verifier)?;
    done.end_offset = frames.offset();
    if !done.at_end {
        // A full chunk: is there more?
        done.at_end = frames.offset() >= file_len(&dir.join(ENTRIES))?;
    }
    done.tree_lag = lag;
    done.report = verifier.finish();
    Ok(done)
}

/// The kept records of one chunk, read beside its entries.
struct Kept<'a> {
    lines: Option<RecordLines>,
    check: Option<RecordCheck<'a>>,
    /// The next record not yet matched.
    pending: Option<super::records::KeptRecord>,
    last: Option<u64>,
    chunk: u64,
    exposed: Option<PathBuf>,
}

impl<'a> Kept<'a> {
    fn open(dir: &Path, chunk: u64, check: Option<RecordCheck<'a>>) -> Result<Kept<'a>, StoreError> {
        let path = records_path(dir, chunk);
        let (lines, exposed) = if std::fs::symlink_metadata(&path).is_ok() {
            let exposed = exposed(&path)?.map(|_| path.clone());
            (Some(RecordLines::open(&path)?), exposed)
        } else {
            (None, None)
        };
        Ok(Kept { lines, check, pending: None, last: None, chunk, exposed })
    }

    /// The next record line, with bad lines and order problems reported.
    fn next(
        &mut self,
        verifier: &mut ChunkVerifier,
        near: u64,
    ) -> Result<Option<super::records::KeptRecord>, StoreError> {
        let Some(lines) = &mut self.lines else { return Ok(None) };
        loop {
            match lines.next_record()? {
                None => return Ok(None),
                Some(Err(bad)) => verifier.add_problem(Problem::Record {
                    index: self.last.unwrap_or(near),
                    problem: RecordProblem::Unreadable(format!("line {}: {}", bad.line, bad.problem)),
                }),
                Some(Ok(record)) => {
                    if self.last.is_some_and(|last| record.index <= last) {
                        verifier
                            .add_problem(Problem::Record { index: record.index, problem: RecordProblem::Duplicate });
                        continue;
                    }
                    self.last = Some(record.index);
                    if record.index / CHUNK != self.chunk {
                        verifier.add_problem(Problem::Record { index: record.index, problem: RecordProblem::Misfiled });
                        continue;
                    }
                    return Ok(Some(record));
                }
            }
        }
    }

    /// Matches the records up to entry `index` with it.
    fn entry(
        &mut self,
        index: u64,
        entry: Option<&Entry>,
        verifier: &mut ChunkVerifier,
        done: &mut ChunkDone,
    ) -> Result<(), StoreError> {
        if self.lines.is_none() {
            return Ok(());
        }
        if self.pending.is_none() {
            self.pending = self.next(verifier, index)?;
        }
        while let Some(record) = self.pending.take_if(|record| record.index < index) {
            // Its entry came and went without it matching: not a receipt.
            verifier.add_problem(Problem::Record { index: record.index, problem: RecordProblem::NotAReceipt });
            self.pending = self.next(verifier, index)?;
        }
        let is_receipt = matches!(entry, Some(Entry::Receipt(_)));
        match self.pending.take_if(|record| record.index == index) {
            Some(record) => {
                match entry {
                    Some(Entry::Receipt(receipt)) => match self.check.map(|check| check(&record.record)) {
                        None => done.records += 1,
                        Some(Ok(digest)) if digest == receipt.record => done.records += 1,
                        Some(Ok(_)) => verifier.add_problem(Problem::Record { index, problem: RecordProblem::Edited }),
                        Some(Err(why)) => {
                            verifier.add_problem(Problem::Record { index, problem: RecordProblem::Unreadable(why) })
                        }
                    },
                    _ => verifier.add_problem(Problem::Record { index, problem: RecordProblem::NotAReceipt }),
                }
                self.pending = self.next(verifier, index)?;
            }
            None if is_receipt => done.erased += 1,
            None => {}
        }
        Ok(())
    }

    /// Records left after the chunk's last entry (`end`) name no entry.
    fn finish(&mut self, end: u64, verifier: &mut ChunkVerifier) -> Result<(), StoreError> {
        if self.lines.is_none() {
            return Ok(());
        }
        let mut pending = self.pending.take();
        if pending.is_none() {
            pending = self.next(verifier, end)?;
        }
        while let Some(record) = pending {
            verifier.add_problem(Problem::Record { index: record.index, problem: RecordProblem::NoReceipt });
            pending = self.next(verifier, end)?;
        }
        Ok(())
    }
}
