//! Where the CLI's policies come from: a directory verified against a
//! trust file, a directory run unverified when asked to, or the reference
//! set embedded in the binary.

use std::io::Write;

use anyhow::Context;
use flowgate::{Bundle, HostBuilder, MANIFEST_FILE};

use crate::PolicySource;

/// The embedded reference bundles.
pub fn reference_bundles() -> anyhow::Result<Vec<Bundle>> {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| {
            Bundle::from_bytes(&format!("<embedded>/{name}"), manifest, wasm.to_vec()).map_err(Into::into)
        })
        .collect()
}

/// The bundles `source` names, read for their vectors.
pub fn bundles(source: &PolicySource) -> anyhow::Result<Vec<Bundle>> {
    match &source.policies {
        Some(dir) => Ok(Bundle::all_in_dir(dir, &flowgate::LoadLimits::default())?),
        None => reference_bundles(),
    }
}

/// A host builder with the policies `source` names. A directory needs a
/// trust file, or `--allow-unsigned`, which is said on stderr: there is no
/// silent fallback to running unverified code. A directory that is itself
/// a bundle, or (unless `watching`, when bundles may arrive later) holds
/// none, is an error: it would load nothing, and deny every flow.
pub fn host_builder(source: &PolicySource, watching: bool, stderr: &mut impl Write) -> anyhow::Result<HostBuilder> {
    let builder = flowgate::Host::builder();
    let Some(dir) = &source.policies else {
        return Ok(reference_bundles()
            .context("loading the embedded reference set")?
            .into_iter()
            .fold(builder, HostBuilder::bundle));
    };
    anyhow::ensure!(dir.is_dir(), "`{}` is not a directory of policy bundles", dir.display());
    if dir.join(MANIFEST_FILE).exists() {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        anyhow::bail!(
            "`--policies {}` is a policy bundle itself, not a directory of bundles; pass the directory that holds it: `--policies {}`",
            dir.display(),
            parent.display()
        );
    }
    if !watching && !holds_a_bundle(dir)? {
        anyhow::bail!(
            "`--policies {}` holds no policy bundles (no subdirectory with a {MANIFEST_FILE}); with no policy loaded every flow of personal data would be denied `no-policy-applied`",
            dir.display()
        );
    }
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

/// Whether some subdirectory of `dir` holds a manifest.
fn holds_a_bundle(dir: &std::path::Path) -> anyhow::Result<bool> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("cannot read `{}`", dir.display()))?.path();
        if path.is_dir() && path.join(MANIFEST_FILE).exists() {
            return Ok(true);
        }
    }
    Ok(false)
}
