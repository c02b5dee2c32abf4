//! `flowgate audit prove`, `audit consistency` and `audit check`: proofs
//! from a log, and proofs checked with nothing but the log's public key.
//!
//! A proof is printed only after it is checked against the checkpoint it
//! names; `check` trusts nothing in the document: the checkpoint's
//! signature, the path, the entry's own index and (given `--record`) the
//! record against the receipt's digest are all checked again.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flowgate::sdk::FlowRecord;
use flowgate::transparency::checkpoint::{Checkpoint, SignedCheckpoint};
use flowgate::transparency::entry::Entry;
use flowgate::transparency::merkle::EMPTY_ROOT;
use flowgate::transparency::proof::{ConsistencyProof, InclusionProof};
use flowgate::transparency::receipt::RuleRef;
use flowgate::transparency::store::{StoreError, Stored, StoredCheckpoint, find_flow};
use flowgate::{PublicKey, record_digest};

use super::{LogKey, read_notes, read_text, shown, witness_keys};
use crate::{EXIT_ERROR, EXIT_INVALID, EXIT_OK};

/// Which entries to prove.
pub enum Which<'a> {
    /// Entry `N`.
    Seq(u64),
    /// The receipts of a flow (of a platform, if given).
    Flow { flow: &'a str, platform: Option<&'a str> },
}

/// The checkpoint a proof is for: the one in `file`, or the log's newest;
/// checked to be signed by `key` when one is given, and held by the log.
fn checkpoint_for(stored: &Stored, file: Option<&Path>, key: Option<&LogKey>) -> Result<StoredCheckpoint, String> {
    let public: Option<PublicKey> = key.map(LogKey::public);
    let found = match file {
        None => return stored.head(public.as_ref()).map_err(|err| err.to_string()),
        Some(file) => {
            let note = read_notes(file).map_err(|err| format!("{err:#}"))?.remove(0);
            StoredCheckpoint::parse(&note).map_err(|err| format!("`{}`: {err}", file.display()))?
        }
    };
    if let Some(key) = key {
        let verifier = key.verifier(&found.checkpoint.origin).map_err(|err| format!("{err:#}"))?;
        SignedCheckpoint::open(found.text().as_bytes(), &verifier, &[]).map_err(|err| err.to_string())?;
    }
    stored
        .holds(&found.checkpoint)
        .map_err(|err| format!("the log does not hold the tree that checkpoint signs: {err}"))?;
    Ok(found)
}

/// The log in `dir` and the checkpoint to prove against
/// ([`checkpoint_for`]), with the log key read from `key`; `None` once the
/// refusal is written to `stderr`.
fn open_at(
    dir: &Path,
    checkpoint: Option<&Path>,
    key: Option<&Path>,
    stderr: &mut impl Write,
) -> anyhow::Result<Option<(Stored, StoredCheckpoint, Option<LogKey>)>> {
    let key = key.map(LogKey::read).transpose()?;
    let stored = Stored::open(dir).with_context(|| format!("cannot read the decision log `{}`", dir.display()))?;
    match checkpoint_for(&stored, checkpoint, key.as_ref()) {
        Ok(at) => Ok(Some((stored, at, key))),
        Err(problem) => {
            writeln!(stderr, "refused: {}", shown(&problem))?;
            Ok(None)
        }
    }
}

