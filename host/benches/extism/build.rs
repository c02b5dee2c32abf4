//! Builds the Extism plugin (`plugin/`) to Wasm and embeds it.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", crate_dir.join("plugin").display());
    // The plugin links the ten policy crates, so it is built without LTO.
    let modules = flowgate_wasm_build::build_with(
        &crate_dir.join("Cargo.toml"),
        &["flowgate-extism-plugin".to_owned()],
        Some(&out_dir.join("wasm-target")),
        false,
    )
    .unwrap_or_else(|err| panic!("{err}"));
    std::fs::write(
        out_dir.join("plugin.rs"),
        format!("/// The plugin module.\npub static PLUGIN: &[u8] = include_bytes!({:?});\n", modules[0]),
    )
    .unwrap();
}
