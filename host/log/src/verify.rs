//! Verifying a whole log on every core, in bounded memory: aligned chunks
//! checked apart, their results joined in order.
//!
//! `flowgate audit verify` must recompute every leaf hash and the tree
//! over them (a log's own stored hashes are only as good as its disk), at
//! a million receipts a second per core. A hash chain forces one pass in
//! order; a Merkle tree does not: the leaves `[k·2^c, (k+1)·2^c)` form a
//! perfect subtree whose hash needs nothing outside it. So the log is cut
//! into chunks of `2^c` entries from multiples of `2^c` (the last one
//! ragged; the combiner refuses any other cut), each verified by
//! one worker with a [`ChunkVerifier`] (decode, check, hash, fold: memory
//! is one entry and a 64-hash edge), and a [`Combiner`] appends each
//! chunk's subtrees to the global [`Frontier`] in order and runs the few
//! checks that cross chunk boundaries (time order, references to earlier
//! policy sets). Its root is then compared with every checkpoint's, the
//! last one in full, earlier ones from the stored tree.
//!
//! What one chunk checks per entry: it decodes (strictly), states its own
//! index, its time is not before the previous entry's, and a receipt's
//! policy set is an earlier entry that is a policy set. Problems are
//! reported with the entry's index, at most [`MAX_PROBLEMS`] per chunk, so
//! a log of garbage costs no more memory than a good one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::digest::Digest;
use crate::entry::Entry;
use crate::frontier::{AppendError, Frontier};
use crate::merkle::{self, Subtree};

/// The most problems one chunk reports (the first ones).
pub const MAX_PROBLEMS: usize = 64;

/// Something wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum Problem {
    /// It cannot be decoded.
    #[error("entry {index} cannot be read: {error}")]
    Undecodable {
        /// Its place.
        index: u64,
        /// Why, in words (the decoder's [`crate::entry::EntryError`]):
        /// words, so that a chunk's report can travel between machines.
        error: String,
    },
    /// It states another index than its place: a copy, or a move.
    #[error("entry {index} says it is entry {stated}: copied or moved")]
    Misplaced {
        /// Its place.
        index: u64,
        /// The index it states.
        stated: u64,
    },
    /// Its time is before the previous entry's.
    #[error("entry {index} is dated {to} ms, before entry {}'s {from} ms", .index - 1)]
    TimeBackwards {
        /// Its place.
        index: u64,
        /// The previous entry's time.
        from: u64,
        /// Its time.
        to: u64,
    },
    /// A receipt names a policy set that is not an earlier policy-set entry.
    #[error("receipt {index} names entry {set} as its policy set, which is not one")]
    NotAPolicySet {
        /// The receipt's place.
        index: u64,
        /// The entry it names.
        set: u64,
    },
    /// A hash the log stores is not the one its entries give.
    #[error(
        "the stored hash of entries {}..{} is not the one the entries give: the tree or the entries were changed",
        .subtree.start(), .subtree.end()
    )]
    StoredHash {
        /// The subtree.
        subtree: Subtree,
    },
    /// `entries.idx` gives another offset for an entry than where it is.
    #[error("`entries.idx` places entry {index} at byte {stated}, but it is at byte {actual}")]
    IndexOffset {
        /// The entry.
        index: u64,
        /// The offset the index gives.
        stated: u64,
        /// Where the entry is.
        actual: u64,
    },
    /// The entries file cannot be read as entries from here on.
    #[error("the `entries` file cannot be read from entry {index} (byte {offset}) on: {problem}")]
    Unframed {
        /// The first entry not read.
        index: u64,
        /// Its byte offset.
        offset: u64,
        /// What is wrong there.
        problem: crate::store::FrameProblem,
    },
    /// A kept record that is not its receipt's.
    #[error("the kept record of entry {index} {problem}")]
    Record {
        /// The entry it names (or follows).
        index: u64,
        /// What is wrong.
        problem: RecordProblem,
    },
}

impl Problem {
    /// The entry it is about (the first of a stored subtree).
    pub fn index(&self) -> u64 {
        match self {
            Problem::Undecodable { index, .. }
            | Problem::Misplaced { index, .. }
            | Problem::TimeBackwards { index, .. }
            | Problem::NotAPolicySet { index, .. }
            | Problem::IndexOffset { index, .. }
            | Problem::Unframed { index, .. }
            | Problem::Record { index, .. } => *index,
            Problem::StoredHash { subtree } => subtree.start(),
        }
    }
}

