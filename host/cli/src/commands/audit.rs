//! `flowgate audit`: a decision log read back, by the regulator or the
//! platform. Nothing here writes to the log.
//!
//! - `verify DIR --key ID.pub [--checkpoints FILE...]`: every link,
//!   signature and kept record; exit 1 naming the first broken place;
//! - `checkpoint DIR`: the newest signed checkpoint, to collect;
//! - `stats DIR`: counts per effect, policy, rule, platform and day;
//! - `replay DIR`: every kept record decided again, and what differs.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flowgate::{Archive, Audit, Checkpoint, Digest, Host, HostBuilder, PublicKey};

use crate::{EXIT_INVALID, EXIT_OK};

/// The most collected checkpoint bytes read from one file.
const MAX_CHECKPOINT_FILE: u64 = 1 << 20;

/// `flowgate audit verify`.
pub fn verify(dir: &Path, key: &Path, checkpoint_files: &[PathBuf], mut stdout: impl Write) -> anyhow::Result<u8> {
    let key = PublicKey::read(key)?;
    let mut collected = Vec::new();
    for file in checkpoint_files {
        collected.extend(read_checkpoints(file)?);
    }
    let audit = Audit::open(dir).with_context(|| format!("cannot read the decision log `{}`", dir.display()))?;
    let verified = audit.verify(&key, &collected)?;
    if let Some((segment, bytes)) = verified.torn {
        writeln!(
            stdout,
            "note: segment {segment} ends in a torn receipt of {bytes} bytes (a crash mid-write; its decisions were never returned, and the next start cuts it)"
        )?;
    }
    if let Some(broken) = &verified.broken {
        writeln!(stdout, "broken: {broken}")?;
        return Ok(EXIT_INVALID);
    }
    writeln!(
        stdout,
        "verified: {} receipts in {} segments, {} checkpoints signed by {key}",
        verified.receipts, verified.segments, verified.checkpoints
    )?;
    if verified.records + verified.erased > 0 {
        writeln!(stdout, "records: {} match their receipts, {} erased", verified.records, verified.erased)?;
    }
    if !collected.is_empty() {
        writeln!(stdout, "collected checkpoints: all {} found in the log", verified.collected)?;
    }
    if verified.open {
        writeln!(
            stdout,
            "note: the last segment is open (a host is writing it, or it crashed): receipts after its last checkpoint are not signed yet"
        )?;
    }
    Ok(EXIT_OK)
}

/// Reads a file of checkpoint lines (one or more, as `audit checkpoint` prints).
fn read_checkpoints(file: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let opened = std::fs::File::open(file).with_context(|| format!("cannot open `{}`", file.display()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(opened, MAX_CHECKPOINT_FILE), &mut text)
        .with_context(|| format!("`{}` is not a text file", file.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            Checkpoint::parse(line.trim().as_bytes())
                .map_err(|err| anyhow::anyhow!("`{}` line {}: {err}", file.display(), i + 1))
        })
        .collect()
}

/// `flowgate audit checkpoint`: the newest checkpoint, one line on stdout.
pub fn checkpoint(dir: &Path, mut stdout: impl Write) -> anyhow::Result<u8> {
    let audit = Audit::open(dir).with_context(|| format!("cannot read the decision log `{}`", dir.display()))?;
    let Some(checkpoint) = audit.latest_checkpoint()? else {
        anyhow::bail!("the decision log `{}` holds no checkpoint yet", dir.display());
    };
    writeln!(stdout, "{}", checkpoint.to_line())?;
    Ok(EXIT_OK)
}

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

/// `flowgate audit replay`: decides each kept record again, and reports per
/// rule the decisions that differ.
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
    let without = audit.for_each_record(|logged| {
        let host = match (&candidate, &archive) {
            (Some(host), _) => host,
            (None, Some((archive, builder))) => {
                let host = hosts.entry(logged.receipt.policy_set).or_insert_with(|| {
                    let bundles = archive.set(&logged.receipt.policy_set).ok()?;
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
        same_set += u64::from(decision.policy_set == logged.receipt.policy_set);
        let now: Vec<(String, String)> =
            decision.reasons.iter().map(|r| (r.policy().to_owned(), r.rule().to_owned())).collect();
        let before = &logged.receipt;
        if decision.effect == before.effect
            && decision.obligations == before.obligations
            && decision.remedies == before.remedies
            && now == before.reasons
        {
            return;
        }
        differ += 1;
        for reason in now.iter().filter(|r| !before.reasons.contains(r)) {
            rules.entry(format!("{}/{}", reason.0, reason.1)).or_default().0 += 1;
        }
        for reason in before.reasons.iter().filter(|r| !now.contains(r)) {
            rules.entry(format!("{}/{}", reason.0, reason.1)).or_default().1 += 1;
        }
        if examples.len() < 10 {
            examples.push(format!(
                "  receipt {} (flow {}): {} then, {} now",
                before.seq,
                flowgate::escape(&before.flow, 256),
                before.effect,
                decision.effect
            ));
        }
    })?;
    writeln!(
        stdout,
        "replayed {replayed} records ({without} receipts kept no record): {} decided alike, {differ} differ",
        replayed - differ
    )?;
    writeln!(stdout, "policy set: {same_set} of {replayed} decided by the same set as logged")?;
    if unarchived > 0 {
        writeln!(
            stdout,
            "not replayed: {unarchived} records whose policy set is not in the archive (or does not load)"
        )?;
    }
    if differ > 0 {
        writeln!(stdout, "rules that differ (decisions that now fire it / no longer fire it):")?;
        for (rule, (gained, lost)) in &rules {
            writeln!(stdout, "  {rule:<48} +{gained} -{lost}")?;
        }
        writeln!(stdout, "first differences:")?;
        for example in &examples {
            writeln!(stdout, "{example}")?;
        }
    }
    Ok(if differ > 0 || unarchived > 0 { EXIT_INVALID } else { EXIT_OK })
}
