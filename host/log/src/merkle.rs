//! The Merkle tree over log entries, exactly as RFC 9162 §2.1 defines it,
//! and its two proofs.
//!
//! Why this tree: it is the one every transparency log speaks
//! (Certificate Transparency, Go's checksum database, Sigsum, Tessera), so
//! a checkpoint's root hash and our proofs can be checked by any program
//! that implements the RFC, not only by ours. It also gives what a hash
//! chain cannot: a proof that one entry is in the log (an *inclusion*
//! proof, a few hundred bytes whatever the log's size) and a proof that a
//! newer tree extends an older one without rewriting it (a *consistency*
//! proof), both checked without the log.
//!
//! Hashing (RFC 9162 §2.1.1): a leaf is `SHA-256(0x00 || entry bytes)`, a
//! node `SHA-256(0x01 || left || right)`, the empty tree `SHA-256("")`.
//! The tree over `n` leaves splits at the largest power of two below `n`.
//!
//! Generation reads the tree through [`HashReader`], which serves the hash
//! of any *perfect* subtree (2^level leaves, aligned): such hashes never
//! change once the log holds their leaves, so storage can keep them in
//! append-only files. Any node hash a proof needs is a fold of at most
//! `log2 n` perfect subtrees, and the whole of a proof needs O(log n) of
//! them ([`tiles`](crate::tiles) serves them from stored levels). Each
//! proof is generated from the ranges the RFC's recursive definitions
//! name (`PATH` and `SUBPROOF`), and verified with the RFC's iterative
//! algorithms (§2.1.3.2 and §2.1.4.2), which are written from the RFC, not
//! from the generator: the two meet only in the tests.

use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::digest::Digest;

/// The root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Digest = Digest::from_bytes([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// The longest proof any tree can need: one hash per level, twice over
/// for a consistency proof's two edges, and one more. Longer is refused
/// before any hashing.
pub const MAX_PROOF_HASHES: usize = 2 * 64 + 1;

/// The hash of a leaf: SHA-256 of `0x00` and the entry's bytes.
///
/// ```
/// // RFC 6962 test vector: the empty entry.
/// let hash = flowgate_log::merkle::leaf_hash(b"");
/// assert_eq!(hash.to_string(), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
/// ```
pub fn leaf_hash(entry: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    Digest::from_bytes(hasher.finalize().into())
}

/// The hash of an interior node: SHA-256 of `0x01`, the left and the right child.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut block = [0u8; 65];
    block[0] = 0x01;
    block[1..33].copy_from_slice(left.as_bytes());
    block[33..].copy_from_slice(right.as_bytes());
    Digest::from_bytes(Sha256::digest(block).into())
}

/// A perfect subtree: the `2^level` leaves from `index << level`.
///
/// These are the only hashes storage needs to keep: a perfect subtree's
/// hash is fixed once its last leaf is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Subtree {
    /// Its height: 0 for a single leaf.
    pub level: u8,
    /// Its position among the subtrees of its level, from the left.
    pub index: u64,
}

impl Subtree {
    /// Its first leaf.
    pub const fn start(&self) -> u64 {
        self.index << self.level
    }

    /// One past its last leaf.
    pub const fn end(&self) -> u64 {
        (self.index + 1) << self.level
    }
}

/// Reads the hashes of perfect subtrees from wherever a log keeps them.
///
/// A whole proof's subtrees are asked for in one call, so that storage can
/// read them together (a file of tiles serves neighbours from one read).
pub trait HashReader {
    /// What goes wrong in storage.
    type Error;

    /// The hash of each of `subtrees`, in the same order. Every subtree
    /// asked for lies within a tree size the log holds.
    fn read_hashes(&self, subtrees: &[Subtree]) -> Result<Vec<Digest>, Self::Error>;
}

/// A proof (or a root) could not be produced.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProveError<E> {
    /// The leaf is not in a tree of that size.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The older tree is larger than the newer.
    #[error("a tree of {old} leaves cannot be older than one of {new}")]
    SizesOutOfOrder {
        /// The older size asked for.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// Storage failed, or did not answer one hash per subtree.
    #[error("reading the tree: {0}")]
    Read(E),
    /// Storage answered a different number of hashes than asked.
    #[error("the tree storage answered {got} hashes for {asked} subtrees")]
    ShortRead {
        /// Subtrees asked for.
        asked: usize,
        /// Hashes answered.
        got: usize,
    },
}

