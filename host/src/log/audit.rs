//! Reading a decision log back: verification, statistics and the logged
//! records, for a regulator (`flowgate audit`) as much as for the platform.
//!
//! Verification walks every segment in order and checks each receipt's
//! hash, its link to the one before, its sequence number, each checkpoint's
//! signature and what it claims, each kept record's digest, and the
//! checkpoints a regulator collected earlier. It stops at the first broken
//! place and names it, with what most likely happened there ([`BreakKind`]),
//! judged from the receipts around it.
//!
//! A day of a large platform's receipts is more than one core hashes in
//! hours, so a log can also be verified a segment at a time, anywhere
//! ([`Audit::verify_segment`], e.g. on the executors of a Spark cluster),
//! and the parts joined ([`Audit::join`]) into the verdict `verify` gives.
//! Each part starts from the last receipt of the segment before it, read
//! from that segment's tail: when that segment is intact (its own part
//! says so), this is exactly where a walk through it would stand.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use flowgate_sdk::{Effect, FlowRecord};

use crate::bundle::PublicKey;
use crate::fs::{FileAction, FileError};
use crate::model::Digest;

use super::checkpoint::Checkpoint;
use super::error::LogError;
use super::receipt::{GENESIS, Receipt, record_digest};
use super::segments::{self, Line, Lines};

/// How far past a broken place verification reads to tell what happened.
const LOOKAHEAD: usize = 1024;

/// A decision log, opened for reading. Reading never changes it.
#[derive(Debug)]
pub struct Audit {
    dir: PathBuf,
    segments: Vec<(u64, PathBuf)>,
}

/// What happened at the first broken place of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// A receipt (or a kept record) was changed.
    Edited,
    /// Receipts are missing from the middle of the chain.
    Deleted,
    /// A line that is not part of the chain was added.
    Inserted,
    /// Receipts are out of order.
    Reordered,
    /// The log ends before what it, or a collected checkpoint, says it holds.
    Truncated,
    /// A checkpoint whose signature is not the log key's.
    ForgedCheckpoint,
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakKind::Edited => "edited",
            BreakKind::Deleted => "deleted",
            BreakKind::Inserted => "inserted",
            BreakKind::Reordered => "reordered",
            BreakKind::Truncated => "truncated",
            BreakKind::ForgedCheckpoint => "forged checkpoint",
        })
    }
}

/// The first broken place of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// What most likely happened.
    pub kind: BreakKind,
    /// The segment.
    pub segment: u64,
    /// The line in it (1-based; 0 for the segment as a whole).
    pub line: u64,
    /// The receipt concerned, where one is.
    pub seq: Option<u64>,
    /// What was found.
    pub detail: String,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {}", self.segment)?;
        if self.line > 0 {
            write!(f, " line {}", self.line)?;
        }
        if let Some(seq) = self.seq {
            write!(f, " (receipt {seq})")?;
        }
        write!(f, ": {}: {}", self.kind, self.detail)
    }
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Receipts checked.
    pub receipts: u64,
    /// Segments read.
    pub segments: u64,
    /// Checkpoints in the log whose signature and claims were checked.
    pub checkpoints: u64,
    /// Collected checkpoints found in the log.
    pub collected: u64,
    /// Kept records checked against their receipts' digests.
    pub records: u64,
    /// Receipts whose kept record was erased (their segment keeps records).
    pub erased: u64,
    /// A torn last line (a crash mid-write; the next start cuts it): its
    /// segment and length. Not a break: its decisions were never returned.
    pub torn: Option<(u64, u64)>,
    /// Whether the last segment is still open (a host writes it, or crashed):
    /// receipts after its last checkpoint are covered by no signature yet.
    pub open: bool,
    /// The first broken place, if any.
    pub broken: Option<Break>,
}

/// What verifying one segment alone found ([`Audit::verify_segment`]), to be
/// joined with the other segments' ([`Audit::join`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentVerified {
    /// The segment's number.
    pub segment: u64,
    /// What was checked in it (`segments` is 1), and its first broken place.
    pub verified: Verified,
    /// The counts of the collected checkpoints whose receipt it holds and matches.
    pub collected: Vec<u64>,
    /// The `seq` of the last receipt the chain reached (where the next segment goes on).
    pub head: u64,
}

