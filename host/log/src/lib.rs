//! Flowgate's decision log as a transparency log (crate doc written below).

pub mod checkpoint;
pub mod cosignature;
pub mod digest;
pub mod entry;
pub mod frontier;
mod hex;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod policy_set;
pub mod proof;
pub mod receipt;
pub mod tiles;
pub mod verify;
mod wire;
pub mod witness;

pub use digest::Digest;
pub use wire::WireError;
