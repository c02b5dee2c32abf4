//! Where the CLI's policies come from: a directory verified against a
//! trust file, a directory run unverified when asked to, or the reference
//! set embedded in the binary.

use std::io::Write;

use anyhow::Context;
use flowgate::{Bundle, HostBuilder};

use crate::PolicySource;

/// The embedded reference bundles.
pub fn reference_bundles() -> anyhow::Result<Vec<Bundle>> {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| {
            Bundle::from_bytes(&format!("<embedded>/{name}"), manifest, wasm.to_vec()).map_err(Into::into)
        })
        .collect()
}

/// A host builder with the policies `source` names. A directory needs a
/// trust file, or `--allow-unsigned`, which is said on stderr: there is no
/// silent fallback to running unverified code.
pub fn host_builder(source: &PolicySource, stderr: &mut impl Write) -> anyhow::Result<HostBuilder> {
    let builder = flowgate::Host::builder();
    let Some(dir) = &source.policies else {
        return Ok(reference_bundles()
            .context("loading the embedded reference set")?
            .into_iter()
            .fold(builder, HostBuilder::bundle));
    };
    anyhow::ensure!(dir.is_dir(), "`{}` is not a directory of policy bundles", dir.display());
    let builder = builder.policy_dir(dir);
    match (&source.trust, source.allow_unsigned) {
        (Some(trust), _) => Ok(builder.trust_file(trust).context("reading the trust file")?),
        (None, true) => {
            writeln!(stderr, "flowgate: the bundles in `{}` are not verified (--allow-unsigned)", dir.display())?;
            Ok(builder)
        }
        (None, false) => anyhow::bail!(
            "`--policies {}` needs `--trust FILE` to verify its bundles, or `--allow-unsigned` to run them unverified",
            dir.display()
        ),
    }
}
