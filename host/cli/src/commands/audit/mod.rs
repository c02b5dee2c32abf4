//! `flowgate audit`: a decision log read back, proved from, and witnessed,
//! by the regulator, the platform or the person a decision concerns.
//! Nothing here writes to a log.
//!
//! - `verify LOG --key LOG.pub [--checkpoints FILE...] [--witness W.pub...]`:
//!   every entry, the tree, every checkpoint; exit 1 naming what is broken;
//! - `checkpoint LOG --key LOG.pub`: the newest checkpoint, checked, to collect;
//! - `prove LOG --seq N | --flow ID`: an inclusion proof, O(log n) reads;
//! - `check PROOF --key LOG.pub [--witness W.pub...] [--from OLD]`: a proof
//!   checked offline;
//! - `consistency LOG [--from OLD]`: a consistency proof from an older checkpoint;
//! - `witness --key W.key --log-key LOG.pub --state DIR PROOF`: cosign a
//!   checkpoint consistent with the last one cosigned; `witness-key`;
//! - `stats LOG`, `replay LOG`: counts, and kept records decided again.
//!
//! Everything read is from outside: files are read within caps, never
//! through a link; text shown is escaped. Exit status 0: done, 1: broken
//! or refused, 2: a usage or input error.

pub(crate) mod verify;
pub(crate) mod prove;
pub(crate) mod witness;
pub(crate) mod replay;

use std::path::Path;

use anyhow::Context;
use flowgate::PublicKey;
use flowgate::transparency::note::{Verifier, split_notes};

/// The most bytes of a checkpoint or proof file read.
pub(crate) const MAX_DOCUMENT_BYTES: u64 = 1 << 20;

/// A file of text, read within `cap` bytes, never through a link.
pub(crate) fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    let bytes = flowgate::transparency::fs::read_capped(path, MAX_DOCUMENT_BYTES)
        .with_context(|| format!("cannot read the {what}"))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("the {what} `{}` is not UTF-8 text", path.display()))
}

/// The signed notes of a file (one or more, as `audit checkpoint` and
/// `audit witness` print them), each as its bytes.
pub(crate) fn read_notes(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = read_text(path, "checkpoint file")?;
    let notes: Vec<Vec<u8>> = split_notes(&text).into_iter().map(|note| note.as_bytes().to_vec()).collect();
    anyhow::ensure!(!notes.is_empty(), "`{}` holds no checkpoint", path.display());
    Ok(notes)
}

/// The log's public key, as `flowgate key new` writes it (`ed25519:` and
/// hex) or as a signed-note verifier key (`origin+keyid+base64`).
#[derive(Debug, Clone)]
pub(crate) enum LogKey {
    /// A key without a name: it verifies the checkpoints of any origin.
    Plain(PublicKey),
    /// A verifier key, for its origin only.
    Named(Verifier),
}

impl LogKey {
    pub(crate) fn read(path: &Path) -> anyhow::Result<LogKey> {
        let text = read_text(path, "log key")?;
        if let Some(key) = PublicKey::parse(&text) {
            return Ok(LogKey::Plain(key));
        }
        let verifier = Verifier::parse_vkey(&text).map_err(|err| {
            anyhow::anyhow!(
                "`{}` is not a log key (`ed25519:` and 64 hex digits, or a verifier key `origin+keyid+base64`): {err}",
                path.display()
            )
        })?;
        anyhow::ensure!(
            verifier.kind() == flowgate::transparency::note::SignatureKind::Ed25519,
            "`{}` is a witness's key, not a log's",
            path.display()
        );
        Ok(LogKey::Named(verifier))
    }

    /// The public key.
    pub(crate) fn public(&self) -> PublicKey {
        match self {
            LogKey::Plain(key) => *key,
            LogKey::Named(verifier) => *verifier.public_key(),
        }
    }

    /// The verifier of checkpoints of `origin`: the key under the origin's
    /// name (a named key keeps its own name, and then fails other origins).
    pub(crate) fn verifier(&self, origin: &str) -> anyhow::Result<Verifier> {
        match self {
            LogKey::Plain(key) => Verifier::ed25519(origin, *key)
                .map_err(|err| anyhow::anyhow!("`{}` is not a log's origin: {err}", flowgate::escape(origin, 256))),
            LogKey::Named(verifier) => Ok(verifier.clone()),
        }
    }
}

/// Witnesses' verifier keys (`name+keyid+base64`, cosignature type).
pub(crate) fn witness_keys(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<Verifier>> {
    paths
        .iter()
        .map(|path| {
            let text = read_text(path, "witness key")?;
            let verifier = Verifier::parse_vkey(&text)
                .map_err(|err| anyhow::anyhow!("`{}` is not a witness's verifier key: {err}", path.display()))?;
            anyhow::ensure!(
                verifier.kind() == flowgate::transparency::note::SignatureKind::Cosignature,
                "`{}` is not a witness's key (its type is not a cosignature's)",
                path.display()
            );
            Ok(verifier)
        })
        .collect()
}

/// Text from outside, for a message.
pub(crate) fn shown(text: &str) -> String {
    flowgate::escape(text, 4096)
}