/// Counts of what a log decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Receipts read.
    pub receipts: u64,
    /// Decisions by effect.
    pub effects: BTreeMap<Effect, u64>,
    /// Decisions each policy applied to.
    pub policies: BTreeMap<String, u64>,
    /// Decisions each rule (policy, rule) fired in.
    pub rules: BTreeMap<(String, String), u64>,
    /// Decisions by platform, then effect.
    pub platforms: BTreeMap<String, BTreeMap<Effect, u64>>,
    /// Decisions by UTC day (`YYYY-MM-DD`).
    pub days: BTreeMap<String, u64>,
}

/// A receipt with the record it decided, as kept with `--log-records`.
#[derive(Debug, Clone)]
pub struct LoggedRecord {
    /// The receipt.
    pub receipt: Receipt,
    /// The record, already checked against the receipt's digest.
    pub record: FlowRecord,
}

/// The records kept beside one segment, by receipt: what was made of each
/// record, or why it could not be read.
type Kept<T> = HashMap<u64, Result<T, String>>;

/// One line of a segment, read.
enum Entry {
    Receipt { receipt: Box<Receipt>, intact: bool },
    Checkpoint(Checkpoint),
    Unreadable(String),
}

struct Read {
    line: u64,
    complete: bool,
    len: u64,
    entry: Entry,
}

fn read_entry(line: &Line, number: u64) -> Read {
    let entry = if line.too_long() {
        Entry::Unreadable(format!("a line of {} bytes, longer than any receipt", line.len))
    } else if Checkpoint::is_checkpoint_line(&line.bytes) {
        Checkpoint::parse(&line.bytes).map_or_else(|err| Entry::Unreadable(err.to_string()), Entry::Checkpoint)
    } else {
        match Receipt::parse(&line.bytes) {
            Ok((receipt, intact)) => Entry::Receipt { receipt: Box::new(receipt), intact },
            Err(problem) => Entry::Unreadable(problem.to_string()),
        }
    };
    Read { line: number, complete: line.complete, len: line.len, entry }
}

/// A segment's lines, with room to look ahead.
struct Segment {
    lines: Lines,
    ahead: VecDeque<Read>,
    read: u64,
}

impl Segment {
    fn open(path: &Path) -> Result<Segment, LogError> {
        Ok(Segment { lines: Lines::open(path)?, ahead: VecDeque::new(), read: 0 })
    }

    fn fill(&mut self, wanted: usize) -> Result<(), LogError> {
        while self.ahead.len() < wanted {
            let Some(line) = self.lines.next_line()? else { break };
            self.read += 1;
            self.ahead.push_back(read_entry(&line, self.read));
        }
        Ok(())
    }

    fn next(&mut self) -> Result<Option<Read>, LogError> {
        self.fill(1)?;
        Ok(self.ahead.pop_front())
    }

    /// The receipts among the next [`LOOKAHEAD`] lines.
    fn receipts_ahead(&mut self) -> Result<Vec<&Receipt>, LogError> {
        self.fill(LOOKAHEAD)?;
        Ok(self
            .ahead
            .iter()
            .filter_map(|read| match &read.entry {
                Entry::Receipt { receipt, .. } => Some(&**receipt),
                _ => None,
            })
            .collect())
    }
}

/// The chain as verified so far.
#[derive(Default)]
struct Chain {
    /// The last two receipts: (seq, hash, prev).
    last: Option<(u64, Digest, Digest)>,
    before_last: Option<(u64, Digest)>,
}

impl Chain {
    fn expected_seq(&self) -> u64 {
        self.last.map_or(1, |(seq, _, _)| seq + 1)
    }

    fn head(&self) -> (u64, Digest) {
        self.last.map_or((0, GENESIS), |(seq, hash, _)| (seq, hash))
    }
}

