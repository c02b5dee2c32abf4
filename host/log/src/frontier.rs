//! The right edge of a growing tree: all a writer needs to append leaves
//! and sign roots, and all a verifier needs to combine separately checked
//! parts of a log.
//!
//! A tree of `n` leaves is, on its right edge, one perfect subtree per set
//! bit of `n` (RFC 9162 splits at powers of two), largest first: at most 64
//! hashes. Appending a leaf merges equal-sized subtrees like a binary
//! counter carries, so a leaf costs one node hash on average, and each
//! merge completes a perfect subtree whose hash storage keeps for good.
//! The root is the fold of the edge from the right.
//!
//! Why it matters beyond the writer: because the edge is all that a new
//! root depends on, a log whose edge matches its last signed checkpoint
//! cannot have an edited older entry "blessed" by a later signature (the
//! hash chain it replaces could); and because a whole perfect subtree can
//! be appended at once ([`Frontier::append_subtree`]), verification can
//! check aligned chunks of the log on every core and join their roots here.

use thiserror::Error;

use crate::digest::Digest;
use crate::merkle::{self, EMPTY_ROOT, HashReader, ProveError, Subtree};

/// The perfect subtrees on the right edge of a tree, largest first.
///
/// ```
/// use flowgate_log::frontier::Frontier;
/// use flowgate_log::merkle::leaf_hash;
/// let mut tree = Frontier::new();
/// for entry in [b"a", b"b", b"c"] {
///     tree.push(leaf_hash(entry), |_, _| {});
/// }
/// assert_eq!(tree.size(), 3);
/// assert_eq!(tree.edge().len(), 2, "a subtree of 2 leaves and one of 1");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One hash per set bit of `size`, the largest subtree first.
    edge: Vec<Digest>,
}

/// A subtree could not be appended where it was offered.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum AppendError {
    /// The subtree does not start where the tree ends.
    #[error("a subtree of leaves {start}..{end} cannot follow a tree of {size} leaves")]
    Misaligned {
        /// The tree's size.
        size: u64,
        /// The subtree's first leaf.
        start: u64,
        /// One past its last leaf.
        end: u64,
    },
    /// The tree would hold more than 2^63 leaves.
    #[error("the tree is full")]
    Full,
}

impl Frontier {
    /// The empty tree.
    pub const fn new() -> Frontier {
        Frontier { size: 0, edge: Vec::new() }
    }

    /// The leaves appended so far.
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// The edge's hashes, the largest subtree first.
    pub fn edge(&self) -> &[Digest] {
        &self.edge
    }

    /// The edge's subtrees, in the order of [`Frontier::edge`].
    pub fn edge_subtrees(&self) -> Vec<Subtree> {
        edge_subtrees(self.size)
    }

    /// The root hash: RFC 9162's `MTH` of every leaf appended.
    pub fn root(&self) -> Digest {
        let mut parts = self.edge.iter().rev();
        match parts.next() {
            None => EMPTY_ROOT,
            Some(last) => parts.fold(*last, |right, left| merkle::node_hash(left, &right)),
        }
    }

    /// Appends a leaf hash. `stored` is told of every perfect subtree the
    /// leaf completes, the leaf itself (level 0) first: what storage keeps.
    pub fn push(&mut self, leaf: Digest, stored: impl FnMut(Subtree, &Digest)) {
        let subtree = Subtree { level: 0, index: self.size };
        self.append_subtree(subtree, leaf, stored).expect("a leaf always fits unless the tree is full");
    }

    /// Appends a whole perfect subtree, given its hash: the one that starts
    /// at the tree's end. `stored` is told of it and of every larger
    /// subtree it completes.
    pub fn append_subtree(
        &mut self,
        subtree: Subtree,
        hash: Digest,
        mut stored: impl FnMut(Subtree, &Digest),
    ) -> Result<(), AppendError> {
        if subtree.level >= 63 || subtree.index >= 1 << (63 - subtree.level) {
            return Err(AppendError::Full);
        }
        let (start, end) = (subtree.start(), subtree.end());
        // It must start at the end, and not be larger than the smallest
        // subtree on the edge (or it would straddle it).
        if start != self.size || (self.size != 0 && self.size.trailing_zeros() < u32::from(subtree.level)) {
            return Err(AppendError::Misaligned { size: self.size, start, end });
        }
        let mut current = subtree;
        let mut hash = hash;
        stored(current, &hash);
        while current.index & 1 == 1 {
            let left = self.edge.pop().expect("an odd subtree has a left sibling on the edge");
            hash = merkle::node_hash(&left, &hash);
            current = Subtree { level: current.level + 1, index: current.index >> 1 };
            stored(current, &hash);
        }
        self.edge.push(hash);
        self.size = end;
        Ok(())
    }

    /// The frontier of the tree of `size` leaves, read from storage: one
    /// hash per set bit of `size`, so O(log n) reads.
    pub fn load<R: HashReader>(reader: &R, size: u64) -> Result<Frontier, ProveError<R::Error>> {
        let subtrees = edge_subtrees(size);
        let edge = reader.read_hashes(&subtrees).map_err(ProveError::Read)?;
        if edge.len() != subtrees.len() {
            return Err(ProveError::ShortRead { asked: subtrees.len(), got: edge.len() });
        }
        Ok(Frontier { size, edge })
    }
}

