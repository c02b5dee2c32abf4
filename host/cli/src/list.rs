//! `flowgate policies`: the policy set as the host would run it.

use std::io::Write;

use anyhow::Context;
use flowgate::HostBuilder;

use crate::EXIT_OK;

/// Loads the policies as `check` would, and lists them.
pub fn run(builder: HostBuilder, mut stdout: impl Write) -> anyhow::Result<u8> {
    let host = builder.build().context("loading policies")?;
    writeln!(stdout, "policy set {}", host.policy_set())?;
    for status in host.policies() {
        let info = &status.info;
        let signers: Vec<&str> = info.signers.iter().map(|s| s.id.as_str()).collect();
        writeln!(
            stdout,
            "{} {} sha256 {} signed by [{}] deadline {} ms, memory {} bytes, tables {}",
            info.name,
            info.version,
            info.digest,
            signers.join(", "),
            status.limits.deadline_ms,
            status.limits.memory_bytes,
            status.limits.table_elements
        )?;
    }
    Ok(EXIT_OK)
}