impl Audit {
    /// Opens the log in `dir` for reading.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Audit, LogError> {
        let dir = dir.into();
        let segments = segments::list(&dir)?;
        Ok(Audit { dir, segments })
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Verifies the whole log against the log's public key and the
    /// checkpoints collected from it earlier. A broken log is a result
    /// ([`Verified::broken`]), not an error; errors are for logs that
    /// cannot be read at all.
    pub fn verify(&self, key: &PublicKey, collected: &[Checkpoint]) -> Result<Verified, LogError> {
        let mut verified = Verified { segments: self.segments.len() as u64, ..Verified::default() };
        verified.broken = self.walk(key, collected, &mut verified)?;
        Ok(verified)
    }

    fn walk(
        &self,
        key: &PublicKey,
        collected: &[Checkpoint],
        verified: &mut Verified,
    ) -> Result<Option<Break>, LogError> {
        if let Some(forged) = forged(key, collected) {
            return Ok(Some(forged));
        }
        let mut wanted: BTreeMap<u64, &Checkpoint> = collected.iter().map(|c| (c.count, c)).collect();
        let mut chain = Chain::default();
        for index in 0..self.segments.len() {
            if let Some(broken) = self.walk_segment(index, key, &mut wanted, &mut chain, verified)? {
                return Ok(Some(broken));
            }
        }
        verified.collected = (collected.len() - wanted.len()) as u64;
        let last = self.segments.last().map_or(0, |(n, _)| *n);
        Ok(unmet(&wanted, chain.head().0, last))
    }

    /// Verifies segment `number` alone, from where the segment before it
    /// ends, against the log key and the collected checkpoints (those whose
    /// receipt it holds). [`Audit::join`] joins the parts of a whole log
    /// into the verdict [`Audit::verify`] gives, so segments can be verified
    /// in parallel, on as many machines as there are segments.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let key = flowgate::SecretKey::generate()?;
    /// # let public = key.public();
    /// # let mut builder = flowgate::Host::builder().decision_log(dir.path(), key, flowgate::LogOptions::default());
    /// # for (name, manifest, wasm) in flowgate_reference_set::bundles() {
    /// #     builder = builder.bundle(flowgate::Bundle::from_bytes(name, manifest, wasm.to_vec())?);
    /// # }
    /// # let host = builder.build()?;
    /// # host.evaluate(&flowgate::sdk::FlowRecord::from_json(br#"{"id":"f-1","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#)?);
    /// # drop(host);
    /// use flowgate::Audit;
    ///
    /// let audit = Audit::open(dir.path())?;
    /// let parts = audit
    ///     .segments()
    ///     .map(|segment| audit.verify_segment(segment, &public, &[]))
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(Audit::join(&public, &[], parts), audit.verify(&public, &[])?);
    /// # Ok(()) }
    /// ```
    pub fn verify_segment(
        &self,
        number: u64,
        key: &PublicKey,
        collected: &[Checkpoint],
    ) -> Result<SegmentVerified, LogError> {
        let Some(index) = self.segments.iter().position(|(n, _)| *n == number) else {
            let path = segments::segment_path(&self.dir, number);
            let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such segment");
            return Err(FileError::io(FileAction::Read, path, missing).into());
        };
        let mut chain = Chain::default();
        for (_, path) in self.segments[..index].iter().rev() {
            if let Some(last) = last_receipt(path)? {
                chain.last = Some((last.seq, last.hash, last.prev));
                chain.before_last = (last.seq > 1).then_some((last.seq - 1, last.prev));
                break;
            }
        }
        let mut wanted: BTreeMap<u64, &Checkpoint> = collected.iter().map(|c| (c.count, c)).collect();
        let mut verified = Verified { segments: 1, ..Verified::default() };
        verified.broken = self.walk_segment(index, key, &mut wanted, &mut chain, &mut verified)?;
        let found = collected.iter().map(|c| c.count).filter(|count| !wanted.contains_key(count)).collect();
        Ok(SegmentVerified { segment: number, verified, collected: found, head: chain.head().0 })
    }

