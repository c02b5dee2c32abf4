//! `flowgate build`: policy crates to bundles, each checked against its own
//! test vectors before it is written to `OUT/<name>/{manifest.toml,policy.wasm}`.
//!
//! A directory without a manifest (such as a helper crate matched by
//! `policies/*`) is skipped with a note; a crate whose vectors fail is
//! reported and not written, and the others are still built.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flowgate::{Bundle, MANIFEST_FILE, MODULE_FILE, Manifest};

use crate::{EXIT_ERROR, EXIT_INVALID, EXIT_OK};

pub fn run(out: &Path, target_dir: Option<&Path>, crates: &[PathBuf], stderr: &mut impl Write) -> anyhow::Result<u8> {
    let (mut built, mut failed) = (0, 0);
    for dir in crates {
        let manifest_path = dir.join(MANIFEST_FILE);
        if !manifest_path.exists() {
            writeln!(
                stderr,
                "note: skipping `{}`: it has no {MANIFEST_FILE}, so it is not a policy crate",
                dir.display()
            )?;
            continue;
        }
        let manifest = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("cannot read `{}`", manifest_path.display()))?;
        // Checked before the (slow) build: a misspelt word in a vector or a
        // scope is told in milliseconds, not after compiling.
        Manifest::parse(&manifest_path.display().to_string(), &manifest)?;
        let package = package_name(dir)?;
        let modules = flowgate_wasm_build::build(&dir.join("Cargo.toml"), &[package], target_dir)?;
        let wasm = std::fs::read(&modules[0]).with_context(|| format!("cannot read `{}`", modules[0].display()))?;
        let mut bundle = Bundle::from_bytes(&dir.display().to_string(), &manifest, wasm)?;
        // Errors about the module name the file cargo wrote, not a
        // `policy.wasm` that does not exist yet.
        bundle.origin = modules[0].display().to_string();
        let report = flowgate::run_vectors(&bundle)?;
        if !super::test::write_report(stderr, &bundle, &report, false)? {
            writeln!(
                stderr,
                "not written: `{}` fails its own vectors",
                flowgate::escape(&dir.display().to_string(), 4096)
            )?;
            failed += 1;
            continue;
        }
        let target = out.join(&bundle.manifest.name);
        std::fs::create_dir_all(&target).with_context(|| format!("cannot create `{}`", target.display()))?;
        std::fs::write(target.join(MANIFEST_FILE), &manifest)?;
        std::fs::write(target.join(MODULE_FILE), &bundle.wasm)?;
        warn_stale_signatures(&target, stderr)?;
        writeln!(
            stderr,
            "built {} {} into `{}` ({} bytes, {} vectors pass)",
            bundle.manifest.name,
            bundle.manifest.version,
            target.display(),
            bundle.wasm.len(),
            report.results.len()
        )?;
        built += 1;
    }
    if built + failed == 0 {
        writeln!(stderr, "error: no policy crate among the directories given (none has a {MANIFEST_FILE})")?;
        return Ok(EXIT_ERROR);
    }
    Ok(if failed == 0 { EXIT_OK } else { EXIT_INVALID })
}

/// Says when the bundle just written keeps a `signatures.toml` of an
/// earlier build, whose signatures no longer cover its files.
fn warn_stale_signatures(target: &Path, stderr: &mut impl Write) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(target.join(flowgate::SIGNATURES_FILE)).is_err() {
        return Ok(());
    }
    let stale = Bundle::from_dir(target)?.stale_signatures();
    if !stale.is_empty() {
        let keys: Vec<String> = stale.iter().map(ToString::to_string).collect();
        writeln!(
            stderr,
            "note: `{}` holds signatures of an earlier build ({}): they do not cover the module just built, \
             so `flowgate verify` refuses it; sign it again: `flowgate sign --key ID.key {}`",
            target.join(flowgate::SIGNATURES_FILE).display(),
            keys.join(", "),
            target.display()
        )?;
    }
    Ok(())
}

/// The `package.name` of the crate in `dir`.
fn package_name(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let cargo: toml::Table =
        toml::from_str(&text).with_context(|| format!("`{}` is not valid TOML", path.display()))?;
    cargo
        .get("package")
        .and_then(|package| package.get("name"))
        .and_then(|name| name.as_str())
        .map(str::to_owned)
        .with_context(|| format!("`{}` has no `package.name`", path.display()))
}
