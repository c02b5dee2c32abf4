//! Reading a decision log back: verification, statistics and the kept
//! records, for a regulator (`flowgate audit`) as much as for the platform.
//!
//! Verification is the log crate's ([`flowgate_log::store::verify`]: every
//! entry, the tree, every checkpoint, on every core), with each kept record
//! checked against its receipt's digest here, where the record's encoding
//! is known. Statistics and replay read the entries in order and show each
//! receipt in words through the policy-set entry it names
//! ([`Receipt::explain`](flowgate_log::receipt::Receipt::explain)); a log
//! read this way is not trusted more than its verification says.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use flowgate_log::entry::Entry;
use flowgate_log::policy_set::PolicySet as SetEntry;
use flowgate_log::receipt::{Effect as LogEffect, Explained};
use flowgate_log::store::{CHUNK, RecordLines, Stored, UnitVerified, Verified, VerifyOptions};
use flowgate_sdk::{Effect, FlowRecord};

use crate::bundle::PublicKey;
use crate::model::{Decision, Digest};

use super::error::LogError;
use super::receipt::record_digest;

/// Policy-set entries kept at hand while reading: receipts name the newest.
const SETS_AT_HAND: usize = 16;

/// Distinct keys a statistics table counts apart; the rest are `(others)`.
const MAX_KEYS: usize = 10_000;

/// A decision log, opened for reading. Reading never changes it.
#[derive(Debug)]
pub struct Audit {
    stored: Stored,
}

/// Counts of what a log decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries read.
    pub entries: u64,
    /// Receipts among them.
    pub receipts: u64,
    /// Policy sets among them.
    pub policy_sets: u64,
    /// Entries that could not be read, or receipts whose policy set could
    /// not be found or does not fit them (verify the log to know why).
    pub unreadable: u64,
    /// Decisions by effect.
    pub effects: BTreeMap<Effect, u64>,
    /// Decisions each policy applied to.
    pub policies: BTreeMap<String, u64>,
    /// Decisions each rule (policy, rule) fired in.
    pub rules: BTreeMap<(String, String), u64>,
    /// Decisions by platform, then effect.
    pub platforms: BTreeMap<String, BTreeMap<Effect, u64>>,
    /// Decisions by UTC day (`YYYY-MM-DD`).
    pub days: BTreeMap<String, u64>,
}

/// A receipt with the record it decided, as kept with `--log-records`.
#[derive(Debug, Clone)]
pub struct LoggedRecord {
    /// The receipt's index in the log.
    pub index: u64,
    /// The receipt, in words.
    pub receipt: Explained,
    /// The content id of the policy set that decided.
    pub policy_set: Digest,
    /// The record, already checked against the receipt's digest.
    pub record: FlowRecord,
}

/// What reading the kept records found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeptRecords {
    /// Whether the log keeps records at all.
    pub kept: bool,
    /// Records handed over, each matching its receipt.
    pub records: u64,
    /// Receipts without a kept record (erased, or never kept).
    pub without: u64,
    /// Kept records that could not be used: unreadable, not their
    /// receipt's, or of a receipt that cannot be read (verify the log).
    pub unusable: u64,
}

/// How a decision made again differs from its receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The effect then and now, if it changed.
    pub effect: Option<(String, String)>,
    /// Rules (`policy/rule`) that fire now and did not, and the reverse.
    pub rules: (Vec<String>, Vec<String>),
    /// Obligations (`kind` or `kind(k=5)`) added and dropped.
    pub obligations: (Vec<String>, Vec<String>),
    /// Remedies added and dropped.
    pub remedies: (Vec<String>, Vec<String>),
}

impl Audit {
    /// Opens the log in `dir` for reading.
    pub fn open(dir: impl AsRef<Path>) -> Result<Audit, LogError> {
        let dir = dir.as_ref();
        let stored = Stored::open(dir).map_err(|source| LogError::Store { dir: dir.to_owned(), source })?;
        Ok(Audit { stored })
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        self.stored.dir()
    }

    /// The log crate's reader: entries, stored hashes, proofs.
    pub fn stored(&self) -> &Stored {
        &self.stored
    }

    /// Verifies the whole log against its public key and checkpoints
    /// collected from it earlier (signed notes, as `flowgate audit
    /// checkpoint` prints them). A broken log is a result
    /// ([`Verified::broken`]), not an error; errors are for logs that
    /// cannot be read at all.
    pub fn verify(&self, key: &PublicKey, collected: &[String]) -> Result<Verified, LogError> {
        let mut options = VerifyOptions::new(*key);
        options.collected = collected.iter().map(|note| note.as_bytes().to_vec()).collect();
        self.verify_with(options)
    }