    /// The numbers of the log's segments, in order: the parts
    /// [`Audit::verify_segment`] verifies.
    pub fn segments(&self) -> impl Iterator<Item = u64> + '_ {
        self.segments.iter().map(|(n, _)| *n)
    }

    /// Joins the verifications of every segment of a log (in any order)
    /// into what [`Audit::verify`] finds for the whole log: the counts
    /// added up, and the first broken place in log order.
    pub fn join(key: &PublicKey, collected: &[Checkpoint], mut parts: Vec<SegmentVerified>) -> Verified {
        let mut verified = Verified { segments: parts.len() as u64, ..Verified::default() };
        if let Some(forged) = forged(key, collected) {
            verified.broken = Some(forged);
            return verified;
        }
        parts.sort_by_key(|part| part.segment);
        let mut wanted: BTreeMap<u64, &Checkpoint> = collected.iter().map(|c| (c.count, c)).collect();
        let (mut head, mut last) = (0, 0);
        for part in parts {
            let found = &part.verified;
            verified.receipts += found.receipts;
            verified.checkpoints += found.checkpoints;
            verified.records += found.records;
            verified.erased += found.erased;
            (verified.torn, verified.open) = (found.torn, found.open);
            if found.broken.is_some() {
                verified.broken = found.broken.clone();
                return verified;
            }
            for count in &part.collected {
                wanted.remove(count);
            }
            (head, last) = (part.head, part.segment);
        }
        verified.collected = (collected.len() - wanted.len()) as u64;
        verified.broken = unmet(&wanted, head, last);
        verified
    }

    /// Walks the segment at `index` on from `chain`.
    fn walk_segment(
        &self,
        index: usize,
        key: &PublicKey,
        wanted: &mut BTreeMap<u64, &Checkpoint>,
        chain: &mut Chain,
        verified: &mut Verified,
    ) -> Result<Option<Break>, LogError> {
        let (number, path) = &self.segments[index];
        let number = *number;
        let last_segment = index + 1 == self.segments.len();
        let at = |line: u64, seq: Option<u64>, kind: BreakKind, detail: String| {
            Some(Break { kind, segment: number, line, seq, detail })
        };
        let records = self.kept_records(number)?;
        let mut closed = false;
        let first = chain.expected_seq();
        let mut segment = Segment::open(path)?;
        while let Some(read) = segment.next()? {
            closed = false;
            if !read.complete {
                if last_segment && segment.next()?.is_none() {
                    verified.torn = Some((number, read.len));
                    break;
                }
                return Ok(at(read.line, None, BreakKind::Edited, "a line without its newline".into()));
            }
            match read.entry {
                Entry::Unreadable(problem) => return Ok(at(read.line, None, BreakKind::Edited, problem)),
                Entry::Checkpoint(checkpoint) => {
                    if !checkpoint.signed_by(key) {
                        let detail = format!("checkpoint of receipt {} is not signed by {key}", checkpoint.count);
                        return Ok(at(read.line, None, BreakKind::ForgedCheckpoint, detail));
                    }
                    let (seq, head) = chain.head();
                    if checkpoint.count > seq {
                        let detail = format!(
                            "the checkpoint covers receipts up to {}, but the chain before it ends at {seq}",
                            checkpoint.count
                        );
                        return Ok(at(read.line, Some(seq + 1), BreakKind::Deleted, detail));
                    }
                    if checkpoint.count < seq {
                        let detail = format!(
                            "the checkpoint covers receipts up to {}, but {seq} come before it",
                            checkpoint.count
                        );
                        return Ok(at(read.line, Some(checkpoint.count + 1), BreakKind::Inserted, detail));
                    }
                    if checkpoint.head != head {
                        let detail =
                            "the chain's head is not the one the checkpoint signed: receipts were rewritten".into();
                        return Ok(at(read.line, Some(seq), BreakKind::Edited, detail));
                    }
                    verified.checkpoints += 1;
                    closed = true;
                }
                Entry::Receipt { receipt, intact } => {
                    let expected_seq = chain.expected_seq();
                    let (_, expected_prev) = chain.head();
                    if !intact || receipt.seq != expected_seq || receipt.prev != expected_prev {
                        let ahead = segment.receipts_ahead()?;
                        let (kind, seq, detail) = classify(&chain, &receipt, intact, &ahead);
                        return Ok(at(read.line, Some(seq), kind, detail));
                    }
                    if let Some(checkpoint) = wanted.remove(&receipt.seq)
                        && checkpoint.head != receipt.hash
                    {
                        let detail = format!(
                            "receipt {} is not the one a collected checkpoint signed: the log was rewritten",
                            receipt.seq
                        );
                        return Ok(at(read.line, Some(receipt.seq), BreakKind::Edited, detail));
                    }
                    if let Some(kept) = &records {
                        match kept.get(&receipt.seq) {
                            None => verified.erased += 1,
                            Some(Err(problem)) => {
                                let detail = format!("its kept record cannot be read: {problem}");
                                return Ok(at(read.line, Some(receipt.seq), BreakKind::Edited, detail));
                            }
                            Some(Ok(digest)) if *digest != receipt.record => {
                                let detail = "its kept record is not the record it decided".into();
                                return Ok(at(read.line, Some(receipt.seq), BreakKind::Edited, detail));
                            }
                            Some(Ok(_)) => verified.records += 1,
                        }
                    }
                    chain.before_last = chain.last.map(|(seq, hash, _)| (seq, hash));
                    chain.last = Some((receipt.seq, receipt.hash, receipt.prev));
                    verified.receipts += 1;
                }
            }
        }
        if !closed && !last_segment {
            let detail = "it ends without its closing checkpoint: its end was cut".into();
            return Ok(at(0, Some(chain.expected_seq()), BreakKind::Truncated, detail));
        }
        if let Some(kept) = &records {
            let (last, _) = chain.head();
            if let Some(extra) = kept.keys().copied().filter(|seq| !(first..=last).contains(seq)).min() {
                let (kind, detail) = if extra > last {
                    (BreakKind::Deleted, format!("receipt {extra} is gone, but its kept record remains"))
                } else {
                    (
                        BreakKind::Inserted,
                        format!("a kept record names receipt {extra}, which this segment does not hold"),
                    )
                };
                return Ok(at(0, Some(extra), kind, detail));
            }
        }
        verified.open = last_segment && !closed;
        Ok(None)
    }

    /// The records kept beside segment `number`, by receipt: each one's
    /// digest, or why it cannot be read. `None` if the segment keeps none.
    fn kept_records(&self, number: u64) -> Result<Option<Kept<Digest>>, LogError> {
        self.read_records(number, |record| record_digest(&record))
    }

    fn read_records<T>(&self, number: u64, mut keep: impl FnMut(FlowRecord) -> T) -> Result<Option<Kept<T>>, LogError> {
        let path = segments::records_path(&self.dir, number);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        // Held in memory while its segment is read: no more records than the
        // segment can hold receipts (no receipt line is shorter than 64 bytes).
        let segment = segments::segment_path(&self.dir, number);
        let most = std::fs::symlink_metadata(&segment).map_or(0, |m| m.len() / 64) as usize;
        let mut kept = HashMap::new();
        let mut lines = Lines::open(&path)?;
        while let Some(line) = lines.next_line()? {
            if kept.len() > most {
                let problem = format!("more kept records than segment {number} can hold receipts");
                return Err(LogError::Broken { path, line: kept.len() as u64 + 1, problem });
            }
            // A line with no readable seq belongs to no receipt: it cannot
            // stand in for a record, so it is skipped (and counts as erased).
            let Some((seq, record)) = split_kept(&line.bytes) else { continue };
            let record = FlowRecord::from_json(record).map(&mut keep).map_err(|e| e.to_string());
            kept.insert(seq, record);
        }
        Ok(Some(kept))
    }

    /// The newest checkpoint in the log, as a regulator collects it.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, LogError> {
        for (_, path) in self.segments.iter().rev() {
            let mut lines = Lines::open(path)?;
            let mut latest = None;
            while let Some(line) = lines.next_line()? {
                if line.complete && Checkpoint::is_checkpoint_line(&line.bytes) {
                    latest = Checkpoint::parse(&line.bytes).ok();
                }
            }
            if latest.is_some() {
                return Ok(latest);
            }
        }
        Ok(None)
    }

    /// Counts what the log decided. Unreadable lines are skipped: verify
    /// first to know the counts are of an intact log.
    pub fn stats(&self) -> Result<Stats, LogError> {
        let mut stats = Stats::default();
        self.for_each_receipt(|receipt| {
            stats.receipts += 1;
            let effect = receipt.effect;
            *stats.effects.entry(effect).or_default() += 1;
            for (policy, _, _) in &receipt.policies {
                *stats.policies.entry(policy.clone()).or_default() += 1;
            }
            for (policy, rule) in &receipt.reasons {
                *stats.rules.entry((policy.clone(), rule.clone())).or_default() += 1;
            }
            *stats.platforms.entry(receipt.platform.clone()).or_default().entry(effect).or_default() += 1;
            *stats.days.entry(utc_day(receipt.time_ms)).or_default() += 1;
        })?;
        Ok(stats)
    }

    fn for_each_receipt(&self, mut each: impl FnMut(&Receipt)) -> Result<(), LogError> {
        for (_, path) in &self.segments {
            let mut lines = Lines::open(path)?;
            while let Some(line) = lines.next_line()? {
                if let Entry::Receipt { receipt, .. } = read_entry(&line, 0).entry {
                    each(&receipt);
                }
            }
        }
        Ok(())
    }

    /// Calls `each` with every receipt whose record was kept (and matches
    /// its digest), in log order; returns how many receipts had none.
    pub fn for_each_record(&self, mut each: impl FnMut(LoggedRecord)) -> Result<u64, LogError> {
        let mut without = 0;
        for (number, path) in &self.segments {
            let mut kept = self.read_records(*number, |record| record)?.unwrap_or_default();
            let mut lines = Lines::open(path)?;
            while let Some(line) = lines.next_line()? {
                let Entry::Receipt { receipt, intact: true } = read_entry(&line, 0).entry else { continue };
                match kept.remove(&receipt.seq) {
                    Some(Ok(record)) if record_digest(&record) == receipt.record => {
                        each(LoggedRecord { receipt: *receipt, record });
                    }
                    _ => without += 1,
                }
            }
        }
        Ok(without)
    }
}

