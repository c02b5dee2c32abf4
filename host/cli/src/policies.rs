//! Where the CLI's policies come from: a directory, or the embedded reference set.

use std::path::Path;

use anyhow::Context;
use flowgate::{Bundle, HostBuilder};

/// The embedded reference bundles.
pub fn reference_bundles() -> anyhow::Result<Vec<Bundle>> {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| {
            Bundle::from_bytes(&format!("<embedded>/{name}"), manifest, wasm.to_vec()).map_err(Into::into)
        })
        .collect()
}

/// A host builder with the bundles of `dir`, or the reference set.
pub fn host_builder(dir: Option<&Path>) -> anyhow::Result<HostBuilder> {
    let builder = flowgate::Host::builder();
    Ok(match dir {
        Some(dir) => {
            anyhow::ensure!(dir.is_dir(), "`{}` is not a directory of policy bundles", dir.display());
            builder.policy_dir(dir)
        }
        None => reference_bundles()
            .context("loading the embedded reference set")?
            .into_iter()
            .fold(builder, HostBuilder::bundle),
    })
}