/// What is wrong with a kept record.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum RecordProblem {
    /// Its digest is not its receipt's record digest.
    #[error("is not the record its receipt decided (another digest)")]
    Edited,
    /// It cannot be read as a record.
    #[error("cannot be read: {0}")]
    Unreadable(String),
    /// Its index is not above the one before: a duplicate, or out of order.
    #[error("comes again, or out of order: a record that is not its receipt's was added")]
    Duplicate,
    /// It names an entry that is not a receipt.
    #[error("names an entry that is not a receipt")]
    NotAReceipt,
    /// It names an entry the log does not hold.
    #[error("names an entry the log does not hold: its receipt is gone")]
    NoReceipt,
    /// It is in another chunk's file.
    #[error("is in the records file of another chunk")]
    Misfiled,
}

/// What one chunk found: enough to join it with the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkReport {
    /// Its first leaf index.
    pub start: u64,
    /// Entries in it.
    pub entries: u64,
    /// Its perfect subtrees, largest first, with their global positions.
    pub subtrees: Vec<(Subtree, Digest)>,
    /// The first and last entry's time.
    pub times: Option<(u64, u64)>,
    /// The indexes of the policy sets in it, ascending (8 bytes each: a
    /// chunk of nothing but sets costs half a megabyte).
    pub sets: Vec<u64>,
    /// Policy sets named by its receipts that lie before it.
    pub earlier_sets: BTreeSet<u64>,
    /// Receipts in it.
    pub receipts: u64,
    /// Its first problems.
    pub problems: Vec<Problem>,
    /// Problems beyond [`MAX_PROBLEMS`], counted only.
    pub more_problems: u64,
}

/// Checks one chunk, entry by entry.
#[derive(Debug)]
pub struct ChunkVerifier {
    report: ChunkReport,
    local: Frontier,
    /// The last time seen, to catch a step back.
    last_time: Option<u64>,
}

impl ChunkVerifier {
    /// A verifier for the chunk whose first entry is `start`.
    pub fn new(start: u64) -> ChunkVerifier {
        ChunkVerifier {
            report: ChunkReport {
                start,
                entries: 0,
                subtrees: Vec::new(),
                times: None,
                sets: Vec::new(),
                earlier_sets: BTreeSet::new(),
                receipts: 0,
                problems: Vec::new(),
                more_problems: 0,
            },
            local: Frontier::new(),
            last_time: None,
        }
    }

    /// Checks and hashes the next entry, and returns it decoded (`None`
    /// if it cannot be). `stored` is told of every perfect subtree
    /// completed (global positions), to compare with storage.
    pub fn push(&mut self, bytes: &[u8], mut stored: impl FnMut(Subtree, &Digest)) -> Option<Entry> {
        let index = self.report.start + self.report.entries;
        let start = self.report.start;
        self.local.push(merkle::leaf_hash(bytes), |local, hash| {
            stored(Subtree { level: local.level, index: (start >> local.level) + local.index }, hash);
        });
        self.report.entries += 1;
        match Entry::decode(bytes) {
            Err(error) => {
                self.problem(Problem::Undecodable { index, error: error.to_string() });
                None
            }
            Ok(entry) => {
                self.check(index, &entry);
                Some(entry)
            }
        }
    }

    /// The entries checked so far.
    pub fn entries(&self) -> u64 {
        self.report.entries
    }

    /// The perfect subtrees of the entries so far, largest first, with
    /// their global positions: joined after a tree's first `start`
    /// entries, they give the tree of `start + entries` entries.
    pub fn edge(&self) -> Vec<(Subtree, Digest)> {
        let start = self.report.start;
        self.local
            .edge_subtrees()
            .into_iter()
            .zip(self.local.edge())
            .map(|(local, hash)| (Subtree { level: local.level, index: (start >> local.level) + local.index }, *hash))
            .collect()
    }

    /// Adds a problem found beside the entries (a stored hash, a kept
    /// record), counted within the same bound.
    pub fn add_problem(&mut self, problem: Problem) {
        self.problem(problem);
    }

    fn check(&mut self, index: u64, entry: &Entry) {
        if entry.index() != index {
            self.problem(Problem::Misplaced { index, stated: entry.index() });
        }
        let time = entry.time_ms();
        if let Some(from) = self.last_time.filter(|from| time < *from) {
            self.problem(Problem::TimeBackwards { index, from, to: time });
        }
        self.last_time = Some(time);
        self.report.times = Some(self.report.times.map_or((time, time), |(first, _)| (first, time)));
        match entry {
            Entry::PolicySet(_) => self.report.sets.push(index),
            Entry::Receipt(receipt) => {
                self.report.receipts += 1;
                if receipt.policy_set < self.report.start {
                    self.report.earlier_sets.insert(receipt.policy_set);
                } else if self.report.sets.binary_search(&receipt.policy_set).is_err() {
                    self.problem(Problem::NotAPolicySet { index, set: receipt.policy_set });
                }
            }
        }
    }