/// The first collected checkpoint not signed by `key`, as a break.
fn forged(key: &PublicKey, collected: &[Checkpoint]) -> Option<Break> {
    let checkpoint = collected.iter().find(|checkpoint| !checkpoint.signed_by(key))?;
    let detail = format!("a collected checkpoint (receipt {}) is not signed by {key}", checkpoint.count);
    Some(Break { kind: BreakKind::ForgedCheckpoint, segment: checkpoint.segment, line: 0, seq: None, detail })
}

/// The break a log ending at receipt `seq`, in segment `last`, is for the
/// collected checkpoints it did not hold (`wanted`), if any.
fn unmet(wanted: &BTreeMap<u64, &Checkpoint>, seq: u64, last: u64) -> Option<Break> {
    if let Some(checkpoint) = wanted.values().find(|c| c.count > seq) {
        let detail =
            format!("the log ends at receipt {seq}, but a collected checkpoint covers {} receipts", checkpoint.count);
        return Some(Break { kind: BreakKind::Truncated, segment: last, line: 0, seq: Some(seq + 1), detail });
    }
    let checkpoint = wanted.values().next()?;
    let detail = format!("a collected checkpoint covers receipt {}, which the log does not hold", checkpoint.count);
    Some(Break { kind: BreakKind::Deleted, segment: checkpoint.segment, line: 0, seq: Some(checkpoint.count), detail })
}

