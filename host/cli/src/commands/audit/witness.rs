//! `flowgate audit witness` and `flowgate audit witness-key`: the regulator
//! as witness ([`flowgate::transparency::witness`]).
//!
//! The witness keeps, per log origin, the last checkpoint it cosigned, in a
//! state directory of its own (locked while it runs, replaced atomically).
//! Given a consistency proof from that checkpoint to a newer one (what
//! `audit consistency --from` prints), it cosigns the newer one and keeps
//! it; a smaller tree, another root for a size it cosigned, or a proof
//! that does not verify is refused, exit 1, and nothing is kept.

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use flowgate::SecretKey;
use flowgate::transparency::checkpoint::Checkpoint;
use flowgate::transparency::cosignature::Cosigner;
use flowgate::transparency::fs;
use flowgate::transparency::note::{Note, SignatureKind, SignerKey, is_valid_name};
use flowgate::transparency::proof::ConsistencyProof;
use flowgate::transparency::witness::{Accepted, Submission, Witness};
use flowgate::transparency::witness_state::StateDir;

use super::{LogKey, read_text, shown};
use crate::{EXIT_INVALID, EXIT_OK};

/// `flowgate audit witness`: prints the checkpoint with this witness's
/// cosignature added, or refuses.
pub fn witness(
    key: &Path,
    log_key: &Path,
    state: &Path,
    proof: &Path,
    mut stdout: impl Write,
    mut stderr: impl Write,
) -> anyhow::Result<u8> {
    let witness_key = read_witness_key(key)?;
    let log_key = LogKey::read(log_key)?;
    let refused = |stderr: &mut dyn Write, problem: &str| -> anyhow::Result<u8> {
        writeln!(stderr, "refused: {}", shown(problem))?;
        Ok(EXIT_INVALID)
    };
    let document = match ConsistencyProof::from_json(read_text(proof, "proof")?.as_bytes()) {
        Ok(document) => document,
        Err(err) => return refused(&mut stderr, &err.to_string()),
    };
    let origin = match Note::parse(document.checkpoint.as_bytes()).map(|note| Checkpoint::from_body(note.text())) {
        Ok(Ok(checkpoint)) if checkpoint.size == document.new_size => checkpoint.origin,
        Ok(Ok(checkpoint)) => {
            let problem = format!("the proof is to size {}, its checkpoint has {}", document.new_size, checkpoint.size);
            return refused(&mut stderr, &problem);
        }
        Ok(Err(err)) => return refused(&mut stderr, &err.to_string()),
        Err(err) => return refused(&mut stderr, &format!("not a signed note: {err}")),
    };
    let log = log_key.verifier(&origin)?;
    let proof = match document.hashes() {
        Ok(proof) => proof,
        Err(err) => return refused(&mut stderr, &err.to_string()),
    };
    let cosigner = Cosigner::new(&witness_key.name, witness_key.key.clone()).map_err(|err| anyhow::anyhow!("{err}"))?;
    let witness = Witness::new(cosigner);
    let state = StateDir::open(state).with_context(|| format!("the witness state `{}`", state.display()))?;
    let last = match state.load(&origin)? {
        None => None,
        Some(bytes) => match witness.read_state(&bytes, &log) {
            Ok(last) => Some(last),
            Err(refusal) => return refused(&mut stderr, &refusal.to_string()),
        },
    };
    let submission =
        Submission { old_size: document.old_size, proof, checkpoint: document.checkpoint.clone().into_bytes() };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let cosigned = match witness.add_checkpoint(last.as_ref(), &log, &submission, now) {
        Ok(cosigned) => cosigned,
        Err(refusal) => return refused(&mut stderr, &refusal.to_string()),
    };
    let text = cosigned.note.to_text();
    state
        .store(&origin, &text)
        .with_context(|| format!("keeping the witness state in `{}`", state.path(&origin).display()))?;
    let how = match cosigned.accepted {
        Accepted::FirstSeen => "the first checkpoint seen of this log".to_owned(),
        Accepted::Same => "the same checkpoint as last time".to_owned(),
        Accepted::Extended { from } => format!("consistent with the one of {from} entries cosigned last"),
    };
    writeln!(stderr, "cosigned `{}` at {} entries: {how}", shown(&origin), cosigned.checkpoint.size)?;
    write!(stdout, "{text}")?;
    Ok(EXIT_OK)
}

/// Reads a witness's key: the signed-note form `PRIVATE+KEY+name+id+base64`
/// of a cosignature key, readable by its owner only.
fn read_witness_key(path: &Path) -> anyhow::Result<SignerKey> {
    let bytes = fs::read_capped(path, 4096).context("cannot read the witness key")?;
    fs::check_private(path, &fs::metadata(path)?, true)?;
    let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("`{}` is not a witness key", path.display()))?;
    let key = SignerKey::parse(&text).map_err(|err| {
        anyhow::anyhow!("`{}` is not a witness key (`PRIVATE+KEY+name+keyid+base64`): {err}", path.display())
    })?;
    anyhow::ensure!(
        key.kind == SignatureKind::Cosignature,
        "`{}` is not a witness's (cosignature) key",
        path.display()
    );
    Ok(key)
}

/// `flowgate audit witness-key ID --name NAME`: writes `ID.key` (secret,
/// 0600) and `ID.pub` (its verifier key, for `--witness`).
pub fn new_key(id: &str, name: &str, out: &Path, mut stderr: impl Write) -> anyhow::Result<u8> {
    anyhow::ensure!(
        is_valid_name(name),
        "`{}` is not a witness name: no spaces or `+` (e.g. `regulator.example/witness`)",
        shown(name)
    );
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !id.starts_with('.');
    anyhow::ensure!(valid, "`{}` is not a key id: use letters, digits, `-`, `_` and `.`", shown(id));
    fs::create_private_dir(out, 0o755)?;
    let key = SignerKey { name: name.to_owned(), kind: SignatureKind::Cosignature, key: SecretKey::generate()? };
    let (secret, public) = (out.join(format!("{id}.key")), out.join(format!("{id}.pub")));
    for path in [&secret, &public] {
        anyhow::ensure!(
            std::fs::symlink_metadata(path).is_err(),
            "`{}` exists already; keys are never overwritten",
            path.display()
        );
    }
    fs::write_new(&secret, 0o600, format!("{}\n", key.to_text()).as_bytes())?;
    let vkey = key.verifier().to_vkey();
    fs::write_new(&public, 0o644, format!("{vkey}\n").as_bytes())?;
    writeln!(stderr, "wrote `{}` (secret: keep it private) and `{}`:", secret.display(), public.display())?;
    writeln!(stderr, "{vkey}")?;
    Ok(EXIT_OK)
}