/// A proof does not prove what it claims.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf claimed.
        index: u64,
        /// The tree size claimed.
        size: u64,
    },
    /// The older tree is larger than the newer.
    #[error("a tree of {old} leaves cannot be older than one of {new}")]
    SizesOutOfOrder {
        /// The older size claimed.
        old: u64,
        /// The newer size claimed.
        new: u64,
    },
    /// The proof has more or fewer hashes than these sizes call for.
    #[error("the proof has {actual} hashes where {expected} are needed")]
    WrongLength {
        /// Hashes these sizes need.
        expected: usize,
        /// Hashes the proof has.
        actual: usize,
    },
    /// The older tree's root is not the one the proof leads to.
    #[error("the proof leads to old root {computed}, not {expected}")]
    OldRootMismatch {
        /// The root claimed for the older tree.
        expected: Digest,
        /// What the proof leads to.
        computed: Digest,
    },
    /// The (newer) tree's root is not the one the proof leads to.
    #[error("the proof leads to root {computed}, not {expected}")]
    RootMismatch {
        /// The root claimed.
        expected: Digest,
        /// What the proof leads to.
        computed: Digest,
    },
}

/// A run of leaves `[start, end)` whose hash is one RFC 9162 subtree hash,
/// `MTH(D[start:end])`. Proofs are lists of such runs.
type Run = (u64, u64);

/// The runs of the audit path of leaf `index` in a tree of `size` leaves,
/// from the leaf up: RFC 9162 §2.1.3.1, `PATH(m, D[n])`.
fn inclusion_runs(index: u64, size: u64) -> Vec<Run> {
    let mut runs = Vec::new();
    let (mut start, mut end, mut m) = (0u64, size, index);
    while end - start > 1 {
        let k = split(end - start);
        if m < k {
            runs.push((start + k, end));
            end = start + k;
        } else {
            runs.push((start, start + k));
            start += k;
            m -= k;
        }
    }
    runs.reverse();
    runs
}

/// The runs of the consistency proof from `old` to `new` leaves, in the
/// order RFC 9162 §2.1.4.1 gives them (`SUBPROOF(m, D[n], true)`).
/// Empty when `old` is 0 or equals `new`: nothing needs proving.
fn consistency_runs(old: u64, new: u64) -> Vec<Run> {
    let mut runs = Vec::new();
    if old == 0 || old >= new {
        return runs;
    }
    let (mut start, mut end, mut m, mut whole) = (0u64, new, old, true);
    // SUBPROOF(m, D[start:end], whole), unrolled: each step records the
    // sibling run, which comes out nearest the root first.
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                runs.push((start, end));
            }
            break;
        }
        let k = split(n);
        if m <= k {
            runs.push((start + k, end));
            end = start + k;
        } else {
            runs.push((start, start + k));
            start += k;
            m -= k;
            whole = false;
        }
    }
    runs.reverse();
    runs
}

/// The largest power of two below `n` (n ≥ 2): where RFC 9162 splits a tree.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The perfect subtrees whose fold is `MTH(D[start:end])`, largest first.
///
/// Every run a proof names starts at a multiple of the power of two at or
/// above its length (the RFC splits only there), so it is the perfect
/// subtrees of the binary digits of its length, left to right, and its hash
/// is their fold from the right: `H(P1, H(P2, … Pk))`.
fn run_subtrees((start, end): Run, out: &mut Vec<Subtree>) {
    let mut at = start;
    let len = end - start;
    for level in (0..64u8).rev() {
        if len & (1 << level) != 0 {
            out.push(Subtree { level, index: at >> level });
            at += 1 << level;
        }
    }
}

