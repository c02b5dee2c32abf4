//! A decision log verified in parts, so Spark can spread them over
//! executors: list the log's units, verify each unit alone (anywhere the
//! log directory is readable), join the small results on the driver.
//!
//! This is the one adapter between the log's format and `flowgate.spark`,
//! which sees units only as opaque strings and results as small dicts
//! whose `state` it hands back to [`join_log_units`] untouched. A unit is
//! one of the chunks `flowgate audit verify` checks on its cores: 65,536
//! entries, a perfect subtree of the log's Merkle tree
//! (`docs/receipts.md`). `flowgate::Audit::verify_unit` checks a chunk's
//! entries, stored hashes, index offsets and kept records and keeps its
//! subtree hashes; `flowgate::Audit::verify_joined` joins them in order
//! (the tree, time order and policy-set references across chunks, every
//! checkpoint against the tree's root at its size) and gives the verdict
//! `flowgate audit verify` gives, worded the same. A state that does not
//! fit its place (another log, other checkpoints) is verified again on the
//! driver rather than trusted.

use std::path::{Path, PathBuf};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Value, json};

use flowgate::transparency::note::split_notes;
use flowgate::{Audit, PublicKey, UnitVerified, VerifyOptions};

use crate::Error;
use crate::guard::guard;

/// The most bytes of one unit's state: a chunk's report is at most a few
/// hundred kilobytes (its policy sets' places, its first 64 problems).
const MAX_STATE_BYTES: usize = 16 << 20;

/// The units of the decision log in `dir`, in log order (its chunks'
/// numbers, as strings; at least one).
#[pyfunction]
pub(crate) fn log_units(py: Python<'_>, dir: PathBuf) -> PyResult<Vec<String>> {
    py.detach(|| {
        guard(|| {
            let audit = open(&dir)?;
            let units = audit.units().map_err(|err| Error::new_err(err.to_string()))?;
            Ok(units.iter().map(ToString::to_string).collect())
        })
    })
}

/// Verifies one unit of the log in `dir` against the log's public key
/// (the text of `ID.pub`) and the collected checkpoints (the texts of the
/// files a regulator kept).
/// Returns `{"unit", "entries", "receipts", "broken", "state"}`: `broken`
/// is the gravest problem found in the unit alone (or None), `state` what
/// `join_log_units` needs.
#[pyfunction]
#[pyo3(signature = (dir, unit, key, checkpoints=Vec::new()))]
pub(crate) fn verify_log_unit(
    py: Python<'_>,
    dir: PathBuf,
    unit: &str,
    key: &str,
    checkpoints: Vec<String>,
) -> PyResult<Py<PyDict>> {
    let options = options(key, &checkpoints)?;
    let chunk: u64 = unit.parse().map_err(|_| PyValueError::new_err(format!("`{unit}` is not a unit of a log")))?;
    let part =
        py.detach(|| guard(|| open(&dir)?.verify_unit(options, chunk).map_err(|err| Error::new_err(err.to_string()))))?;
    let state = json!({"dir": dir, "unit": part});
    let result = PyDict::new(py);
    result.set_item("unit", unit)?;
    result.set_item("entries", part.entries())?;
    result.set_item("receipts", part.receipts())?;
    result.set_item("broken", part.broken().as_ref().map(ToString::to_string))?;
    result.set_item("state", state.to_string())?;
    Ok(result.unbind())
}

/// Joins the `state`s of every unit of a log into the verdict `flowgate
/// audit verify` gives: `{"intact", "broken", "breaks", "entries",
/// "receipts", "policy_sets", "units", "root", "checkpoint", "history",
/// "collected", "records", "erased", "unsigned", "open", "notes"}`, with
/// `broken` the gravest problem and `breaks` the first ones, worded as the
/// CLI words them. The log is read on the driver too: its checkpoints,
/// the hashes stored above a unit, and any unit without a fitting state.
#[pyfunction]
#[pyo3(signature = (key, states, checkpoints=Vec::new()))]
pub(crate) fn join_log_units(
    py: Python<'_>,
    key: &str,
    states: Vec<String>,
    checkpoints: Vec<String>,
) -> PyResult<Py<PyDict>> {
    let options = options(key, &checkpoints)?;
    let mut dir: Option<PathBuf> = None;
    let mut parts = Vec::with_capacity(states.len());
    for text in &states {
        let (from, part) = part(text)?;
        match &dir {
            Some(dir) if *dir != from => {
                return Err(PyValueError::new_err(format!(
                    "the states are of two logs, `{}` and `{}`",
                    dir.display(),
                    from.display()
                )));
            }
            _ => dir = Some(from),
        }
        parts.push(part);
    }
    let Some(dir) = dir else {
        return Err(PyValueError::new_err("no state to join: every log has at least one unit"));
    };
    let units = parts.len();
    let verified = py.detach(|| {
        guard(|| open(&dir)?.verify_joined(options, parts).map_err(|err| Error::new_err(err.to_string())))
    })?;
    let result = PyDict::new(py);
    result.set_item("intact", verified.broken.is_none())?;
    result.set_item("broken", verified.broken.as_ref().map(ToString::to_string))?;
    result.set_item("breaks", verified.breaks.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    result.set_item("entries", verified.entries)?;
    result.set_item("receipts", verified.receipts)?;
    result.set_item("policy_sets", verified.policy_sets)?;
    result.set_item("units", units)?;
    result.set_item("root", verified.root.to_base64())?;
    result.set_item("checkpoint", verified.checkpoint.as_ref().map(|c| c.size))?;
    result.set_item("history", verified.history)?;
    result.set_item("collected", verified.collected)?;
    result.set_item("records", verified.records)?;
    result.set_item("erased", verified.erased)?;
    result.set_item("unsigned", verified.unsigned)?;
    result.set_item("open", verified.open)?;
    result.set_item("notes", verified.notes)?;
    Ok(result.unbind())
}

fn open(dir: &Path) -> PyResult<Audit> {
    Audit::open(dir).map_err(|err| Error::new_err(format!("cannot read the decision log `{}`: {err}", dir.display())))
}

/// What a log is verified against: its key (as `ID.pub` holds it) and the
/// checkpoints in the collected files' texts (signed notes, as `flowgate
/// audit checkpoint` prints them; a file may hold many).
fn options(key: &str, checkpoints: &[String]) -> PyResult<VerifyOptions<'static>> {
    let key = PublicKey::parse(key).ok_or_else(|| {
        PyValueError::new_err("the log key: not a public key (`ed25519:` and 64 hex digits, as `ID.pub` holds it)")
    })?;
    let mut options = VerifyOptions::new(key);
    for text in checkpoints {
        let notes = split_notes(text);
        if notes.is_empty() {
            return Err(PyValueError::new_err("a collected checkpoint file holds no checkpoint"));
        }
        options.collected.extend(notes.into_iter().map(|note| note.as_bytes().to_vec()));
    }
    Ok(options)
}

/// A unit's state read back: the log it is of, and the unit.
fn part(text: &str) -> PyResult<(PathBuf, UnitVerified)> {
    let bad = || PyValueError::new_err("not the state of a unit of a decision log");
    if text.len() > MAX_STATE_BYTES {
        return Err(bad());
    }
    let value: Value = serde_json::from_str(text).map_err(|_| bad())?;
    let dir = value.get("dir").and_then(Value::as_str).ok_or_else(bad)?;
    let unit = value.get("unit").cloned().ok_or_else(bad)?;
    Ok((PathBuf::from(dir), serde_json::from_value(unit).map_err(|_| bad())?))
}
