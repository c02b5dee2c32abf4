//! Flowgate's decision log as a transparency log: the receipts a host
//! writes, the proofs it hands out, and everything needed to check them.
//!
//! Every decision Flowgate makes leaves a receipt. This crate makes the
//! log of those receipts a transparency log, as Certificate Transparency,
//! Go's checksum database, Sigsum and Trillian Tessera are: an RFC 9162
//! Merkle tree over the entries, whose root the log key signs as a C2SP
//! checkpoint, so that
//! - one decision is provable to the person it concerns, with a few hundred
//!   bytes and no access to the log ([`proof::InclusionProof`]);
//! - a checkpoint a regulator collected is checked against a newer one
//!   with a proof alone ([`proof::ConsistencyProof`]), and a regulator
//!   running a [`witness`] cosigns only a log that never forked or shrank;
//! - receipts are a twelfth of their old size (about 72 bytes on the
//!   reference set), because what every receipt repeated is said once in
//!   a [`policy_set`] entry and digests are binary ([`receipt`]).
//!
//! It is a crate of its own, with no WebAssembly runtime and no async
//! runtime, so that a regulator's verifying tool links this and little else
//! (SHA-256, Ed25519, base64, serde). The host (stage B) writes through it.
//!
//! # Modules
//!
//! | module | what |
//! |---|---|
//! | [`digest`] | SHA-256 [`Digest`], hex and base64 forms |
//! | [`fs`] | every file read or created: bounded, never through a link, written whole |
//! | [`keys`] | Ed25519 keys and Flowgate's key files (`ID.key`, `ID.pub`) |
//! | [`merkle`] | RFC 9162 hashing, roots, inclusion and consistency proofs, from a [`merkle::HashReader`] |
//! | [`frontier`] | the tree's right edge: appending leaves, roots, joining chunks |
//! | [`tiles`] | which hashes are stored (every eighth level) and how others are recomputed |
//! | [`note`] | C2SP signed notes, verifier keys |
//! | [`checkpoint`] | C2SP tlog checkpoints, equivocation |
//! | [`cosignature`] | C2SP tlog cosignatures (`cosignature/v1`) |
//! | [`witness`], [`witness_state`] | the witness's rules, and its durable memory |
//! | [`entry`], [`receipt`], [`policy_set`] | the leaves: compact, versioned, strict (`FORMAT.md`) |
//! | [`proof`] | the proof documents `audit prove` / `audit consistency` print, and their checks |
//! | [`verify`] | whole-log verification in aligned chunks, on every core |
//! | [`store`] | the log on disk: appending, opening checked, reading, proving, verifying a directory |
//!
//! # How one decision is proved
//!
//! The host appends the receipt's bytes as leaf `i`; its hash
//! `SHA-256(0x00 || bytes)` joins the tree; the group commit that holds it
//! ends with a checkpoint of the new size, signed. `flowgate audit prove
//! LOG --seq i` reads the entry, reads O(log n) stored hashes, and prints
//! the entry, its audit path and the latest checkpoint (cosigned, when a
//! witness has cosigned it). Anyone with the log's public key checks it
//! offline: the signature, the path from the leaf to the signed root, and
//! the entry's own statement of its index ([`proof::InclusionProof::check`]).
//! To show what the receipt says in words, the same is done for the
//! policy-set entry it names ([`receipt::Receipt::explain`]).
//!
//! # Stage B: the log on disk
//!
//! The design the host's writer, `flowgate audit` and the storage follow
//! once this crate replaces `host/src/{receipt,checkpoint,segments,
//! decision_log,audit,archive}.rs`.
//!
//! ## Files
//!
//! ```text
//! DIR/entries             every entry, in order: a uint length (LEB128) then its bytes
//! DIR/entries.idx         the byte offset of entry 256·k in `entries`, u64 big-endian, for every k
//! DIR/tree/level-00       the leaf hashes, 32 bytes each, in leaf order
//! DIR/tree/level-08       the hashes of the perfect subtrees of 256 leaves, in order
//! DIR/tree/level-16 …     and of 65,536 leaves, … (only the stored levels, see `tiles`)
//! DIR/checkpoint.0        the newest signed checkpoint, in one of two slots written
//! DIR/checkpoint.1          in turn (a torn write spoils one; open takes the larger valid one)
//! DIR/checkpoints         every minute's checkpoint, appended: what witnesses and auditors fetch
//! DIR/flows/run-<k>       the `--flow` index of entries [k·2^16, (k+1)·2^16): sorted
//!                         (first 8 bytes of SHA-256(platform 0x00 flow), u64 index) pairs
//! DIR/records/records-<k> kept records of those entries (dir 0700, files 0600): one line
//!                         each, `{"index":N,"record":{...}}`, indexes ascending
//! DIR/lock                held by the one writing process
//! ```
//!
//! Per receipt on disk: the entry (≈72 bytes) and its length (1), a leaf
//! hash (32, plus 1/255 of that for the levels above), the flow index (16)
//! and the offsets (1/32): about 122 bytes, against a target of 256.
//! `audit prove --seq N` reads `entries.idx` (one u64), at most 256
//! entries from there, and at most `2·log2 n` runs of ≤ 256 stored hashes:
//! O(log n) reads of a few kilobytes, whatever the size. `--flow ID` binary
//! searches each closed run (16 bytes an entry, `log2(65536)` reads a
//! run) and scans the open one (at most 65,536 entries): documented as
//! such.
//!
//! ## Writing: group commit
//!
//! As today (`decision_log.rs`), threads hand their decisions to one
//! in-memory queue under a short lock, and one of them writes the group.
//! Under the lock, each receipt gets its index and time (the time is
//! `max(clock, previous time)`, so the log never goes back even when the
//! clock does) and is encoded (0.36 µs with its leaf hash and tree
//! append, measured by `benches/log.rs`). The writer then, per group:
//! 1. writes the entries (one `write`), their offsets when a multiple of
//!    256 is crossed, the leaf hashes and any completed stored-level
//!    hashes ([`frontier::Frontier::push`] reports them), and the records;
//! 2. signs a checkpoint of the new size (the frontier's root: 21 µs) and
//!    writes it to the older slot;
//! 3. with `fsync`, `fdatasync`s the entries, records and slot files (the
//!    tree files are synced each minute: open rebuilds a lagging tree from
//!    the entries, which are the truth);
//! 4. returns the group's decisions.
//!
//! A policy set is appended (as its own entry) before the first receipt it
//! decides, whenever the host's set id changes. A failed write cuts every
//! file back to the previous checkpoint's size and the group's decisions
//! fail closed, as today.
//!
//! ## Opening: the stored tree against the last checkpoint, in bounded time
//!
//! 1. Read both checkpoint slots; keep the valid one with the larger size
//!    signed by the log key. None valid while entries exist: refuse.
//! 2. The entries file must hold at least that many entries, and the stored
//!    tree too once rebuilt (below): fewer is a truncation under a signed
//!    checkpoint: refuse, never append.
//! 3. Load the frontier at the checkpoint's size from the stored levels
//!    ([`frontier::Frontier::load`], one hash per set bit of the size) and
//!    compare its root with the checkpoint's. Different: refuse.
//! 4. Entries after the checkpoint were never acknowledged (a group's
//!    checkpoint is written before its decisions return): cut them, report
//!    how many, and never sign them. This is what stops a key-less edit of
//!    the newest receipts from being signed by the next start.
//! 5. Re-hash the last 256 entries up to the checkpoint and compare with
//!    `level-00`: where the next appends join, entries and tree agree.
//!
//! Work: O(log n) hash reads and at most 256 + (a lagging tree's tail)
//! leaf hashes, whatever the log's size. Damage deeper inside is not read
//! at open, and needs not be: new roots are computed from the frontier,
//! which matched the signed root, so no later checkpoint can commit to an
//! edited older entry; that entry fails its own proof (`audit prove`
//! checks what it prints before printing it), and `audit verify` names it.
//!
//! ## `flowgate check --log` at 0.8 of log-off
//!
//! `check` already decides 1,024-record parts on both cores with the
//! writes overlapping (today 0.97 of log-off with `fsync`). Per receipt the
//! new log adds ≈0.4 µs of CPU (was ≈3 µs: JSON, hex, 0.8 KB), and per
//! part one signature (21 µs) and one `fdatasync`, taken by the writer
//! while the other core decides: well inside 0.8. The library's batch of
//! 256 with `buffered`: ≈0.77 ms to decide, ≈0.13 ms to log: ≈0.85. With
//! `fsync` a sequential caller waits for the disk's `fdatasync` latency
//! once per batch: 1.6 to 2.0 ms on this machine's disk, so 0.5 needs a
//! faster disk than this one (or writing into preallocated files, which
//! measured 18 % faster here): to be measured in stage B.
//!
//! ## `audit verify`: every core, bounded memory
//!
//! The entries are cut into chunks of 2^16 (aligned, so each is a perfect
//! subtree), verified by one worker each with [`verify::ChunkVerifier`]
//! (decode strictly, index, time order, policy-set references, leaf hash,
//! fold, and each stored-level hash compared as it completes), and joined
//! in order by [`verify::Combiner`]. Memory: one entry and a 64-hash edge
//! per worker, a bounded queue of chunk reports, the first 64 problems.
//! One core verifies 1.7 million receipts/s (`benches/log.rs`,
//! `verify_chunk`). The root is then compared with the newest checkpoint,
//! every earlier checkpoint in `checkpoints` (and every collected one)
//! with the stored tree, now known good; two of one size with different
//! roots are an equivocation.
//!
//! ## What no log can detect without a collected checkpoint or a witness
//!
//! The platform holds the log key. It can rewrite its log from any point,
//! or cut its newest entries, and sign a checkpoint of what is left: the
//! result is a valid log, and nothing inside it can tell. Only a
//! checkpoint someone else kept shows it: a collected checkpoint (`audit
//! verify --checkpoints`, `audit consistency --from`) or a witness
//! cosignature of a larger or different tree. Entries appended after the
//! last checkpoint that left the platform can be dropped unseen; that is
//! why witnesses should cosign often and proofs name their cosigned
//! checkpoint.
//!
//! ## What moves from the host
//!
//! `host/src/digest.rs` becomes [`Digest`] (same bytes, same `Display`,
//! plus base64); `host/src/keys.rs` becomes [`keys`] (same files, same
//! text forms; the host wraps [`keys::KeyError`] in its `Error`); `hex.rs`
//! stays for the host's other users. `receipt.rs`, `checkpoint.rs`,
//! `segments.rs` and the chain in `decision_log.rs` are replaced by this
//! crate and a storage module on the files above; `audit.rs`'s statistics
//! and replay read entries through [`entry::Entry`]. The record digest
//! stays in the host (it needs the SDK's wire encoding), feeding
//! [`receipt::Receipt::record`].

#![deny(unsafe_code)]

pub mod checkpoint;
pub mod cosignature;
pub mod digest;
pub mod entry;
pub mod frontier;
pub mod fs;
mod hex;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod policy_set;
pub mod proof;
pub mod receipt;
pub mod store;
pub mod tiles;
pub mod verify;
mod wire;
pub mod witness;
pub mod witness_state;

pub use digest::Digest;
pub use wire::WireError;