/// Reads the hashes of `runs`, one read for all.
fn read_runs<R: HashReader>(reader: &R, runs: &[Run]) -> Result<Vec<Digest>, ProveError<R::Error>> {
    let mut subtrees = Vec::new();
    let mut counts = Vec::with_capacity(runs.len());
    for run in runs {
        let before = subtrees.len();
        run_subtrees(*run, &mut subtrees);
        counts.push(subtrees.len() - before);
    }
    let hashes = reader.read_hashes(&subtrees).map_err(ProveError::Read)?;
    if hashes.len() != subtrees.len() {
        return Err(ProveError::ShortRead { asked: subtrees.len(), got: hashes.len() });
    }
    let mut at = 0;
    Ok(counts
        .into_iter()
        .map(|count| {
            let parts = &hashes[at..at + count];
            at += count;
            fold_right(parts)
        })
        .collect())
}

/// `H(p1, H(p2, … pk))`: the hash of perfect subtrees side by side, the
/// largest on the left.
fn fold_right(parts: &[Digest]) -> Digest {
    let mut parts = parts.iter().rev();
    let last = *parts.next().expect("a run holds at least one leaf");
    parts.fold(last, |right, left| node_hash(left, &right))
}

/// The root of the tree of `size` leaves, from stored subtree hashes
/// (at most one read per set bit of `size`).
pub fn tree_root<R: HashReader>(reader: &R, size: u64) -> Result<Digest, ProveError<R::Error>> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    Ok(read_runs(reader, &[(0, size)])?[0])
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `size`
/// leaves, leaf end first, as RFC 9162 §2.1.3.1 orders it.
pub fn inclusion_proof<R: HashReader>(reader: &R, index: u64, size: u64) -> Result<Vec<Digest>, ProveError<R::Error>> {
    if index >= size {
        return Err(ProveError::IndexOutOfRange { index, size });
    }
    read_runs(reader, &inclusion_runs(index, size))
}

/// The consistency proof from the tree of `old` leaves to the tree of
/// `new` leaves (RFC 9162 §2.1.4.1); empty when `old` is 0 or `new`.
pub fn consistency_proof<R: HashReader>(reader: &R, old: u64, new: u64) -> Result<Vec<Digest>, ProveError<R::Error>> {
    if old > new {
        return Err(ProveError::SizesOutOfOrder { old, new });
    }
    read_runs(reader, &consistency_runs(old, new))
}

/// Checks that `proof` proves the leaf with hash `leaf` at `index` in the
/// tree of `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
///
/// ```
/// use flowgate_log::merkle::{leaf_hash, node_hash, verify_inclusion};
/// let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
/// let root = node_hash(&a, &b);
/// assert!(verify_inclusion(&b, 1, 2, &[a], &root).is_ok());
/// assert!(verify_inclusion(&b, 0, 2, &[a], &root).is_err());
/// ```
pub fn verify_inclusion(
    leaf: &Digest,
    index: u64,
    size: u64,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion(leaf, index, size, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch { expected: *root, computed });
    }
    Ok(())
}

/// The root an inclusion proof leads to, without comparing it: what a
/// verifier shows when it does not match.
pub fn root_from_inclusion(leaf: &Digest, index: u64, size: u64, proof: &[Digest]) -> Result<Digest, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_runs(index, size).len();
    if proof.len() != expected {
        return Err(ProofError::WrongLength { expected, actual: proof.len() });
    }
    // RFC 9162 §2.1.3.2, step by step.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength { expected, actual: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength { expected, actual: proof.len() });
    }
    Ok(r)
}

