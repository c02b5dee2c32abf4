//! `flowgate build`: policy crates to bundles, each checked against its own
//! test vectors before it is written to `OUT/<name>/{manifest.toml,policy.wasm}`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flowgate::{Bundle, MANIFEST_FILE, MODULE_FILE};

use crate::EXIT_OK;

pub fn run(out: &Path, target_dir: Option<&Path>, crates: &[PathBuf], stderr: &mut impl Write) -> anyhow::Result<u8> {
    for dir in crates {
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("cannot read `{}`", manifest_path.display()))?;
        let package = package_name(dir)?;
        let modules = flowgate_wasm_build::build(&dir.join("Cargo.toml"), &[package], target_dir)?;
        let wasm = std::fs::read(&modules[0]).with_context(|| format!("cannot read `{}`", modules[0].display()))?;
        let bundle = Bundle::from_bytes(&dir.display().to_string(), &manifest, wasm)?;
        let passed = flowgate::check_vectors(&bundle)?;
        let target = out.join(&bundle.manifest.name);
        std::fs::create_dir_all(&target).with_context(|| format!("cannot create `{}`", target.display()))?;
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
