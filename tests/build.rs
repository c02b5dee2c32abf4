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
    let mut built: Vec<(String, PathBuf)> = names.iter().cloned().zip(modules).collect();
    // The vocabulary fixtures: their own workspace, one build each, so the
    // SDK's test-only vocabulary features never meet (tests/all/vocabulary.rs).
    let vocabulary = crate_dir.join("fixtures/vocabulary");
    println!("cargo:rerun-if-changed={}", vocabulary.display());
    for name in ["older-vocabulary-policy", "newer-vocabulary-policy"] {
        let modules = flowgate_wasm_build::build(
            &vocabulary.join("Cargo.toml"),
            &[name.to_owned()],
            Some(&out_dir.join("wasm-target-vocabulary")),
        )
        .unwrap_or_else(|err| panic!("{err}"));
        built.push((name.to_owned(), modules.into_iter().next().expect("one module")));
    }
    let mut table = String::new();
    for (name, wasm) in &built {
        let constant = name.to_uppercase().replace('-', "_");
        table.push_str(&format!(
            "/// The `{name}` fixture, built to Wasm.\npub static {constant}: &[u8] = include_bytes!({wasm:?});\n"
        ));
    }
    std::fs::write(out_dir.join("fixtures.rs"), table).unwrap();
}