/// `flowgate audit prove`: one JSON object per entry proved.
pub fn prove(
    dir: &Path,
    which: Which<'_>,
    checkpoint: Option<&Path>,
    key: Option<&Path>,
    mut stdout: impl Write,
    mut stderr: impl Write,
) -> anyhow::Result<u8> {
    let Some((stored, at, _)) = open_at(dir, checkpoint, key, &mut stderr)? else {
        return Ok(EXIT_INVALID);
    };
    let size = at.checkpoint.size;
    let indexes = match which {
        Which::Seq(index) if index >= size => {
            writeln!(stderr, "error: entry {index} is not in the log's tree of {size} entries")?;
            return Ok(EXIT_ERROR);
        }
        Which::Seq(index) => vec![index],
        Which::Flow { flow, platform } => {
            let found: Vec<u64> = find_flow(dir, platform, flow, 0)?.into_iter().filter(|i| *i < size).collect();
            if found.is_empty() {
                writeln!(stderr, "no receipt of flow `{}` in the log's tree of {size} entries", shown(flow))?;
                return Ok(EXIT_INVALID);
            }
            found
        }
    };
    for index in indexes {
        match stored.inclusion(index, &at) {
            Ok(proof) => writeln!(stdout, "{}", proof.to_json())?,
            Err(err) => {
                writeln!(stderr, "refused: {}", shown(&err.to_string()))?;
                return Ok(EXIT_INVALID);
            }
        }
    }
    Ok(EXIT_OK)
}

/// `flowgate audit consistency`: the proof that the log's newest checkpoint
/// (or `--checkpoint`) extends `--from` (or the empty tree).
pub fn consistency(
    dir: &Path,
    from: Option<&Path>,
    checkpoint: Option<&Path>,
    key: Option<&Path>,
    mut stdout: impl Write,
    mut stderr: impl Write,
) -> anyhow::Result<u8> {
    let Some((stored, new, key)) = open_at(dir, checkpoint, key, &mut stderr)? else {
        return Ok(EXIT_INVALID);
    };
    let old = match from {
        None => Checkpoint::new(&new.checkpoint.origin, 0, EMPTY_ROOT),
        Some(file) => {
            let note = read_notes(file)?.remove(0);
            let old =
                StoredCheckpoint::parse(&note).with_context(|| format!("`{}` is not a checkpoint", file.display()))?;
            if let Some(key) = &key {
                let verifier = key.verifier(&old.checkpoint.origin)?;
                if let Err(err) = SignedCheckpoint::open(&note, &verifier, &[]) {
                    writeln!(stderr, "refused: `{}`: {}", file.display(), shown(&err.to_string()))?;
                    return Ok(EXIT_INVALID);
                }
            }
            old.checkpoint
        }
    };
    match stored.consistency(&old, &new) {
        Ok(proof) => {
            writeln!(stdout, "{}", proof.to_json())?;
            Ok(EXIT_OK)
        }
        Err(err) => {
            let what = match err {
                StoreError::Rewritten { .. } | StoreError::Truncated { .. } | StoreError::Equivocation { .. } => {
                    "the log does not extend the older checkpoint: "
                }
                _ => "",
            };
            writeln!(stderr, "refused: {what}{}", shown(&err.to_string()))?;
            Ok(EXIT_INVALID)
        }
    }
}