/// The last intact receipt of the segment at `path`, read from its tail
/// (a growing window from the end, so a segment is not read whole).
fn last_receipt(path: &Path) -> Result<Option<Receipt>, LogError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = crate::fs::open_regular(path)?;
    let len = file.metadata().map_err(|e| FileError::io(FileAction::Read, path, e))?.len();
    let mut window = 1 << 16;
    loop {
        let from = len.saturating_sub(window);
        file.seek(SeekFrom::Start(from)).map_err(|e| FileError::io(FileAction::Read, path, e))?;
        let mut tail = Vec::new();
        file.by_ref().take(len - from).read_to_end(&mut tail).map_err(|e| FileError::io(FileAction::Read, path, e))?;
        // The first line of a window that does not start the file may be cut.
        let whole = if from == 0 {
            &tail[..]
        } else {
            tail.split(|&b| b == b'\n').next().map_or(&[][..], |cut| &tail[cut.len()..])
        };
        let receipt = whole.split(|&b| b == b'\n').rev().find_map(|line| match Receipt::parse(line) {
            Ok((receipt, true)) => Some(receipt),
            _ => None,
        });
        if receipt.is_some() || from == 0 {
            return Ok(receipt);
        }
        window = window.saturating_mul(4);
    }
}

/// A kept record's line, `{"seq":N,"record":{...}}`, as its seq and the
/// record's bytes.
fn split_kept(line: &[u8]) -> Option<(u64, &[u8])> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let seq = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let record = rest[digits..].strip_prefix(b",\"record\":")?.strip_suffix(b"}")?;
    Some((seq, record))
}

