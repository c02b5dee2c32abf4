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
//! - receipts are a tenth of their old size (about 80 bytes on the
//!   reference set), because what every receipt repeated is said once in
//!   a [`policy_set`] entry and digests are binary ([`receipt`]).
//!
//! It is a crate of its own, with no WebAssembly runtime and no async
//! runtime, so that a regulator's verifying tool links this and little else
//! (SHA-256, Ed25519, base64, serde). The host writes through it, and
//! shares its primitives: the [`fs`] module every file goes through, the
//! [`Digest`], and the Ed25519 [`keys`].
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
//! | [`entry`], [`receipt`], [`policy_set`] | the leaves: compact, versioned, strict (`docs/receipts.md`) |
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
//! # The log on disk
//!
//! [`store`] keeps a log in one directory of append-only files (entries,
//! their offsets, every eighth level of the tree, two checkpoint slots and
//! a history of checkpoints, kept records), writes it in groups that each
//! end in a signed checkpoint ([`store::Appender`]), checks it against its
//! last checkpoint in bounded time before appending, reads entries and
//! proofs with O(log n) reads ([`store::Stored`]), and verifies a whole
//! directory on every core in bounded memory ([`store::verify`]). The host
//! (`flowgate`'s `log` folder) turns decisions into entries and writes
//! them through it, with group commit.
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
//! why witnesses should cosign often and proofs can name a cosigned
//! checkpoint.
//!
//! The formats are specified in `docs/receipts.md` (with `FORMAT.md` and
//! `testdata/` beside this crate: vectors made from that page alone).

#![deny(unsafe_code)]

pub mod checkpoint;
pub mod cosignature;
pub mod digest;
pub mod entry;
pub mod frontier;
pub mod fs;
pub mod hex;
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