/// The perfect subtrees on the right edge of a tree of `size` leaves,
/// largest first.
pub fn edge_subtrees(size: u64) -> Vec<Subtree> {
    let mut at = 0;
    let mut subtrees = Vec::with_capacity(size.count_ones() as usize);
    for level in (0..64u8).rev() {
        if size & (1 << level) != 0 {
            subtrees.push(Subtree { level, index: at >> level });
            at += 1 << level;
        }
    }
    subtrees
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;
    use crate::merkle::tests::{Perfect, mth, vectors};

    fn leaves(n: u64) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn every_root_as_the_rfc_defines_it() {
        let vectors = vectors();
        let mut tree = Frontier::new();
        assert_eq!(tree.root(), vectors.roots[&0]);
        let rfc: Vec<Digest> = merkle::tests::rfc_leaves().iter().map(|l| leaf_hash(l)).collect();
        for (i, leaf) in rfc.iter().enumerate() {
            tree.push(*leaf, |_, _| {});
            assert_eq!(tree.root(), vectors.roots[&(i as u64 + 1)], "size {}", i + 1);
        }
        let hashes = leaves(300);
        let mut tree = Frontier::new();
        for (i, leaf) in hashes.iter().enumerate() {
            tree.push(*leaf, |_, _| {});
            assert_eq!(tree.root(), mth(&hashes[..=i]));
            assert_eq!(tree.edge().len(), tree.size().count_ones() as usize);
        }
    }

    #[test]
    fn it_reports_each_perfect_subtree_once_with_its_hash() {
        let hashes = leaves(100);
        let perfect = Perfect::new(&hashes);
        let mut tree = Frontier::new();
        let mut reported = Vec::new();
        for leaf in &hashes {
            tree.push(*leaf, |subtree, hash| reported.push((subtree, *hash)));
        }
        // 100 leaves hold 100 + 50 + 25 + 12 + 6 + 3 + 1 perfect subtrees.
        assert_eq!(reported.len(), 197);
        for (subtree, hash) in &reported {
            assert_eq!(perfect.read_hashes(&[*subtree]).unwrap(), vec![*hash], "{subtree:?}");
        }
        // In completion order: a subtree comes after its last leaf.
        let mut last_leaf = 0;
        for (subtree, _) in &reported {
            if subtree.level == 0 {
                last_leaf = subtree.index;
            } else {
                assert_eq!(subtree.end() - 1, last_leaf, "{subtree:?}");
            }
        }
    }

    #[test]
    fn aligned_chunks_join_into_the_same_root() {
        // What parallel verification does: chunks of 16 leaves hashed apart,
        // their roots appended whole, then a ragged tail leaf by leaf.
        let hashes = leaves(16 * 5 + 7);
        let mut joined = Frontier::new();
        for chunk in hashes.chunks(16) {
            if chunk.len() == 16 {
                let index = joined.size() / 16;
                joined.append_subtree(Subtree { level: 4, index }, mth(chunk), |_, _| {}).unwrap();
            } else {
                chunk.iter().for_each(|leaf| joined.push(*leaf, |_, _| {}));
            }
        }
        assert_eq!(joined.root(), mth(&hashes));
        assert_eq!(joined, Frontier::load(&Perfect::new(&hashes), hashes.len() as u64).unwrap());
    }

    #[test]
    fn a_subtree_out_of_place_is_refused() {
        let mut tree = Frontier::new();
        tree.push(leaf_hash(b"a"), |_, _| {});
        let whole = |level, index| Subtree { level, index };
        // Size 1: a subtree of 2 would straddle the first leaf; one at 2 skips leaf 1.
        assert_eq!(
            tree.append_subtree(whole(1, 0), EMPTY_ROOT, |_, _| {}),
            Err(AppendError::Misaligned { size: 1, start: 0, end: 2 })
        );
        assert_eq!(
            tree.append_subtree(whole(1, 1), EMPTY_ROOT, |_, _| {}),
            Err(AppendError::Misaligned { size: 1, start: 2, end: 4 })
        );
        assert_eq!(tree.size(), 1, "a refused subtree changes nothing");
        tree.append_subtree(whole(0, 1), EMPTY_ROOT, |_, _| {}).unwrap();
        tree.append_subtree(whole(1, 1), EMPTY_ROOT, |_, _| {}).unwrap();
        assert_eq!(tree.size(), 4);
        assert_eq!(tree.append_subtree(whole(63, 0), EMPTY_ROOT, |_, _| {}), Err(AppendError::Full));
    }

    #[test]
    fn the_edge_of_a_size_is_its_binary_digits() {
        assert_eq!(edge_subtrees(0), vec![]);
        assert_eq!(
            edge_subtrees(13),
            vec![Subtree { level: 3, index: 0 }, Subtree { level: 2, index: 2 }, Subtree { level: 0, index: 12 }]
        );
    }
}