    /// Verifies the whole log as `options` say (witnesses, workers), each
    /// kept record checked against its receipt's digest.
    pub fn verify_with(&self, options: VerifyOptions<'_>) -> Result<Verified, LogError> {
        let check = record_check;
        let options = VerifyOptions { records: Some(&check), ..options };
        flowgate_log::store::verify(self.dir(), &options)
            .map_err(|source| LogError::Store { dir: self.dir().to_owned(), source })
    }

    /// The units the log is verified in apart ([`Audit::verify_unit`]),
    /// in order: its chunks of 65,536 entries.
    pub fn units(&self) -> Result<Vec<u64>, LogError> {
        flowgate_log::store::units(self.dir()).map_err(|source| LogError::Store { dir: self.dir().to_owned(), source })
    }

    /// Verifies one unit alone, kept records checked, so that units can be
    /// spread over machines that read the same directory (Spark's
    /// `flowgate.spark.audit`) and joined with [`Audit::verify_joined`].
    pub fn verify_unit(&self, options: VerifyOptions<'_>, unit: u64) -> Result<UnitVerified, LogError> {
        let check = record_check;
        let options = VerifyOptions { records: Some(&check), ..options };
        flowgate_log::store::verify_unit(self.dir(), &options, unit)
            .map_err(|source| LogError::Store { dir: self.dir().to_owned(), source })
    }

    /// The verdict [`Audit::verify_with`] gives, from units verified
    /// elsewhere: each unit that fits its place is taken as it is, the
    /// rest (and everything that crosses units: the tree, the checkpoints,
    /// time order, policy-set references) is checked here.
    pub fn verify_joined(&self, options: VerifyOptions<'_>, units: Vec<UnitVerified>) -> Result<Verified, LogError> {
        let check = record_check;
        let options = VerifyOptions { records: Some(&check), ..options };
        flowgate_log::store::verify_joined(self.dir(), &options, units)
            .map_err(|source| LogError::Store { dir: self.dir().to_owned(), source })
    }

    /// Counts what the log decided. Unreadable entries are counted apart:
    /// verify first to know the counts are of an intact log.
    pub fn stats(&self) -> Result<Stats, LogError> {
        let mut stats = Stats::default();
        let (mut entries, mut sets) = (0, 0);
        self.each_receipt(
            |_, explained| {
                let Some(explained) = explained else {
                    stats.unreadable += 1;
                    return Ok(());
                };
                stats.receipts += 1;
                let effect = sdk_effect(explained.effect);
                *stats.effects.entry(effect).or_default() += 1;
                for (policy, _, _) in &explained.policies {
                    bump(&mut stats.policies, policy.clone(), "(others)".into());
                }
                for (policy, rule) in &explained.reasons {
                    bump(&mut stats.rules, (policy.clone(), rule.clone()), ("(others)".into(), String::new()));
                }
                let platforms = stats.platforms.len();
                let platform = match stats.platforms.contains_key(&explained.platform) || platforms < MAX_KEYS {
                    true => explained.platform.clone(),
                    false => "(others)".into(),
                };
                *stats.platforms.entry(platform).or_default().entry(effect).or_default() += 1;
                bump(&mut stats.days, utc_day(explained.time_ms), "(others)".into());
                Ok(())
            },
            &mut entries,
            &mut sets,
        )?;
        stats.entries = entries;
        stats.policy_sets = sets;
        Ok(stats)
    }

    /// Reads every entry in order, handing each receipt (in words, if its
    /// policy set is at hand and fits it) and its index to `each`.
    fn each_receipt(
        &self,
        mut each: impl FnMut(u64, Option<&Explained>) -> Result<(), LogError>,
        entries: &mut u64,
        sets: &mut u64,
    ) -> Result<(), LogError> {
        let store = |source| LogError::Store { dir: self.dir().to_owned(), source };
        let mut at_hand: Vec<SetEntry> = Vec::new();
        for read in self.stored.entries().map_err(store)? {
            let (index, bytes) = read.map_err(store)?;
            *entries += 1;
            match Entry::decode(&bytes) {
                Ok(Entry::PolicySet(set)) => {
                    *sets += 1;
                    if at_hand.len() == SETS_AT_HAND {
                        at_hand.remove(0);
                    }
                    at_hand.push(set);
                }
                Ok(Entry::Receipt(receipt)) => {
                    let set = at_hand.iter().rev().find(|set| set.index == receipt.policy_set);
                    let explained = set.and_then(|set| receipt.explain(set).ok());
                    each(index, explained.as_ref())?;
                }
                Err(_) => each(index, None)?,
            }
        }
        Ok(())
    }

