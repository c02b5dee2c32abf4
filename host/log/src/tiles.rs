//! Which tree hashes a log stores, and how any other is recomputed from
//! them: tiles, as Go's checksum database and C2SP `tlog-tiles` store a
//! tree.
//!
//! Storing every perfect subtree costs two hashes per leaf (64 bytes, a
//! third of a compact receipt). Storing only every eighth level (the
//! leaves, level 8, level 16, …) costs 32 × (1 + 1/256 + …) ≈ 32.1 bytes
//! per leaf, and a subtree of any other level is the fold of at most 256
//! consecutive stored hashes one stored level below: one contiguous read
//! of at most 8 KiB and at most 255 node hashes. A proof names O(log n)
//! subtrees, so it still costs O(log n) reads, whatever the log's size.
//!
//! Stored level `8·t` is a flat sequence of hashes: hash `i` of it is the
//! perfect subtree `{level: 8·t, index: i}`. In stage B each stored level is
//! one append-only file of 32-byte hashes (`tree/level-00`, `tree/level-08`,
//! …); the writer appends what [`Frontier::push`](crate::frontier::Frontier::push)
//! reports for stored levels, and a level's file length says how far it
//! goes. (C2SP tiles cut the same sequences into 256-hash files for HTTP
//! caching; a local file needs no cutting, and the hashes are identical.)

use crate::digest::Digest;
use crate::merkle::{self, HashReader, Subtree};

/// Levels stored: every `TILE_HEIGHT`-th, from the leaves up.
pub const TILE_HEIGHT: u8 = 8;

/// Whether storage keeps the hashes of subtrees of `level`.
pub const fn is_stored(level: u8) -> bool {
    level.is_multiple_of(TILE_HEIGHT)
}

/// Raw access to stored levels: the storage half of a [`Tiled`] reader.
pub trait StoredLevels {
    /// What goes wrong in storage.
    type Error;

    /// `count` consecutive hashes of stored level `level` from `start`
    /// (`level` is a multiple of [`TILE_HEIGHT`], `count` at most 256).
    fn read_run(&self, level: u8, start: u64, count: u64) -> Result<Vec<Digest>, Self::Error>;
}

impl<S: StoredLevels + ?Sized> StoredLevels for &S {
    type Error = S::Error;

    fn read_run(&self, level: u8, start: u64, count: u64) -> Result<Vec<Digest>, S::Error> {
        (**self).read_run(level, start, count)
    }
}

/// A [`HashReader`] over stored levels: a subtree at a stored level is read
/// as it is; any other is folded from the level below it that is stored.
#[derive(Debug)]
pub struct Tiled<S>(pub S);

impl<S: StoredLevels> HashReader for Tiled<S> {
    type Error = S::Error;

    fn read_hashes(&self, subtrees: &[Subtree]) -> Result<Vec<Digest>, S::Error> {
        subtrees
            .iter()
            .map(|subtree| {
                let above = subtree.level % TILE_HEIGHT;
                let base = subtree.level - above;
                let run = self.0.read_run(base, subtree.index << above, 1 << above)?;
                Ok(perfect_root(&run))
            })
            .collect()
    }
}

/// The root of a perfect subtree from its `2^k` hashes at some level.
fn perfect_root(hashes: &[Digest]) -> Digest {
    debug_assert!(hashes.len().is_power_of_two());
    let mut level = hashes.to_vec();
    while level.len() > 1 {
        level = level.chunks_exact(2).map(|pair| merkle::node_hash(&pair[0], &pair[1])).collect();
    }
    level.first().copied().unwrap_or(merkle::EMPTY_ROOT)
}

/// Stored levels in memory: for tests, and a model of the files stage B
/// writes (each level only ever grows at its end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryLevels {
    /// `levels[t]` is stored level `8·t`.
    levels: Vec<Vec<Digest>>,
}

/// A stored hash was offered out of order, or read beyond what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stored level {level} has {len} hashes: hash {index} is not there")]
pub struct MissingHash {
    /// The stored level.
    pub level: u8,
    /// The hash's position in it.
    pub index: u64,
    /// How many hashes the level holds.
    pub len: u64,
}

impl MemoryLevels {
    /// No hashes.
    pub const fn new() -> MemoryLevels {
        MemoryLevels { levels: Vec::new() }
    }

    /// Keeps `hash` if its level is stored; it must be the next of its level.
    pub fn keep(&mut self, subtree: Subtree, hash: &Digest) -> Result<(), MissingHash> {
        if !is_stored(subtree.level) {
            return Ok(());
        }
        let t = usize::from(subtree.level / TILE_HEIGHT);
        if self.levels.len() <= t {
            self.levels.resize(t + 1, Vec::new());
        }
        let level = &mut self.levels[t];
        if subtree.index != level.len() as u64 {
            return Err(MissingHash { level: subtree.level, index: subtree.index, len: level.len() as u64 });
        }
        level.push(*hash);
        Ok(())
    }

