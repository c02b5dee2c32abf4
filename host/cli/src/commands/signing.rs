//! `flowgate key new` and `flowgate sign`: a regulator's side of signing.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flowgate::{Bundle, SecretKey};

use crate::EXIT_OK;

/// Writes a new key pair `ID.key` and `ID.pub` into `out`.
pub fn new_key(id: &str, out: &Path, stderr: &mut impl Write) -> anyhow::Result<u8> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let key = SecretKey::generate()?;
    let (secret, public) = key.write_pair(out, id)?;
    writeln!(stderr, "wrote `{}` (secret: keep it private) and `{}`:", secret.display(), public.display())?;
    writeln!(stderr, "{}", key.public())?;
    Ok(EXIT_OK)
}

/// Signs each bundle directory with the key in `key`.
pub fn sign(key: &Path, bundles: &[PathBuf], mut stdout: impl Write) -> anyhow::Result<u8> {
    let secret = SecretKey::read(key)?;
    for dir in bundles {
        let bundle = Bundle::sign_dir(dir, &secret)?;
        let count = bundle.signatures.len();
        writeln!(
            stdout,
            "signed {} {} in `{}` with {} ({count} signature{})",
            bundle.manifest.name,
            bundle.manifest.version,
            dir.display(),
            secret.public(),
            if count == 1 { "" } else { "s" }
        )?;
    }
    Ok(EXIT_OK)
}