/// Tells what most likely happened where the chain breaks at `receipt`,
/// from the receipts before it and the next ones in its segment.
fn classify(chain: &Chain, receipt: &Receipt, intact: bool, ahead: &[&Receipt]) -> (BreakKind, u64, String) {
    let expected = chain.expected_seq();
    let (_, head) = chain.head();
    // A later receipt comes first, and the one expected is just ahead.
    if receipt.seq > expected && ahead.iter().any(|r| r.seq == expected) {
        return (
            BreakKind::Reordered,
            receipt.seq,
            format!("receipt {} comes where receipt {expected} belongs", receipt.seq),
        );
    }
    // The next receipt carries on the chain as if this one were not there.
    if ahead.first().is_some_and(|next| next.seq == expected && next.prev == head) {
        return (
            BreakKind::Inserted,
            expected,
            format!("a receipt that is not part of the chain comes before receipt {expected}"),
        );
    }
    // This one carries on from the receipt before the last: the last was added.
    if let (Some((seq, _, _)), Some((_, hash))) = (chain.last, chain.before_last)
        && receipt.prev == hash
        && receipt.seq == seq
    {
        return (
            BreakKind::Inserted,
            seq,
            format!("receipt {seq} appears twice: one of them is not part of the chain"),
        );
    }
    if !intact {
        return (BreakKind::Edited, receipt.seq, "its hash does not match its bytes".into());
    }
    if receipt.seq == expected {
        let changed = expected - 1;
        return (
            BreakKind::Edited,
            changed,
            format!(
                "receipt {expected} records another hash for receipt {changed}: receipt {changed} was changed and its hash recomputed"
            ),
        );
    }
    if receipt.seq < expected {
        return (
            BreakKind::Reordered,
            receipt.seq,
            format!("receipt {} comes where receipt {expected} belongs", receipt.seq),
        );
    }
    let detail = if receipt.seq == expected + 1 {
        format!("receipt {expected} is missing")
    } else {
        format!("receipts {expected} to {} are missing", receipt.seq - 1)
    };
    (BreakKind::Deleted, expected, detail)
}

/// `YYYY-MM-DD` of a time in ms since the Unix epoch, in UTC.
fn utc_day(time_ms: u64) -> String {
    // Days to a civil date (H. Hinnant's algorithm), for days since 1970.
    let days = (time_ms / 86_400_000) as i64 + 719_468;
    let era = days / 146_097;
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "receipts: {}", self.receipts)?;
        writeln!(f, "by effect:")?;
        for effect in Effect::ALL {
            let name = effect.to_string();
            writeln!(f, "  {name:<24} {}", self.effects.get(effect).copied().unwrap_or(0))?;
        }
        writeln!(f, "by policy (decisions it applied to):")?;
        for (policy, count) in &self.policies {
            writeln!(f, "  {policy:<40} {count}")?;
        }
        writeln!(f, "by rule (decisions it fired in):")?;
        for ((policy, rule), count) in &self.rules {
            writeln!(f, "  {:<40} {count}", format!("{policy}/{rule}"))?;
        }
        writeln!(f, "by platform:")?;
        for (platform, effects) in &self.platforms {
            let counts: Vec<String> = effects.iter().map(|(effect, n)| format!("{effect} {n}")).collect();
            writeln!(f, "  {platform:<24} {}", counts.join(", "))?;
        }
        writeln!(f, "by day (UTC):")?;
        for (day, count) in &self.days {
            writeln!(f, "  {day} {count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_civil_utc_dates() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(1_795_996_800_000 - 1), "2026-11-29");
        assert_eq!(utc_day(1_795_996_800_000), "2026-11-30");
    }
}
