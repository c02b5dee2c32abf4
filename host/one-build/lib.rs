//! No code: see `Cargo.toml`. This crate exists so that the README's two
//! commands, `cargo run -p flowgate-cli` and `cargo test --workspace`,
//! resolve the same features for every dependency they share, and so
//! compile each one once.
