//! Builds the Rust test fixtures (policy crates under `fixtures/`) to Wasm.

use std::path::PathBuf;

const FIXTURES: [&str; 3] = ["panicking-policy", "picky-policy", "stateful-policy"];

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for fixture in FIXTURES {
        println!("cargo:rerun-if-changed={}", crate_dir.join("fixtures").join(fixture).display());
    }
    println!("cargo:rerun-if-changed={}", crate_dir.join("../sdk/src").display());
    let names: Vec<String> = FIXTURES.iter().map(|name| name.to_string()).collect();
    let modules =
        flowgate_wasm_build::build(&crate_dir.join("../Cargo.toml"), &names, Some(&out_dir.join("wasm-target")))
            .unwrap_or_else(|err| panic!("{err}"));
    let mut table = String::new();
    for (name, wasm) in names.iter().zip(modules) {
        let constant = name.to_uppercase().replace('-', "_");
        table.push_str(&format!(
            "/// The `{name}` fixture, built to Wasm.\npub static {constant}: &[u8] = include_bytes!({wasm:?});\n"
        ));
    }
    std::fs::write(out_dir.join("fixtures.rs"), table).unwrap();
}
