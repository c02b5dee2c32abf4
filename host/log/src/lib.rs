//! Flowgate's decision log as a transparency log (crate doc written below).

pub mod digest;
pub mod frontier;
mod hex;
pub mod merkle;
pub mod tiles;

pub use digest::Digest;
