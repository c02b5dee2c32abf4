//! `flowgate policies`: the policy set as the host would run it.

use std::io::Write;

use std::collections::BTreeMap;

use anyhow::Context;
use flowgate::{Bundle, HostBuilder, Verdict};

use crate::EXIT_OK;

/// Loads the policies as `check` would, and lists them; with `vectors`,
/// also the rules that fire together on those bundles' own vectors.
pub fn run(builder: HostBuilder, vectors: Option<&[Bundle]>, mut stdout: impl Write) -> anyhow::Result<u8> {
    let host = builder.build().context("loading policies")?;
    writeln!(stdout, "policy set {}", host.policy_set())?;
    for status in host.policies() {
        let info = &status.info;
        let signers: Vec<&str> = info.signers.iter().map(|s| s.id.as_str()).collect();
        // Names come from manifests and the trust file: escaped, as all outside text.
        writeln!(
            stdout,
            "{} {} sha256 {} signed by [{}] deadline {} ms, memory {} bytes, tables {}",
            flowgate::escape(&info.name, 256),
            flowgate::escape(&info.version, 256),
            info.digest,
            flowgate::escape(&signers.join(", "), 4096),
            status.limits.deadline_ms,
            status.limits.memory_bytes,
            status.limits.table_elements
        )?;
    }
    if let Some(bundles) = vectors {
        write_overlaps(&host, bundles, &mut stdout)?;
    }
    Ok(EXIT_OK)
}

/// Overlapping rules are not an error (two regulators may well require the
/// same thing), but an author should know of them: on every vector of
/// every bundle, the obligations and remedies that more than one policy
/// gives, with the rules of each that fired.
fn write_overlaps(host: &flowgate::Host, bundles: &[Bundle], out: &mut impl Write) -> anyhow::Result<()> {
    // (what, "policy [rules]; policy [rules]") -> the first vector showing it.
    let mut overlaps: BTreeMap<(String, String), String> = BTreeMap::new();
    for bundle in bundles {
        for vector in &bundle.manifest.tests {
            let (_, verdicts) = host.explain(&vector.record)?;
            let mut givers: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for verdict in &verdicts {
                let Verdict::Answered(answer) = &verdict.verdict else { continue };
                let info = &verdict.policy;
                let rules: Vec<&str> = answer.fired().filter_map(|rule| info.rule_name(rule)).collect();
                let giver = format!("{} [{}]", info.name, rules.join(", "));
                let obligations = answer.obligations();
                let things = obligations
                    .iter()
                    .map(|o| format!("obligation `{}`", o.kind()))
                    .chain(answer.remedies().iter().map(|r| format!("remedy `{r}`")));
                for thing in things {
                    givers.entry(thing).or_default().push(giver.clone());
                }
            }
            for (thing, by) in givers.into_iter().filter(|(_, by)| by.len() > 1) {
                let seen = format!("vector `{}` of {}", vector.name, bundle.manifest.name);
                overlaps.entry((thing, by.join("; "))).or_insert(seen);
            }
        }
    }
    if overlaps.is_empty() {
        writeln!(out, "overlaps: none on the policies' own vectors")?;
    }
    for ((thing, by), seen) in overlaps {
        writeln!(out, "overlap: {}", flowgate::escape(&format!("{thing} from {by} (first on {seen})"), 4096))?;
    }
    Ok(())
}
