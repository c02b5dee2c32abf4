//! `flowgate reference --out DIR`: the ten reference policies embedded in
//! this binary, written out as bundle directories, so that a policies
//! directory can hold them next to one's own without building them.
//!
//! They are written as the binary holds them: unsigned. A platform that
//! verifies bundles signs them with its regulators' keys (`flowgate sign`)
//! or runs them with `--allow-unsigned`; the command says so.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use flowgate::{MANIFEST_FILE, MODULE_FILE};

use crate::EXIT_OK;

/// Writes each embedded reference bundle to `out/<name>/`, refusing to
/// replace a directory that is there already.
pub fn run(out: &Path, stderr: &mut impl Write) -> anyhow::Result<u8> {
    let bundles: Vec<_> = flowgate_reference_set::bundles().collect();
    for (name, _, _) in &bundles {
        let dir = out.join(name);
        anyhow::ensure!(
            std::fs::symlink_metadata(&dir).is_err(),
            "`{}` exists already; `flowgate reference` writes only new bundle directories",
            dir.display()
        );
    }
    for (name, manifest, wasm) in &bundles {
        let dir = out.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        for (file, bytes) in [(MANIFEST_FILE, manifest.as_bytes()), (MODULE_FILE, *wasm)] {
            let path = dir.join(file);
            std::fs::write(&path, bytes).with_context(|| format!("cannot write `{}`", path.display()))?;
        }
    }
    let names: Vec<&str> = bundles.iter().map(|(name, _, _)| *name).collect();
    writeln!(
        stderr,
        "wrote {} reference bundles, unsigned, to `{}`: {}",
        bundles.len(),
        out.display(),
        names.join(", ")
    )?;
    writeln!(
        stderr,
        "run them with `--policies {dir} --allow-unsigned`, or sign each (`flowgate sign --key ID.key {dir}/*`) \
         and grant your key in the trust file",
        dir = out.display()
    )?;
    Ok(EXIT_OK)
}