    fn problem(&mut self, problem: Problem) {
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(problem);
        } else {
            self.report.more_problems += 1;
        }
    }

    /// The chunk's report.
    pub fn finish(mut self) -> ChunkReport {
        self.report.subtrees = self.edge();
        self.report
    }
}

/// The most policy-set entries whose places a [`Combiner`] remembers to
/// check receipts' references across chunks (8 MiB): an honest log has one
/// per start and per change of set; a crafted log of nothing else would
/// otherwise grow the verifier's memory with its size.
pub const MAX_SETS: usize = 1 << 20;

/// Joins chunk reports, in order, into the whole log's tree and checks.
#[derive(Debug, Default)]
pub struct Combiner {
    frontier: Frontier,
    /// The indexes of the policy sets joined, ascending.
    sets: Vec<u64>,
    /// Policy sets beyond [`MAX_SETS`], whose places were not kept.
    sets_beyond: u64,
    last_time: Option<u64>,
    receipts: u64,
    problems: Vec<Problem>,
    more_problems: u64,
}

/// A chunk offered out of order.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("chunk at {start} cannot follow {size} entries: {error}")]
pub struct OutOfOrder {
    /// The chunk's start.
    pub start: u64,
    /// The entries joined so far.
    pub size: u64,
    /// Why.
    pub error: AppendError,
}

impl Combiner {
    /// Nothing joined yet.
    pub fn new() -> Combiner {
        Combiner::default()
    }

    /// Joins the next chunk.
    pub fn join(&mut self, chunk: ChunkReport) -> Result<(), OutOfOrder> {
        self.join_reporting(chunk, |_, _| {})
    }

    /// Joins the next chunk; `stored` is told of every perfect subtree the
    /// join completes (those larger than a chunk), to compare with storage.
    pub fn join_reporting(
        &mut self,
        chunk: ChunkReport,
        mut stored: impl FnMut(Subtree, &Digest),
    ) -> Result<(), OutOfOrder> {
        let size = self.frontier.size();
        if chunk.start != size {
            let error = AppendError::Misaligned { size, start: chunk.start, end: chunk.start + chunk.entries };
            return Err(OutOfOrder { start: chunk.start, size, error });
        }
        for (subtree, hash) in &chunk.subtrees {
            self.frontier.append_subtree(*subtree, *hash, &mut stored).map_err(|error| OutOfOrder {
                start: chunk.start,
                size,
                error,
            })?;
        }
        if let (Some(from), Some((first, _))) = (self.last_time, chunk.times)
            && first < from
        {
            self.problem(Problem::TimeBackwards { index: chunk.start, from, to: first });
        }
        if let Some((_, last)) = chunk.times {
            self.last_time = Some(last);
        }
        for set in &chunk.earlier_sets {
            if self.sets_beyond == 0 && self.sets.binary_search(set).is_err() {
                // Which receipt named it is in the chunk; the first entry
                // of the chunk stands for them.
                self.problem(Problem::NotAPolicySet { index: chunk.start, set: *set });
            }
        }
        for set in chunk.sets {
            if self.sets.len() < MAX_SETS {
                self.sets.push(set);
            } else {
                self.sets_beyond += 1;
            }
        }
        self.receipts += chunk.receipts;
        for problem in chunk.problems {
            self.problem(problem);
        }
        self.more_problems += chunk.more_problems;
        Ok(())
    }

