//! Builds policy crates to WebAssembly modules.
//!
//! Used by the build scripts that embed policies (the reference set, the
//! test fixtures) and by `flowgate build`, so every module is built the same
//! way: `--release` for `wasm32-unknown-unknown` with LTO, one codegen unit
//! and `panic = "abort"` (small modules; a panic is a trap that the host
//! reports as a fault).
//!
//! ```no_run
//! // build.rs of a crate that embeds a policy
//! let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
//! let modules = flowgate_wasm_build::build(
//!     std::path::Path::new("../Cargo.toml"),
//!     &["lawful-basis".to_owned()],
//!     Some(&out.join("wasm-target")),
//! ).unwrap();
//! println!("built {}", modules[0].display());
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target policies are built for.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// Why a policy crate could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A tool (cargo, rustc) could not be started.
    #[error("cannot run {tool}")]
    CannotRun {
        /// The tool.
        tool: &'static str,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// The wasm32 target is missing and rustup could not add it.
    #[error("the {TARGET} target is missing and `rustup target add {TARGET}` failed")]
    TargetMissing,
    /// cargo reported a failed build; its diagnostics went to stderr.
    #[error("cargo could not build {packages:?} for {TARGET}")]
    Failed {
        /// The packages asked for.
        packages: Vec<String>,
    },
    /// The build succeeded but left no `.wasm` for a package.
    #[error("`{package}` produced no .wasm; is it a `cdylib` crate?")]
    NoModule {
        /// The package.
        package: String,
    },
}

/// Builds `packages` of the workspace or crate at `manifest_path` and
/// returns the path of each one's module, in the order given.
///
/// `target_dir` gives the build its own directory; a build script must pass
/// one, or it would wait forever on the lock of the build that runs it.
pub fn build(manifest_path: &Path, packages: &[String], target_dir: Option<&Path>) -> Result<Vec<PathBuf>, BuildError> {
    build_with(manifest_path, packages, target_dir, true)
}

/// [`build`], choosing whether to use link-time optimisation. A cdylib that
/// links other cdylib-and-rlib policy crates as dependencies must go without:
/// rustc cannot load their bitcode for LTO.
pub fn build_with(
    manifest_path: &Path,
    packages: &[String],
    target_dir: Option<&Path>,
    lto: bool,
) -> Result<Vec<PathBuf>, BuildError> {
    ensure_target()?;
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["build", "--release", "--lib", "--target", TARGET, "--message-format=json-render-diagnostics"])
        .args(["--config", &format!("profile.release.lto={lto}"), "--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.panic=\"abort\""])
        .arg("--manifest-path")
        .arg(manifest_path)
        .stderr(Stdio::inherit());
    if let Some(dir) = target_dir {
        cargo.arg("--target-dir").arg(dir);
    }
    for package in packages {
        cargo.args(["-p", package]);
    }
    // A build script inherits flags meant for the host target, not for wasm32.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER"]
    {
        cargo.env_remove(var);
    }
    let output = cargo.output().map_err(|source| BuildError::CannotRun { tool: "cargo", source })?;
    if !output.status.success() {
        return Err(BuildError::Failed { packages: packages.to_vec() });
    }
    let artifacts = wasm_artifacts(&output.stdout);
    packages
        .iter()
        .map(|package| {
            let lib = package.replace('-', "_");
            artifacts
                .iter()
                .find(|(name, _)| *name == lib)
                .map(|(_, path)| path.clone())
                .ok_or_else(|| BuildError::NoModule { package: package.clone() })
        })
        .collect()
}

/// `(library name, .wasm path)` of every artifact cargo reported.
fn wasm_artifacts(messages: &[u8]) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for line in messages.split(|&b| b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let name = message["target"]["name"].as_str().unwrap_or_default().replace('-', "_");
        for file in message["filenames"].as_array().into_iter().flatten().filter_map(|f| f.as_str()) {
            if file.ends_with(".wasm") {
                found.push((name.clone(), PathBuf::from(file)));
            }
        }
    }
    found
}

/// Installs the wasm32 target with rustup if the toolchain lacks it, so a
/// fresh machine needs no manual step.
pub fn ensure_target() -> Result<(), BuildError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|source| BuildError::CannotRun { tool: "rustc", source })?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        return Ok(());
    }
    eprintln!("installing the {TARGET} target with rustup");
    match Command::new("rustup").args(["target", "add", TARGET]).status() {
        Ok(status) if status.success() => Ok(()),
        _ => Err(BuildError::TargetMissing),
    }
}

/// Writes `OUT_DIR/<file>` with a table of embedded modules, for build scripts:
/// `pub static <NAME>: [(&str, &str, &[u8]); N]` of `(name, manifest, wasm)`.
pub fn write_table(file: &Path, name: &str, entries: &[(String, PathBuf, PathBuf)]) -> std::io::Result<()> {
    let mut table = format!(
        "/// `(name, manifest, wasm)`, in name order.\npub static {name}: [(&str, &str, &[u8]); {}] = [\n",
        entries.len()
    );
    for (entry, manifest, wasm) in entries {
        table.push_str(&format!("    ({entry:?}, include_str!({manifest:?}), include_bytes!({wasm:?})),\n"));
    }
    table.push_str("];\n");
    std::fs::write(file, table)
}
