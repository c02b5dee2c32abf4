//! The tests live in `all/`, one module per concern, and the adversarial
//! guests in `fixtures/`. This crate also compiles and runs the README's
//! examples, so the README cannot drift from the code:
#![doc = include_str!("../README.md")]
