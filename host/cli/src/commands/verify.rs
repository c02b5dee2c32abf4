//! `flowgate verify`: what a platform runs before it trusts a directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flowgate::{Bundle, TrustPolicy};

use crate::{EXIT_INVALID, EXIT_OK};

/// Prints each bundle's signers and verdict; exit 0 if all verify, 1 if not.
pub fn run(trust: &Path, bundles: &[PathBuf], mut stdout: impl Write) -> anyhow::Result<u8> {
    let trust = TrustPolicy::from_file(trust).context("reading the trust file")?;
    let mut refused = 0;
    for dir in bundles {
        let verdict = Bundle::from_dir(dir)
            .map_err(|err| flowgate::escape(&format!("{:#}", anyhow::Error::from(err)), 4096))
            .and_then(|bundle| {
                let name = format!("{} {}", bundle.manifest.name, bundle.manifest.version);
                trust.verify(&bundle, None).map(|signers| (name, signers)).map_err(|err| err.to_string())
            });
        match verdict {
            Ok((name, signers)) => {
                let signers: Vec<String> = signers.iter().map(|s| format!("{} ({})", s.id, s.holder)).collect();
                writeln!(stdout, "ok      {name} `{}`: signed by {}", dir.display(), signers.join(", "))?;
            }
            Err(reason) => {
                refused += 1;
                writeln!(stdout, "REFUSED `{}`: {reason}", dir.display())?;
            }
        }
    }
    writeln!(stdout, "{} verified, {refused} refused", bundles.len() - refused)?;
    Ok(if refused == 0 { EXIT_OK } else { EXIT_INVALID })
}
