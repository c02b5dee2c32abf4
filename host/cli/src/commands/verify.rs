//! `flowgate verify`: what a platform runs before it trusts a directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flowgate::{Bundle, TrustPolicy};

use crate::{EXIT_INVALID, EXIT_OK};

/// Prints each bundle's signers and verdict; exit 0 if all verify, 1 if
/// not. With `strict`, a trust file entry that names none of the bundles
/// (a `[minimum]` or `required` name, a grant's pattern) is refused too.
pub fn run(trust: &Path, bundles: &[PathBuf], strict: bool, mut stdout: impl Write) -> anyhow::Result<u8> {
    let trust = TrustPolicy::from_file(trust).context("reading the trust file")?;
    let mut refused = 0;
    let mut names = Vec::new();
    for dir in bundles {
        let verdict = Bundle::from_dir(dir)
            .map_err(|err| flowgate::escape(&format!("{:#}", anyhow::Error::from(err)), 4096))
            .and_then(|bundle| {
                names.push(bundle.manifest.name.clone());
                let name = format!("{} {}", bundle.manifest.name, bundle.manifest.version);
                trust.verify(&bundle, None).map(|signers| (name, signers)).map_err(|err| err.to_string())
            });
        // Every part of a line that comes from outside (the directory's
        // name, the manifest, the trust file) is escaped: a name with a
        // line break or separator cannot forge an `ok` line.
        let dir = flowgate::escape(&dir.display().to_string(), 4096);
        match verdict {
            Ok((name, signers)) => {
                let signers: Vec<String> = signers.iter().map(|s| format!("{} ({})", s.id, s.holder)).collect();
                let (name, signers) = (flowgate::escape(&name, 512), flowgate::escape(&signers.join(", "), 4096));
                writeln!(stdout, "ok      {name} `{dir}`: signed by {signers}")?;
            }
            Err(reason) => {
                refused += 1;
                writeln!(stdout, "REFUSED `{dir}`: {}", flowgate::escape(&reason, 4096))?;
            }
        }
    }
    writeln!(stdout, "{} verified, {refused} refused", bundles.len() - refused)?;
    let unmatched = trust.unmatched(names.iter().map(String::as_str));
    for entry in &unmatched {
        writeln!(stdout, "{} trust file: {}", if strict { "REFUSED" } else { "note   " }, entry)?;
    }
    let strict_refusal = strict && !unmatched.is_empty();
    Ok(if refused == 0 && !strict_refusal { EXIT_OK } else { EXIT_INVALID })
}