    /// How many hashes stored level `level` holds.
    pub fn len(&self, level: u8) -> u64 {
        self.levels.get(usize::from(level / TILE_HEIGHT)).map_or(0, |l| l.len() as u64)
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}

impl StoredLevels for MemoryLevels {
    type Error = MissingHash;

    fn read_run(&self, level: u8, start: u64, count: u64) -> Result<Vec<Digest>, MissingHash> {
        let stored = self.levels.get(usize::from(level / TILE_HEIGHT)).map_or(&[][..], Vec::as_slice);
        let end = start.checked_add(count).filter(|end| *end <= stored.len() as u64);
        match end {
            Some(end) => Ok(stored[start as usize..end as usize].to_vec()),
            None => Err(MissingHash { level, index: start.saturating_add(count) - 1, len: stored.len() as u64 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::frontier::Frontier;
    use crate::merkle::tests::{Perfect, mth};
    use crate::merkle::{consistency_proof, inclusion_proof, leaf_hash, tree_root};

    /// Stored levels that count what they serve.
    struct Counting {
        levels: MemoryLevels,
        runs: Cell<u64>,
        hashes: Cell<u64>,
    }

    impl StoredLevels for Counting {
        type Error = MissingHash;

        fn read_run(&self, level: u8, start: u64, count: u64) -> Result<Vec<Digest>, MissingHash> {
            self.runs.set(self.runs.get() + 1);
            self.hashes.set(self.hashes.get() + count);
            self.levels.read_run(level, start, count)
        }
    }

    fn grown(n: u64) -> (Vec<Digest>, MemoryLevels) {
        let hashes: Vec<Digest> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut levels = MemoryLevels::new();
        let mut tree = Frontier::new();
        for leaf in &hashes {
            tree.push(*leaf, |subtree, hash| levels.keep(subtree, hash).unwrap());
        }
        (hashes, levels)
    }

    #[test]
    fn only_every_eighth_level_is_stored() {
        let (_, levels) = grown(70_000);
        // As C2SP's example: 70,000 leaves; level 8 holds 273 full subtrees,
        // level 16 one.
        assert_eq!((levels.len(0), levels.len(8), levels.len(16), levels.len(24)), (70_000, 273, 1, 0));
    }

    #[test]
    fn tiled_proofs_equal_proofs_from_every_subtree() {
        let n = 256 * 3 + 41;
        let (hashes, levels) = grown(n);
        let tiled = Tiled(levels);
        let perfect = Perfect::new(&hashes);
        for size in [1, 2, 255, 256, 257, 512, 700, n] {
            assert_eq!(tree_root(&tiled, size).unwrap(), mth(&hashes[..size as usize]));
            for index in [0, size / 2, size - 1] {
                assert_eq!(
                    inclusion_proof(&tiled, index, size),
                    inclusion_proof(&perfect, index, size).map_err(|_| unreachable!())
                );
                assert_eq!(
                    consistency_proof(&tiled, index + 1, size).unwrap(),
                    consistency_proof(&perfect, index + 1, size).unwrap()
                );
            }
        }
        // Beyond what is stored: an error, not a wrong hash.
        assert!(tree_root(&tiled, n + 1).is_err());
    }

    #[test]
    fn a_proof_in_a_large_tree_reads_a_few_kilobytes() {
        let n = (1 << 18) + 12_345;
        let (_, levels) = grown(n);
        let counting = Counting { levels, runs: Cell::new(0), hashes: Cell::new(0) };
        let tiled = Tiled(&counting);
        inclusion_proof(&tiled, 77_777, n).unwrap();
        let (runs, hashes) = (counting.runs.get(), counting.hashes.get());
        // log2(n) ≈ 18: at most 2·18 + 1 subtrees, each one contiguous run
        // of at most 128 hashes.
        assert!(runs <= 37, "{runs} runs");
        assert!(hashes * 32 <= 64 << 10, "{hashes} hashes read");
        assert!(runs >= 10, "the proof must reach several levels ({runs})");
    }

    #[test]
    fn hashes_must_be_kept_in_order() {
        let mut levels = MemoryLevels::new();
        let leaf = leaf_hash(b"");
        levels.keep(Subtree { level: 3, index: 9 }, &leaf).unwrap();
        assert!(levels.is_empty(), "level 3 is not stored");
        assert_eq!(levels.keep(Subtree { level: 0, index: 1 }, &leaf), Err(MissingHash { level: 0, index: 1, len: 0 }));
    }
}