/// `flowgate audit check`: an inclusion or consistency proof checked offline.
pub fn check(
    proof: &Path,
    key: &Path,
    witnesses: &[PathBuf],
    from: Option<&Path>,
    record: Option<&Path>,
    mut stdout: impl Write,
) -> anyhow::Result<u8> {
    let key = LogKey::read(key)?;
    let witnesses = witness_keys(witnesses)?;
    let text = read_text(proof, "proof")?;
    let refused = |stdout: &mut dyn Write, problem: &str| -> anyhow::Result<u8> {
        writeln!(stdout, "refused: {}", shown(problem))?;
        Ok(EXIT_INVALID)
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(err) => return refused(&mut stdout, &format!("not a proof document: {err}")),
    };
    // The checkpoint's own origin names the key, unless the key is named.
    let origin = value
        .get("checkpoint")
        .and_then(|c| c.as_str())
        .and_then(|c| c.split('\n').next())
        .unwrap_or_default()
        .to_owned();
    let verifier = match key.verifier(&origin) {
        Ok(verifier) => verifier,
        Err(err) => return refused(&mut stdout, &format!("{err:#}")),
    };
    if value.get("old_size").is_some() {
        let Some(from) = from else {
            anyhow::bail!("a consistency proof is checked against the older checkpoint: give it with `--from FILE`");
        };
        let note = read_notes(from)?.remove(0);
        let old = match SignedCheckpoint::open(&note, &verifier, &[]) {
            Ok(old) => old,
            Err(err) => return refused(&mut stdout, &format!("`{}`: {err}", from.display())),
        };
        let document = match ConsistencyProof::from_json(text.as_bytes()) {
            Ok(document) => document,
            Err(err) => return refused(&mut stdout, &err.to_string()),
        };
        return match document.check(&old.checkpoint, &verifier, &witnesses) {
            Ok(new) => {
                writeln!(
                    stdout,
                    "consistent: the tree of {} entries of `{}` extends the one of {}{}",
                    new.checkpoint.size,
                    shown(&new.checkpoint.origin),
                    old.checkpoint.size,
                    cosigners(&witnesses)
                )?;
                Ok(EXIT_OK)
            }
            Err(err) => refused(&mut stdout, &err.to_string()),
        };
    }
    let document = match InclusionProof::from_json(text.as_bytes()) {
        Ok(document) => document,
        Err(err) => return refused(&mut stdout, &err.to_string()),
    };
    let included = match document.check(&verifier, &witnesses) {
        Ok(included) => included,
        Err(err) => return refused(&mut stdout, &err.to_string()),
    };
    if let Some(path) = record {
        let Entry::Receipt(receipt) = &included.entry else {
            return refused(&mut stdout, "the entry proved is a policy set, not a receipt: it decided no record");
        };
        let json = read_text(path, "record")?;
        let flow = FlowRecord::from_json(json.trim().as_bytes()).with_context(|| format!("`{}`", path.display()))?;
        let digest = record_digest(&flow);
        if digest != receipt.record {
            return refused(
                &mut stdout,
                &format!(
                    "the record given has digest {digest}, the receipt decided the record of digest {}",
                    receipt.record
                ),
            );
        }
    }
    let checkpoint = &included.checkpoint.checkpoint;
    writeln!(
        stdout,
        "proved: entry {} is in the log `{}` of {} entries{}",
        document.index,
        shown(&checkpoint.origin),
        checkpoint.size,
        cosigners(&witnesses)
    )?;
    if record.is_some() {
        writeln!(stdout, "record: the record given is the one the receipt decided")?;
    }
    writeln!(stdout, "{}", entry_json(&included.entry))?;
    Ok(EXIT_OK)
}

fn cosigners(witnesses: &[flowgate::transparency::note::Verifier]) -> String {
    if witnesses.is_empty() {
        return String::new();
    }
    let names: Vec<String> = witnesses.iter().map(|w| format!("`{}`", shown(w.name()))).collect();
    format!(", cosigned by {}", names.join(", "))
}

/// An entry as JSON, its fields as `FORMAT.md` names them (numbers into
/// the policy set it names for a receipt).
pub(crate) fn entry_json(entry: &Entry) -> serde_json::Value {
    match entry {
        Entry::Receipt(r) => serde_json::json!({
            "receipt": {
                "index": r.index, "time_ms": r.time_ms, "policy_set": r.policy_set,
                "platform": r.platform, "flow": r.flow, "record": r.record.to_string(),
                "effect": r.effect.word(), "applied": r.applied,
                "reasons": r.reasons.iter().map(|reason| match &reason.rule {
                    RuleRef::Numbered(n) => serde_json::json!([reason.policy, n]),
                    RuleRef::Named(name) => serde_json::json!([reason.policy, name]),
                }).collect::<Vec<_>>(),
                "obligations": r.obligations.iter().map(|o| serde_json::json!([o.kind, o.parameter])).collect::<Vec<_>>(),
                "remedies": r.remedies,
            }
        }),
        Entry::PolicySet(set) => serde_json::json!({
            "policy_set": {
                "index": set.index, "time_ms": set.time_ms, "id": set.id.to_string(),
                "host_version": set.host_version,
                "policies": set.policies.iter().map(|p| serde_json::json!([p.name, p.version, p.digest.to_string()])).collect::<Vec<_>>(),
            }
        }),
    }
}