    /// Calls `each` with every receipt whose record was kept (and matches
    /// its digest), in log order.
    pub fn for_each_record(&self, mut each: impl FnMut(LoggedRecord)) -> Result<KeptRecords, LogError> {
        let store = |source| LogError::Store { dir: self.dir().to_owned(), source };
        let mut kept = KeptRecords { kept: self.stored.keeps_records().map_err(store)?, ..KeptRecords::default() };
        if !kept.kept {
            return Ok(kept);
        }
        let mut file: Option<(u64, Option<RecordLines>)> = None;
        let mut pending: Option<flowgate_log::store::KeptRecord> = None;
        let (mut entries, mut sets) = (0, 0);
        self.each_receipt(
            |index, explained| {
                let chunk = index / CHUNK;
                if file.as_ref().is_none_or(|(open, _)| *open != chunk) {
                    kept.unusable += u64::from(pending.take().is_some());
                    file = Some((chunk, self.stored.records(chunk).map_err(store)?));
                }
                let lines = file.as_mut().and_then(|(_, lines)| lines.as_mut());
                let record = next_record(lines, &mut pending, index, &mut kept.unusable)?;
                let (Some(record), Some(explained)) = (record, explained) else {
                    kept.without += 1;
                    return Ok(());
                };
                let Some(policy_set) = Digest::from_hex(&explained.policy_set) else {
                    kept.unusable += 1;
                    return Ok(());
                };
                match FlowRecord::from_json(&record) {
                    Ok(flow) if record_digest(&flow).to_string() == explained.record => {
                        kept.records += 1;
                        each(LoggedRecord { index, receipt: explained.clone(), policy_set, record: flow });
                    }
                    _ => kept.unusable += 1,
                }
                Ok(())
            },
            &mut entries,
            &mut sets,
        )?;
        Ok(kept)
    }
}

/// The kept record of entry `index`, if its file has one: lines before it
/// (of entries that are not receipts, or out of order) are skipped and
/// counted as unusable.
/// A kept record's digest, from its JSON.
fn record_check(json: &[u8]) -> Result<Digest, String> {
    FlowRecord::from_json(json).map(|r| record_digest(&r)).map_err(|e| e.to_string())
}

fn next_record(
    lines: Option<&mut RecordLines>,
    pending: &mut Option<flowgate_log::store::KeptRecord>,
    index: u64,
    unusable: &mut u64,
) -> Result<Option<Vec<u8>>, LogError> {
    let Some(lines) = lines else { return Ok(None) };
    loop {
        if pending.is_none() {
            match lines.next_record()? {
                None => return Ok(None),
                Some(Err(_)) => {
                    *unusable += 1;
                    continue;
                }
                Some(Ok(record)) => *pending = Some(record),
            }
        }
        let record = pending.as_ref().expect("read above");
        if record.index > index {
            return Ok(None);
        }
        let record = pending.take().expect("read above");
        if record.index == index {
            return Ok(Some(record.record));
        }
        *unusable += 1;
    }
}

impl LoggedRecord {
    /// How `decision`, the record decided again, differs from the receipt.
    pub fn changes(&self, decision: &Decision) -> Changes {
        let then = &self.receipt;
        let mut changes = Changes::default();
        let now_effect = decision.effect.to_string();
        if now_effect != then.effect.word() {
            changes.effect = Some((then.effect.word().to_owned(), now_effect));
        }
        let rules_then: Vec<String> = then.reasons.iter().map(|(p, r)| format!("{p}/{r}")).collect();
        let rules_now: Vec<String> = decision.reasons.iter().map(|r| format!("{}/{}", r.policy(), r.rule())).collect();
        changes.rules = differ(&rules_then, &rules_now);
        let obligations_then: Vec<String> = then
            .obligations
            .iter()
            .map(|o| match &o.parameter {
                Some((name, value)) => format!("{}({name}={value})", o.kind),
                None => o.kind.clone(),
            })
            .collect();
        let obligations_now: Vec<String> = decision
            .obligations
            .iter()
            .map(|o| {
                let value = serde_json::to_value(o).unwrap_or_default();
                let parameter = value.as_object().and_then(|m| m.iter().find(|(k, _)| *k != "kind"));
                match parameter {
                    Some((name, value)) => format!("{}({name}={value})", o.kind()),
                    None => o.kind().to_string(),
                }
            })
            .collect();
        changes.obligations = differ(&obligations_then, &obligations_now);
        let remedies_now: Vec<String> = decision.remedies.iter().map(ToString::to_string).collect();
        changes.remedies = differ(&then.remedies, &remedies_now);
        changes
    }
}

