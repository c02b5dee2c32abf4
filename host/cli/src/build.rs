//! `flowgate build`: policy crates to bundles, each checked against its own
//! test vectors before it is written.
//!
//! Runs `cargo build --release --target wasm32-unknown-unknown` with LTO and
//! `panic = "abort"` (small modules; a panic is a trap the host reports),
//! finds the module among cargo's artifacts, and writes
//! `OUT/<name>/manifest.toml` and `OUT/<name>/policy.wasm`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use flowgate::{Bundle, MANIFEST_FILE, MODULE_FILE};

use crate::EXIT_OK;

const TARGET: &str = "wasm32-unknown-unknown";

pub fn run(out: &Path, crates: &[PathBuf], stderr: &mut impl Write) -> anyhow::Result<u8> {
    for dir in crates {
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("cannot read `{}`", manifest_path.display()))?;
        let wasm_path = compile(dir)?;
        let wasm = std::fs::read(&wasm_path)
            .with_context(|| format!("cannot read `{}`", wasm_path.display()))?;
        let bundle = Bundle::from_bytes(&dir.display().to_string(), &manifest, wasm)?;
        let passed = flowgate::check_vectors(&bundle)?;
        let target = out.join(&bundle.manifest.name);
        std::fs::create_dir_all(&target)
            .with_context(|| format!("cannot create `{}`", target.display()))?;
        std::fs::write(target.join(MANIFEST_FILE), &manifest)?;
        std::fs::write(target.join(MODULE_FILE), &bundle.wasm)?;
        writeln!(
            stderr,
            "built {} {} into `{}` ({} bytes, {passed} vectors pass)",
            bundle.manifest.name,
            bundle.manifest.version,
            target.display(),
            bundle.wasm.len()
        )?;
    }
    Ok(EXIT_OK)
}

/// Builds the crate in `dir` for wasm32 and returns the module's path.
fn compile(dir: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--lib",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .args([
            "--config",
            "profile.release.lto=true",
            "--config",
            "profile.release.codegen-units=1",
        ])
        .args(["--config", "profile.release.panic=\"abort\""])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!("cargo could not build `{}` for {TARGET}", dir.display());
    }
    // The last artifact with a .wasm file is the crate's own cdylib.
    let mut module = None;
    for line in output.stdout.split(|&b| b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        if let Some(files) = message["filenames"].as_array() {
            for file in files.iter().filter_map(|f| f.as_str()) {
                if file.ends_with(".wasm") {
                    module = Some(PathBuf::from(file));
                }
            }
        }
    }
    module.with_context(|| {
        format!(
            "`{}` produced no .wasm; is it a cdylib crate?",
            dir.display()
        )
    })
}
