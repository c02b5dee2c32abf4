//! `flowgate audit stats` and `flowgate audit replay`: what a log decided,
//! counted, and its kept records decided again.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flowgate::{Archive, Audit, Digest, Host, HostBuilder};

use super::shown;
use crate::{EXIT_INVALID, EXIT_OK};

/// `flowgate audit stats`.
pub fn stats(dir: &Path, mut stdout: impl Write) -> anyhow::Result<u8> {
    let audit = Audit::open(dir).with_context(|| format!("cannot read the decision log `{}`", dir.display()))?;
    write!(stdout, "{}", audit.stats()?)?;
    Ok(EXIT_OK)
}

/// The policies a replay decides with.
pub enum Deciders {
    /// One candidate set, for every record.
    Candidate(HostBuilder),
    /// The set each receipt names, found in an archive; each built from this
    /// builder (which holds the host options, and no bundles).
    Archived(PathBuf, HostBuilder),
}

/// `flowgate audit replay`: decides each kept record again, and reports
/// per rule the decisions that differ, and for the first ones what changed.
pub fn replay(dir: &Path, deciders: Deciders, mut stdout: impl Write) -> anyhow::Result<u8> {
    let audit = Audit::open(dir).with_context(|| format!("cannot read the decision log `{}`", dir.display()))?;
    let mut hosts: HashMap<Digest, Option<Host>> = HashMap::new();
    let (candidate, archive) = match deciders {
        Deciders::Candidate(builder) => (Some(builder.build().context("loading policies")?), None),
        Deciders::Archived(archive, builder) => {
            let opened =
                Archive::open(&archive).with_context(|| format!("cannot open the archive `{}`", archive.display()))?;
            (None, Some((opened, builder)))
        }
    };
    let mut unarchived = 0u64;
    let (mut replayed, mut differ, mut same_set) = (0u64, 0u64, 0u64);
    // Per rule (policy/rule): decisions that gained it, and that lost it.
    let mut rules: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut examples = Vec::new();
    let kept = audit.for_each_record(|logged| {
        let host = match (&candidate, &archive) {
            (Some(host), _) => host,
            (None, Some((archive, builder))) => {
                let host = hosts.entry(logged.policy_set).or_insert_with(|| {
                    let bundles = archive.set(&logged.policy_set).ok()?;
                    bundles.into_iter().fold(builder.clone(), HostBuilder::bundle).build().ok()
                });
                match host {
                    Some(host) => host,
                    None => {
                        unarchived += 1;
                        return;
                    }
                }
            }
            (None, None) => unreachable!("a replay has a candidate set or an archive"),
        };
        let decision = host.evaluate(&logged.record);
        replayed += 1;
        same_set += u64::from(decision.policy_set == logged.policy_set);
        let changes = logged.changes(&decision);
        if changes.is_empty() {
            return;
        }
        differ += 1;
        for rule in &changes.rules.0 {
            rules.entry(rule.clone()).or_default().0 += 1;
        }
        for rule in &changes.rules.1 {
            rules.entry(rule.clone()).or_default().1 += 1;
        }
        if examples.len() < 10 {
            examples.push(format!(
                "  entry {} (flow {}): {}",
                logged.index,
                shown(&logged.receipt.flow),
                shown(&changes.to_string())
            ));
        }
    })?;
    if !kept.kept {
        writeln!(
            stdout,
            "nothing to replay: the log `{}` keeps no records (it was written without `--log-records`); a receipt holds only its record's digest",
            dir.display()
        )?;
        return Ok(EXIT_INVALID);
    }
    if kept.records == 0 {
        writeln!(
            stdout,
            "nothing to replay: no kept record of the log matches its receipt ({} receipts without a record, {} records unusable)",
            kept.without, kept.unusable
        )?;
        return Ok(EXIT_INVALID);
    }
    writeln!(
        stdout,
        "replayed {replayed} records ({} receipts kept no record): {} decided alike, {differ} differ",
        kept.without,
        replayed - differ
    )?;
    writeln!(stdout, "policy set: {same_set} of {replayed} decided by the same set as logged")?;
    if kept.unusable > 0 {
        writeln!(
            stdout,
            "not replayed: {} kept records that are not their receipt's (run `flowgate audit verify`)",
            kept.unusable
        )?;
    }
    if unarchived > 0 {
        writeln!(
            stdout,
            "not replayed: {unarchived} records whose policy set is not in the archive (or does not load)"
        )?;
    }
    if differ > 0 {
        writeln!(stdout, "rules that differ (decisions that now fire it / no longer fire it):")?;
        for (rule, (gained, lost)) in &rules {
            writeln!(stdout, "  {:<48} +{gained} -{lost}", shown(rule))?;
        }
        writeln!(stdout, "first differences (then → now):")?;
        for example in &examples {
            writeln!(stdout, "{example}")?;
        }
    }
    Ok(if differ > 0 || unarchived > 0 || kept.unusable > 0 { EXIT_INVALID } else { EXIT_OK })
}
