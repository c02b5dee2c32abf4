//! A decision log verified in parts, so Spark can spread them over
//! executors: list the log's units, verify each unit alone (anywhere the
//! log directory is readable), join the small results on the driver.
//!
//! This is the one adapter between the log's format and `flowgate.spark`,
//! which sees units only as opaque strings and results as small dicts
//! whose `state` it hands back to [`join_log_units`] untouched. Today a
//! unit is a segment (`docs/receipts.md`): `flowgate::Audit::verify_segment`
//! starts it from the last receipt of the segment before, and
//! `flowgate::Audit::join` gives the verdict `flowgate audit verify` gives.
//! When the log becomes a Merkle tree, a unit becomes a subtree (its tiles
//! or entry bundle), its result the subtree's hash, and the join the root
//! checked against the signed checkpoint: these three functions change,
//! their Python signatures need not.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Value, json};

use flowgate::{Audit, Break, BreakKind, Checkpoint, PublicKey, SegmentVerified, Verified};

use crate::Error;
use crate::guard::guard;

/// The units of the decision log in `dir`, in log order (today: its
/// segments' numbers, as strings).
#[pyfunction]
pub(crate) fn log_units(py: Python<'_>, dir: PathBuf) -> PyResult<Vec<String>> {
    py.detach(|| {
        guard(|| {
            let audit = open(&dir)?;
            Ok(audit.segments().map(|segment| segment.to_string()).collect())
        })
    })
}

/// Verifies one unit of the log in `dir` against the log's public key
/// (the text of `ID.pub`) and the collected checkpoints (the texts of the
/// files a regulator kept).
/// Returns `{"unit", "receipts", "broken", "state"}`: `broken` is the first
/// broken place found in the unit (or None), `state` what
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
    let key = public_key(key)?;
    let collected = collected(&checkpoints)?;
    let segment: u64 = unit.parse().map_err(|_| PyValueError::new_err(format!("`{unit}` is not a unit of a log")))?;
    let part = py.detach(|| {
        guard(|| open(&dir)?.verify_segment(segment, &key, &collected).map_err(|err| Error::new_err(err.to_string())))
    })?;
    let result = PyDict::new(py);
    result.set_item("unit", unit)?;
    result.set_item("receipts", part.verified.receipts)?;
    result.set_item("broken", part.verified.broken.as_ref().map(ToString::to_string))?;
    result.set_item("state", state(&part).to_string())?;
    Ok(result.unbind())
}

/// Joins the `state`s of every unit of a log into the verdict `flowgate
/// audit verify` gives: `{"intact", "broken", "receipts", "segments",
/// "checkpoints", "collected", "records", "erased", "torn", "open"}`, with
/// `broken` the first broken place in log order, worded as the CLI words it.
#[pyfunction]
#[pyo3(signature = (key, states, checkpoints=Vec::new()))]
pub(crate) fn join_log_units(
    py: Python<'_>,
    key: &str,
    states: Vec<String>,
    checkpoints: Vec<String>,
) -> PyResult<Py<PyDict>> {
    let key = public_key(key)?;
    let collected = collected(&checkpoints)?;
    let parts = states.iter().map(|text| part(text)).collect::<PyResult<Vec<_>>>()?;
    let verified = Audit::join(&key, &collected, parts);
    let result = PyDict::new(py);
    result.set_item("intact", verified.broken.is_none())?;
    result.set_item("broken", verified.broken.as_ref().map(ToString::to_string))?;
    result.set_item("receipts", verified.receipts)?;
    result.set_item("segments", verified.segments)?;
    result.set_item("checkpoints", verified.checkpoints)?;
    result.set_item("collected", verified.collected)?;
    result.set_item("records", verified.records)?;
    result.set_item("erased", verified.erased)?;
    result.set_item("torn", verified.torn)?;
    result.set_item("open", verified.open)?;
    Ok(result.unbind())
}

fn open(dir: &std::path::Path) -> PyResult<Audit> {
    Audit::open(dir).map_err(|err| Error::new_err(format!("cannot read the decision log `{}`: {err}", dir.display())))
}

fn public_key(text: &str) -> PyResult<PublicKey> {
    text.parse().map_err(|err: String| PyValueError::new_err(format!("the log key: {err}")))
}

/// The checkpoints in the collected files' texts (today one JSON line
/// each, as `flowgate audit checkpoint` prints them; a file may hold many).
fn collected(texts: &[String]) -> PyResult<Vec<Checkpoint>> {
    texts
        .iter()
        .flat_map(|text| text.lines())
        .filter(|line| !line.trim().is_empty())
        .map(|line| Checkpoint::parse(line.trim().as_bytes()).map_err(|err| PyValueError::new_err(err.to_string())))
        .collect()
}

/// A unit's result as JSON, for the driver.
fn state(part: &SegmentVerified) -> Value {
    let found = &part.verified;
    let broken = found.broken.as_ref().map(|broken| {
        json!({"kind": broken.kind.to_string(), "segment": broken.segment, "line": broken.line,
               "seq": broken.seq, "detail": broken.detail})
    });
    json!({"segment": part.segment, "head": part.head, "collected": part.collected,
           "receipts": found.receipts, "checkpoints": found.checkpoints, "records": found.records,
           "erased": found.erased, "torn": found.torn, "open": found.open, "broken": broken})
}

/// A unit's result read back from [`state`].
fn part(text: &str) -> PyResult<SegmentVerified> {
    let bad = || PyValueError::new_err("not the state of a unit of a decision log");
    let value: Value = serde_json::from_str(text).map_err(|_| bad())?;
    let number = |name: &str| value.get(name).and_then(Value::as_u64).ok_or_else(bad);
    let broken = match value.get("broken") {
        None | Some(Value::Null) => None,
        Some(broken) => {
            let field = |name: &str| broken.get(name).and_then(Value::as_u64).ok_or_else(bad);
            let kind = match broken.get("kind").and_then(Value::as_str).ok_or_else(bad)? {
                "edited" => BreakKind::Edited,
                "deleted" => BreakKind::Deleted,
                "inserted" => BreakKind::Inserted,
                "reordered" => BreakKind::Reordered,
                "truncated" => BreakKind::Truncated,
                "forged checkpoint" => BreakKind::ForgedCheckpoint,
                _ => return Err(bad()),
            };
            Some(Break {
                kind,
                segment: field("segment")?,
                line: field("line")?,
                seq: broken.get("seq").and_then(Value::as_u64),
                detail: broken.get("detail").and_then(Value::as_str).ok_or_else(bad)?.to_owned(),
            })
        }
    };
    let torn = value.get("torn").and_then(Value::as_array).and_then(|pair| match pair.as_slice() {
        [segment, bytes] => Some((segment.as_u64()?, bytes.as_u64()?)),
        _ => None,
    });
    let collected = value.get("collected").and_then(Value::as_array).ok_or_else(bad)?;
    Ok(SegmentVerified {
        segment: number("segment")?,
        head: number("head")?,
        collected: collected.iter().map(|count| count.as_u64().ok_or_else(bad)).collect::<PyResult<_>>()?,
        verified: Verified {
            receipts: number("receipts")?,
            segments: 1,
            checkpoints: number("checkpoints")?,
            records: number("records")?,
            erased: number("erased")?,
            torn,
            open: value.get("open").and_then(Value::as_bool).ok_or_else(bad)?,
            broken,
            ..Verified::default()
        },
    })
}
