//! Flowgate's decision log as a transparency log (crate doc written below).

pub mod checkpoint;
pub mod cosignature;
pub mod digest;
pub mod frontier;
mod hex;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod tiles;

pub use digest::Digest;