/// Checks that `proof` proves the tree of `new` leaves with root
/// `new_root` extends the tree of `old` leaves with root `old_root`
/// (RFC 9162 §2.1.4.2). Equal sizes need equal roots and an empty proof;
/// the empty tree is extended by every tree, with an empty proof.
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Digest],
    old_root: &Digest,
    new_root: &Digest,
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    let expected = consistency_runs(old, new).len();
    if proof.len() != expected {
        return Err(ProofError::WrongLength { expected, actual: proof.len() });
    }
    if old == 0 {
        if *old_root != EMPTY_ROOT {
            return Err(ProofError::OldRootMismatch { expected: *old_root, computed: EMPTY_ROOT });
        }
        return Ok(());
    }
    if old == new {
        if old_root != new_root {
            return Err(ProofError::RootMismatch { expected: *new_root, computed: *old_root });
        }
        return Ok(());
    }
    // RFC 9162 §2.1.4.2, step by step, for 0 < old < new.
    let mut path = proof.iter();
    let first = if old.is_power_of_two() { *old_root } else { *path.next().expect("the length was checked") };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in path {
        if sn == 0 {
            return Err(ProofError::WrongLength { expected, actual: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength { expected, actual: proof.len() });
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch { expected: *old_root, computed: fr });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch { expected: *new_root, computed: sr });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Every perfect subtree of a list of leaf hashes, computed the slow
    /// way, counting what is read.
    pub(crate) struct Perfect {
        levels: Vec<Vec<Digest>>,
        pub(crate) reads: Cell<usize>,
        pub(crate) calls: Cell<usize>,
    }

    impl Perfect {
        pub(crate) fn new(leaves: &[Digest]) -> Perfect {
            let mut levels = vec![leaves.to_vec()];
            while levels.last().unwrap().len() > 1 {
                let below = levels.last().unwrap();
                levels.push(below.chunks_exact(2).map(|pair| node_hash(&pair[0], &pair[1])).collect());
            }
            Perfect { levels, reads: Cell::new(0), calls: Cell::new(0) }
        }
    }

    impl HashReader for Perfect {
        type Error = Subtree;

        fn read_hashes(&self, subtrees: &[Subtree]) -> Result<Vec<Digest>, Subtree> {
            self.calls.set(self.calls.get() + 1);
            self.reads.set(self.reads.get() + subtrees.len());
            subtrees
                .iter()
                .map(|s| self.levels.get(usize::from(s.level)).and_then(|l| l.get(s.index as usize)).copied().ok_or(*s))
                .collect()
        }
    }

    /// The tree hash by RFC 9162's recursive definition, straight from
    /// the text: the reference everything else is compared with.
    pub(crate) fn mth(leaves: &[Digest]) -> Digest {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// The RFC 6962 test leaves used by Go's `tlog`, Trillian and
    /// transparency-dev/merkle.
    pub(crate) fn rfc_leaves() -> Vec<Vec<u8>> {
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
            .iter()
            .map(|hex| (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect())
            .collect()
    }

    /// Independently computed vectors (see `testdata/rfc9162_vectors.py`):
    /// `root N`, `inclusion I N PATH`, `consistency M N PROOF`, `digest`
    /// lines, hashes in hex, comma-separated.
    pub(crate) struct Vectors {
        pub(crate) roots: HashMap<u64, Digest>,
        pub(crate) inclusion: Vec<(u64, u64, Vec<Digest>)>,
        pub(crate) consistency: Vec<(u64, u64, Vec<Digest>)>,
        pub(crate) fingerprints: HashMap<String, Digest>,
    }

    pub(crate) fn vectors() -> Vectors {
        let text = include_str!("../testdata/rfc9162_vectors.txt");
        let hashes = |list: &str| -> Vec<Digest> {
            list.split(',').filter(|h| !h.is_empty()).map(|h| Digest::from_hex(h).unwrap()).collect()
        };
        let mut vectors =
            Vectors { roots: HashMap::new(), inclusion: vec![], consistency: vec![], fingerprints: HashMap::new() };
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields[0] {
                "root" => {
                    vectors.roots.insert(fields[1].parse().unwrap(), Digest::from_hex(fields[2]).unwrap());
                }
                "inclusion" => vectors.inclusion.push((
                    fields[1].parse().unwrap(),
                    fields[2].parse().unwrap(),
                    hashes(fields.get(3).unwrap_or(&"")),
                )),
                "consistency" => vectors.consistency.push((
                    fields[1].parse().unwrap(),
                    fields[2].parse().unwrap(),
                    hashes(fields.get(3).unwrap_or(&"")),
                )),
                "fingerprint" => {
                    vectors.fingerprints.insert(fields[1].to_owned(), Digest::from_hex(fields[2]).unwrap());
                }
                other => panic!("unknown vector line `{other}`"),
            }
        }
        vectors
    }

    fn leaves(n: u64) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn the_rfc_6962_leaves_give_the_published_roots() {
        // Roots from transparency-dev/merkle `testonly.RootHashes()` (the
        // RFC 6962 reference values that Trillian and Go's tlog also test).
        let published = [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let hashes: Vec<Digest> = rfc_leaves().iter().map(|l| leaf_hash(l)).collect();
        let tree = Perfect::new(&hashes);
        let vectors = vectors();
        for (size, root) in published.iter().enumerate() {
            let root = Digest::from_hex(root).unwrap();
            assert_eq!(tree_root(&tree, size as u64).unwrap(), root, "size {size}");
            assert_eq!(mth(&hashes[..size]), root, "size {size}");
            assert_eq!(vectors.roots[&(size as u64)], root, "the script agrees, size {size}");
        }
    }

    #[test]
    fn the_published_proofs_are_generated_and_verify() {
        // transparency-dev/merkle testdata/inclusion/*/happy-path.json and
        // testdata/consistency/*/happy-path.json, base64 as published.
        let b = |s: &str| Digest::from_base64(s).unwrap();
        let hashes: Vec<Digest> = rfc_leaves().iter().map(|l| leaf_hash(l)).collect();
        let tree = Perfect::new(&hashes);
        let inclusion: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
                ],
            ),
            (
                5,
                8,
                &[
                    "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                    "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
                ],
            ),
            (2, 3, &["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="]),
            (
                1,
                5,
                &[
                    "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                ],
            ),
        ];
        for (index, size, path) in inclusion {
            let path: Vec<Digest> = path.iter().map(|s| b(s)).collect();
            assert_eq!(inclusion_proof(&tree, index, size).unwrap(), path, "{index} in {size}");
            let root = tree_root(&tree, size).unwrap();
            verify_inclusion(&hashes[index as usize], index, size, &path, &root).unwrap();
        }
        let consistency: [(u64, u64, &[&str]); 4] = [
            (
                1,
                8,
                &[
                    "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
                ],
            ),
            (
                6,
                8,
                &[
                    "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                    "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
                ],
            ),
            (2, 5, &["Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=", "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms="]),
            (
                6,
                7,
                &[
                    "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                    "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
                    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
                ],
            ),
        ];
        for (old, new, proof) in consistency {
            let proof: Vec<Digest> = proof.iter().map(|s| b(s)).collect();
            assert_eq!(consistency_proof(&tree, old, new).unwrap(), proof, "{old} to {new}");
            let (old_root, new_root) = (tree_root(&tree, old).unwrap(), tree_root(&tree, new).unwrap());
            verify_consistency(old, new, &proof, &old_root, &new_root).unwrap();
        }
    }

    #[test]
    fn every_proof_of_the_eight_leaf_tree_matches_the_script() {
        let vectors = vectors();
        let hashes: Vec<Digest> = rfc_leaves().iter().map(|l| leaf_hash(l)).collect();
        let tree = Perfect::new(&hashes);
        assert_eq!(vectors.inclusion.len(), 36);
        for (index, size, path) in &vectors.inclusion {
            assert_eq!(&inclusion_proof(&tree, *index, *size).unwrap(), path, "{index} in {size}");
            verify_inclusion(&hashes[*index as usize], *index, *size, path, &vectors.roots[size]).unwrap();
        }
        assert_eq!(vectors.consistency.len(), 36);
        for (old, new, proof) in &vectors.consistency {
            assert_eq!(&consistency_proof(&tree, *old, *new).unwrap(), proof, "{old} to {new}");
            verify_consistency(*old, *new, proof, &vectors.roots[old], &vectors.roots[new]).unwrap();
        }
    }

    /// SHA-256 over every proof for every tree up to `max` leaves, in the
    /// script's order: one number that says two implementations agree on
    /// thousands of proofs.
    fn fingerprint(max: u64) -> Digest {
        let hashes = leaves(max);
        let tree = Perfect::new(&hashes);
        let mut all = Vec::new();
        for size in 1..=max {
            all.extend_from_slice(tree_root(&tree, size).unwrap().as_bytes());
            for index in 0..size {
                for hash in inclusion_proof(&tree, index, size).unwrap() {
                    all.extend_from_slice(hash.as_bytes());
                }
            }
            for old in 1..=size {
                for hash in consistency_proof(&tree, old, size).unwrap() {
                    all.extend_from_slice(hash.as_bytes());
                }
            }
        }
        Digest::of(&all)
    }

    #[test]
    fn every_proof_up_to_70_leaves_matches_the_script() {
        assert_eq!(fingerprint(70), vectors().fingerprints["70"]);
    }

    #[test]
    fn proofs_read_logarithmically_many_subtrees() {
        // The bound the storage design relies on: a proof needs O(log n)
        // stored hashes, in one call, however large the tree.
        let hashes = leaves(1 << 12);
        let tree = Perfect::new(&hashes);
        let mut worst = 0;
        for size in (1..=1u64 << 12).step_by(7).chain([1 << 12, (1 << 12) - 1]) {
            let bound = 2 * (64 - size.leading_zeros() as usize) + 1;
            for index in [0, size / 3, size / 2, size - 1] {
                tree.reads.set(0);
                tree.calls.set(0);
                inclusion_proof(&tree, index, size).unwrap();
                assert_eq!(tree.calls.get(), 1);
                assert!(tree.reads.get() <= bound, "{index} in {size}: {} reads", tree.reads.get());
                worst = worst.max(tree.reads.get());
                tree.reads.set(0);
                consistency_proof(&tree, index + 1, size).unwrap();
                assert!(tree.reads.get() <= bound, "{} to {size}: {} reads", index + 1, tree.reads.get());
            }
        }
        assert!(worst >= 12, "the sizes tried must reach deep trees ({worst})");
    }

    #[test]
    fn edge_cases_are_named() {
        let tree = Perfect::new(&leaves(4));
        assert_eq!(inclusion_proof(&tree, 4, 4), Err(ProveError::IndexOutOfRange { index: 4, size: 4 }));
        assert_eq!(consistency_proof(&tree, 3, 2), Err(ProveError::SizesOutOfOrder { old: 3, new: 2 }));
        assert_eq!(tree_root(&tree, 0), Ok(EMPTY_ROOT));
        let root = tree_root(&tree, 4).unwrap();
        let leaf = leaf_hash(&0u64.to_be_bytes());
        assert_eq!(
            verify_inclusion(&leaf, 0, 0, &[], &EMPTY_ROOT),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        // One leaf: the leaf is the root, with an empty path.
        verify_inclusion(&leaf, 0, 1, &[], &leaf).unwrap();
        assert!(matches!(verify_inclusion(&leaf, 0, 1, &[leaf], &leaf), Err(ProofError::WrongLength { .. })));
        // The empty tree is consistent with any, with an empty proof.
        verify_consistency(0, 4, &[], &EMPTY_ROOT, &root).unwrap();
        assert!(matches!(verify_consistency(0, 4, &[], &root, &root), Err(ProofError::OldRootMismatch { .. })));
        assert!(matches!(verify_consistency(0, 4, &[root], &EMPTY_ROOT, &root), Err(ProofError::WrongLength { .. })));
        // Same size: same root, nothing to prove.
        verify_consistency(4, 4, &[], &root, &root).unwrap();
        assert!(matches!(verify_consistency(4, 4, &[], &root, &leaf), Err(ProofError::RootMismatch { .. })));
        assert!(matches!(verify_consistency(4, 4, &[leaf], &root, &root), Err(ProofError::WrongLength { .. })));
        assert_eq!(verify_consistency(5, 4, &[], &root, &root), Err(ProofError::SizesOutOfOrder { old: 5, new: 4 }));
    }

    /// Which side each hash of a leaf's path is on (true: right).
    fn sides(index: u64, size: u64) -> Vec<bool> {
        inclusion_runs(index, size).iter().map(|run| run.0 > index).collect()
    }

    /// Whether the old root seeds the proof, and which side each further
    /// hash is on (true: right of the old tree): all that the RFC's
    /// verification does with the sizes. `None` when there is nothing to
    /// prove.
    fn consistency_shape(old: u64, new: u64) -> Option<(bool, Vec<bool>)> {
        let runs = consistency_runs(old, new);
        let seeded = old.is_power_of_two();
        let rest = if seeded { &runs[..] } else { runs.get(1..)? };
        (!runs.is_empty()).then(|| (seeded, rest.iter().map(|run| run.0 >= old).collect()))
    }

    /// A tree size from 1 to 2^11 and two sizes/indexes within it.
    fn sizes() -> impl Strategy<Value = (u64, u64, u64)> {
        (1u64..=1 << 11).prop_flat_map(|n| (Just(n), 0..n, 1..=n))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn every_inclusion_proof_verifies_and_no_edit_does((size, index, _) in sizes(), flip in any::<(usize, u8)>()) {
            let hashes = leaves(size);
            let tree = Perfect::new(&hashes);
            let root = tree_root(&tree, size).unwrap();
            prop_assert_eq!(root, mth(&hashes));
            let proof = inclusion_proof(&tree, index, size).unwrap();
            verify_inclusion(&hashes[index as usize], index, size, &proof, &root).unwrap();
            // Any one bit of any hash flipped: refused.
            if !proof.is_empty() {
                let mut edited = proof.clone();
                let at = flip.0 % edited.len();
                let mut bytes = *edited[at].as_bytes();
                bytes[usize::from(flip.1) % 32] ^= 1 << (flip.1 % 8);
                edited[at] = Digest::from_bytes(bytes);
                prop_assert!(verify_inclusion(&hashes[index as usize], index, size, &edited, &root).is_err());
            }
            // Another index or size: refused, unless it puts the path's
            // hashes on the same sides (the proof does not bind the size;
            // the signed checkpoint does, which is why a checked proof
            // always takes its size from the checkpoint).
            let claims = [index ^ 1, index + 1, index.wrapping_sub(1)].map(|i| (i, size))
                .into_iter()
                .chain([size + 1, size - 1, size * 2, size / 2].map(|n| (index, n)));
            for (other_index, other_size) in claims {
                if (other_index, other_size) == (index, size) {
                    continue;
                }
                let verified = verify_inclusion(&hashes[index as usize], other_index, other_size, &proof, &root);
                let same_shape = other_index < other_size && sides(other_index, other_size) == sides(index, size);
                prop_assert_eq!(verified.is_ok(), same_shape, "{} in {} as {} in {}", index, size, other_index, other_size);
            }
            prop_assert!(verify_inclusion(&leaf_hash(b"other"), index, size, &proof, &root).is_err());
            let mut longer = proof.clone();
            longer.push(root);
            prop_assert!(verify_inclusion(&hashes[index as usize], index, size, &longer, &root).is_err());
            if let Some((_, shorter)) = proof.split_last() {
                prop_assert!(verify_inclusion(&hashes[index as usize], index, size, shorter, &root).is_err());
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_no_edit_does((size, _, old) in sizes(), flip in any::<(usize, u8)>()) {
            let hashes = leaves(size);
            let tree = Perfect::new(&hashes);
            let (old_root, new_root) = (mth(&hashes[..old as usize]), mth(&hashes));
            let proof = consistency_proof(&tree, old, size).unwrap();
            verify_consistency(old, size, &proof, &old_root, &new_root).unwrap();
            if !proof.is_empty() {
                let mut edited = proof.clone();
                let at = flip.0 % edited.len();
                let mut bytes = *edited[at].as_bytes();
                bytes[usize::from(flip.1) % 32] ^= 1 << (flip.1 % 8);
                edited[at] = Digest::from_bytes(bytes);
                prop_assert!(verify_consistency(old, size, &edited, &old_root, &new_root).is_err());
            }
            // Other sizes: refused, unless the proof's hashes fall on the
            // same sides (again, the sizes are the checkpoints' to bind).
            let claims = [old + 1, old - 1, old * 2].map(|m| (m, size))
                .into_iter()
                .chain([size + 1, size - 1].map(|n| (old, n)));
            for (other_old, other_new) in claims {
                if (other_old, other_new) == (old, size) || other_old > other_new {
                    continue;
                }
                let verified = verify_consistency(other_old, other_new, &proof, &old_root, &new_root);
                let same_shape = consistency_shape(other_old, other_new).is_some()
                    && consistency_shape(other_old, other_new) == consistency_shape(old, size);
                prop_assert_eq!(verified.is_ok(), same_shape, "{} to {} as {} to {}", old, size, other_old, other_new);
            }
            if old < size {
                prop_assert!(verify_consistency(old, size, &proof, &new_root, &new_root).is_err());
                prop_assert!(verify_consistency(old, size, &proof, &old_root, &old_root).is_err());
            }
        }
    }
}
