//! The tests live in `all/`, one module per concern, and the adversarial
//! guests in `fixtures/`. This crate also compiles and runs the README's
//! examples, so the README cannot drift from the code:
#![doc = include_str!("../README.md")]

/// Rust policy crates under `fixtures/`, built to Wasm by the build script.
pub mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}
