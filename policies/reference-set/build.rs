//! Builds every reference policy crate for wasm32 and embeds the modules.

use std::path::{Path, PathBuf};

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = crate_dir.join("../..").canonicalize().unwrap();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    let policies = policy_crates(&workspace.join("policies"));
    println!("cargo:rerun-if-changed={}", workspace.join("sdk/src").display());
    for dir in &policies {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    let names: Vec<String> =
        policies.iter().map(|dir| dir.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let modules = flowgate_wasm_build::build(&workspace.join("Cargo.toml"), &names, Some(&out_dir.join("wasm-target")))
        .unwrap_or_else(|err| panic!("{err}"));
    let entries: Vec<_> = names
        .into_iter()
        .zip(&policies)
        .zip(modules)
        .map(|((name, dir), wasm)| (name, dir.join("manifest.toml"), wasm))
        .collect();
    flowgate_wasm_build::write_table(&out_dir.join("bundles.rs"), "BUNDLES", &entries).unwrap();
}

/// The policy crates: subdirectories of `policies/` with a manifest, sorted.
fn policy_crates(policies: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(policies)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("manifest.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}
