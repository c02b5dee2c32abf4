//! `flowgate audit verify` and `flowgate audit checkpoint`: a whole log
//! checked, and its newest checkpoint checked before it is handed out.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flowgate::transparency::checkpoint::SignedCheckpoint;
use flowgate::transparency::store::Stored;
use flowgate::{Audit, VerifyOptions};

use super::{LogKey, read_notes, shown, witness_keys};
use crate::{EXIT_INVALID, EXIT_OK};

/// `flowgate audit verify`.
pub fn verify(
    dir: &Path,
    key: &Path,
    checkpoint_files: &[PathBuf],
    witnesses: &[PathBuf],
    mut stdout: impl Write,
) -> anyhow::Result<u8> {
    let key = LogKey::read(key)?;
    let mut options = VerifyOptions::new(key.public());
    for file in checkpoint_files {
        options.collected.extend(read_notes(file)?);
    }
    options.witnesses = witness_keys(witnesses)?;
    let audit = Audit::open(dir).with_context(|| format!("cannot read the decision log `{}`", dir.display()))?;
    let verified = audit.verify_with(options)?;
    if let Some(broken) = &verified.broken {
        writeln!(stdout, "broken: {}", shown(&broken.to_string()))?;
        for other in verified.breaks.iter().skip(1) {
            writeln!(stdout, "  also: {}", shown(&other.to_string()))?;
        }
        if verified.more > 0 {
            writeln!(stdout, "  and {} more problems", verified.more)?;
        }
        notes(&verified, &mut stdout)?;
        return Ok(EXIT_INVALID);
    }
    notes(&verified, &mut stdout)?;
    let origin = verified.checkpoint.as_ref().map_or_else(String::new, |c| format!(" of `{}`", shown(&c.origin)));
    writeln!(
        stdout,
        "verified: {} entries ({} receipts, {} policy sets){origin}, tree root {}",
        verified.entries,
        verified.receipts,
        verified.policy_sets,
        verified.root.to_base64()
    )?;
    if let Some(checkpoint) = &verified.checkpoint {
        writeln!(
            stdout,
            "checkpoints: the newest signs {} entries; {} in the log's history and {} collected, all consistent",
            checkpoint.size, verified.history, verified.collected
        )?;
    }
    for (witness, size) in &verified.witnessed {
        writeln!(stdout, "witnessed: `{}` cosigned the tree of {size} entries", shown(witness))?;
    }
    if verified.records + verified.erased > 0 {
        writeln!(
            stdout,
            "records: {} match their receipts; {} receipts have none (erased, or written without `--log-records`)",
            verified.records, verified.erased
        )?;
    }
    if verified.collected == 0 && verified.witnessed.is_empty() {
        writeln!(
            stdout,
            "note: no collected checkpoint or witness: a platform holding the log key could have rewritten or cut this log and signed it again; only a checkpoint kept elsewhere shows that"
        )?;
    }
    Ok(EXIT_OK)
}

/// What verification noted that breaks nothing.
fn notes(verified: &flowgate::Verified, stdout: &mut impl Write) -> std::io::Result<()> {
    for note in &verified.notes {
        writeln!(stdout, "note: {}", shown(note))?;
    }
    if verified.unsigned > 0 {
        writeln!(
            stdout,
            "note: {} entries follow the newest checkpoint (a group being written, or a crash mid-write): they are not signed, and the next start cuts them",
            verified.unsigned
        )?;
    }
    Ok(())
}

/// `flowgate audit checkpoint`: the newest checkpoint, signed by the key
/// and held by the log's stored tree, as the note a regulator keeps.
pub fn checkpoint(dir: &Path, key: &Path, mut stdout: impl Write, mut stderr: impl Write) -> anyhow::Result<u8> {
    let key = LogKey::read(key)?;
    let stored = Stored::open(dir).with_context(|| format!("cannot read the decision log `{}`", dir.display()))?;
    let head = match stored.head(Some(&key.public())) {
        Ok(head) => head,
        Err(err) => {
            writeln!(stderr, "refused: {}", shown(&format!("{err}")))?;
            return Ok(EXIT_INVALID);
        }
    };
    let verifier = key.verifier(&head.checkpoint.origin)?;
    if let Err(err) = SignedCheckpoint::open(head.text().as_bytes(), &verifier, &[]) {
        writeln!(stderr, "refused: {}", shown(&err.to_string()))?;
        return Ok(EXIT_INVALID);
    }
    write!(stdout, "{}", head.text())?;
    // For tools that speak signed notes: the key in their form.
    writeln!(stderr, "the log's verifier key: {}", verifier.to_vkey())?;
    Ok(EXIT_OK)
}
