//! Builds every reference policy crate for wasm32 and embeds the modules.
//!
//! Runs a nested `cargo build` with its own target directory (so it never
//! waits on the outer build's lock) and the `wasm` profile. If the wasm32
//! target is missing, it asks rustup to add it: a fresh machine needs no
//! manual set-up.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = crate_dir.join("../..").canonicalize().unwrap();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    let policies = policy_crates(&workspace.join("policies"));
    println!("cargo:rerun-if-changed={}", workspace.join("sdk").display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    for dir in &policies {
        println!("cargo:rerun-if-changed={}", dir.display());
    }

    ensure_wasm_target();
    let target_dir = out_dir.join("wasm-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--profile",
            "wasm",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for dir in &policies {
        build.args(["-p", &name_of(dir)]);
    }
    // The outer build's flags are for the host target, not for wasm32.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        build.env_remove(var);
    }
    let status = build.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the reference policies for {TARGET} failed"
    );

    let mut table =
        String::from("/// The reference bundles: (name, manifest, wasm), in name order.\n");
    table.push_str(&format!(
        "pub static BUNDLES: [(&str, &str, &[u8]); {}] = [\n",
        policies.len()
    ));
    for dir in &policies {
        let name = name_of(dir);
        let wasm = target_dir
            .join(TARGET)
            .join("wasm")
            .join(format!("{}.wasm", name.replace('-', "_")));
        table.push_str(&format!(
            "    ({name:?}, include_str!({:?}), include_bytes!({:?})),\n",
            dir.join("manifest.toml"),
            wasm
        ));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("bundles.rs"), table).unwrap();
}

/// The policy crates: subdirectories of `policies/` with a manifest.
fn policy_crates(policies: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(policies)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("manifest.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn name_of(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc runs");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    assert!(
        matches!(added, Ok(status) if status.success()),
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed"
    );
}