    fn problem(&mut self, problem: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        } else {
            self.more_problems += 1;
        }
    }

    /// The tree of everything joined.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// Receipts joined.
    pub fn receipts(&self) -> u64 {
        self.receipts
    }

    /// Policy-set entries beyond [`MAX_SETS`]: past that many, receipts'
    /// references to earlier chunks are no longer checked.
    pub fn sets_beyond(&self) -> u64 {
        self.sets_beyond
    }

    /// The first problems found, and how many more.
    pub fn problems(&self) -> (&[Problem], u64) {
        (&self.problems, self.more_problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::tests::mth;
    use crate::policy_set::PolicySet;
    use crate::policy_set::tests::reference_set;
    use crate::receipt::Receipt;
    use crate::receipt::tests::typical;

    /// A log: a policy set at 0, receipts after it, another set at 500.
    fn log(n: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| match i {
                0 | 500 => PolicySet { time_ms: typical(i).time_ms, ..reference_set(i) }.encode(),
                _ => Receipt { policy_set: if i > 500 { 500 } else { 0 }, ..typical(i) }.encode(),
            })
            .collect()
    }

    /// Verifies `entries` in chunks of `chunk` entries, on threads.
    fn verify(entries: &[Vec<u8>], chunk: usize) -> Combiner {
        let reports: Vec<ChunkReport> = std::thread::scope(|scope| {
            let workers: Vec<_> = entries
                .chunks(chunk)
                .enumerate()
                .map(|(k, part)| {
                    scope.spawn(move || {
                        let mut verifier = ChunkVerifier::new((k * chunk) as u64);
                        part.iter().for_each(|bytes| {
                            verifier.push(bytes, |_, _| {});
                        });
                        verifier.finish()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let mut combiner = Combiner::new();
        reports.into_iter().for_each(|report| combiner.join(report).unwrap());
        combiner
    }

    #[test]
    fn chunks_on_threads_give_the_whole_tree() {
        let entries = log(1000);
        let leaves: Vec<Digest> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
        for chunk in [1024, 256, 64, 1] {
            let combiner = verify(&entries, chunk);
            assert_eq!(combiner.frontier().root(), mth(&leaves), "chunks of {chunk}");
            assert_eq!(combiner.problems(), (&[][..], 0));
            assert_eq!(combiner.receipts(), 998);
        }
    }

    #[test]
    fn damage_is_named_by_entry_across_chunks() {
        let mut entries = log(1000);
        entries[300] = Receipt { time_ms: 1, ..typical(300) }.encode();
        entries[256] = Receipt { time_ms: 2, ..typical(256) }.encode();
        entries[700] = entries[699].clone();
        entries[800] = Receipt { policy_set: 3, ..typical(800) }.encode();
        entries[900] = Receipt { policy_set: 1, ..typical(900) }.encode();
        entries[901].truncate(10);
        // Chunks of 256: entries 256 and 900 name things across a boundary.
        let combiner = verify(&entries, 256);
        let (problems, more) = combiner.problems();
        assert_eq!(more, 0);
        let expected = [
            Problem::TimeBackwards { index: 256, from: typical(255).time_ms, to: 2 },
            Problem::TimeBackwards { index: 300, from: typical(299).time_ms, to: 1 },
            Problem::TimeBackwards { index: 301, from: 1, to: typical(301).time_ms }.clone(),
        ];
        // (A step back and the step forward again: only the back one is a problem.)
        assert!(problems.contains(&expected[0]), "{problems:#?}");
        assert!(problems.contains(&expected[1]), "{problems:#?}");
        assert!(!problems.contains(&expected[2]));
        assert!(problems.contains(&Problem::Misplaced { index: 700, stated: 699 }));
        assert!(problems.contains(&Problem::NotAPolicySet { index: 768, set: 3 }), "{problems:#?}");
        assert!(problems.contains(&Problem::NotAPolicySet { index: 768, set: 1 }), "{problems:#?}");
        assert!(problems.iter().any(|p| matches!(p, Problem::Undecodable { index: 901, .. })));
        // The tree is still the tree of the bytes as they are.
        let leaves: Vec<Digest> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
        assert_eq!(combiner.frontier().root(), mth(&leaves));
    }

    #[test]
    fn problems_are_bounded() {
        let garbage = vec![vec![0xffu8; 3]; 10_000];
        let combiner = verify(&garbage, 1024);
        let (problems, more) = combiner.problems();
        assert_eq!(problems.len(), MAX_PROBLEMS);
        assert_eq!(more, 10_000 - MAX_PROBLEMS as u64);
    }

    #[test]
    fn chunks_must_come_in_order_and_be_cut_at_powers_of_two() {
        let entries = log(10);
        let chunk = |start: usize, end: usize| {
            let mut verifier = ChunkVerifier::new(start as u64);
            entries[start..end].iter().for_each(|e| {
                verifier.push(e, |_, _| {});
            });
            verifier.finish()
        };
        let mut combiner = Combiner::new();
        assert!(combiner.join(chunk(4, 8)).is_err(), "a gap");
        combiner.join(chunk(0, 3)).unwrap();
        // Leaves 3..7 are no perfect subtree: refused, not joined wrongly.
        assert!(matches!(combiner.join(chunk(3, 7)), Err(OutOfOrder { error: AppendError::Misaligned { .. }, .. })));
    }
}