impl Changes {
    /// Whether the decision is the same as logged.
    pub fn is_empty(&self) -> bool {
        self.effect.is_none()
            && [&self.rules, &self.obligations, &self.remedies]
                .iter()
                .all(|(added, dropped)| added.is_empty() && dropped.is_empty())
    }
}

impl fmt::Display for Changes {
    /// `effect deny → allow; rules +p/r -p/s; obligations +encrypt_in_transit; remedies -obtain_consent`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some((then, now)) = &self.effect {
            parts.push(format!("effect {then} → {now}"));
        }
        for (name, (added, dropped)) in
            [("rules", &self.rules), ("obligations", &self.obligations), ("remedies", &self.remedies)]
        {
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            let listed: Vec<String> =
                added.iter().map(|a| format!("+{a}")).chain(dropped.iter().map(|d| format!("-{d}"))).collect();
            parts.push(format!("{name} {}", listed.join(" ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// What `now` has that `then` has not, and the reverse.
fn differ(then: &[String], now: &[String]) -> (Vec<String>, Vec<String>) {
    let added = now.iter().filter(|x| !then.contains(x)).cloned().collect();
    let dropped = then.iter().filter(|x| !now.contains(x)).cloned().collect();
    (added, dropped)
}

/// The SDK's effect for the log's.
fn sdk_effect(effect: LogEffect) -> Effect {
    match effect {
        LogEffect::Allow => Effect::Allow,
        LogEffect::AllowWithObligations => Effect::AllowWithObligations,
        LogEffect::Deny => Effect::Deny,
        LogEffect::NotApplicable => Effect::NotApplicable,
    }
}

/// Counts `key`, or `others` once the table is full.
fn bump<K: Ord>(table: &mut BTreeMap<K, u64>, key: K, others: K) {
    let key = if table.contains_key(&key) || table.len() < MAX_KEYS { key } else { others };
    *table.entry(key).or_default() += 1;
}

/// `YYYY-MM-DD` of a time in ms since the Unix epoch, in UTC.
fn utc_day(time_ms: u64) -> String {
    // Days to a civil date (H. Hinnant's algorithm), for days since 1970.
    let days = (time_ms / 86_400_000) as i64 + 719_468;
    let era = days / 146_097;
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "receipts: {}", self.receipts)?;
        writeln!(f, "entries: {} ({} policy sets)", self.entries, self.policy_sets)?;
        if self.unreadable > 0 {
            writeln!(f, "unreadable: {} (run `flowgate audit verify`)", self.unreadable)?;
        }
        writeln!(f, "by effect:")?;
        for effect in Effect::ALL {
            let name = effect.to_string();
            writeln!(f, "  {name:<24} {}", self.effects.get(effect).copied().unwrap_or(0))?;
        }
        writeln!(f, "by policy (decisions it applied to):")?;
        for (policy, count) in &self.policies {
            writeln!(f, "  {:<40} {count}", crate::model::escape(policy, 256))?;
        }
        writeln!(f, "by rule (decisions it fired in):")?;
        for ((policy, rule), count) in &self.rules {
            writeln!(f, "  {:<40} {count}", crate::model::escape(&format!("{policy}/{rule}"), 512))?;
        }
        writeln!(f, "by platform:")?;
        for (platform, effects) in &self.platforms {
            let counts: Vec<String> = effects.iter().map(|(effect, n)| format!("{effect} {n}")).collect();
            writeln!(f, "  {:<24} {}", crate::model::escape(platform, 256), counts.join(", "))?;
        }
        writeln!(f, "by day (UTC):")?;
        for (day, count) in &self.days {
            writeln!(f, "  {day} {count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_civil_utc_dates() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(1_795_996_800_000 - 1), "2026-11-29");
        assert_eq!(utc_day(1_795_996_800_000), "2026-11-30");
    }

    #[test]
    fn tables_stay_bounded() {
        let mut table = BTreeMap::new();
        for n in 0..MAX_KEYS + 5 {
            bump(&mut table, format!("k{n}"), "(others)".into());
        }
        assert_eq!(table.len(), MAX_KEYS + 1);
        assert_eq!(table["(others)"], 5);
    }
}
