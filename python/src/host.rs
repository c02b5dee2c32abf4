//! `flowgate.Host`: the host `flowgate check` builds, asked from Python.
//!
//! The host is built by `flowgate_cli::check_host` from the same options
//! the CLI takes, so the embedded reference set, a verified directory of
//! bundles, `allow_unsigned`, the isolation level and the decision log load
//! and refuse exactly as `flowgate check` does, with its messages.
//!
//! Every call releases the GIL while it decides, and a `Host` is shared by
//! as many Python threads as call it (the host is `Send + Sync`).
//! `decide_batch` reads Arrow through the C data interface (zero-copy),
//! splits the rows into parts of [`PART_ROWS`] over `threads` threads (by
//! default one per core), and returns one record batch per part, in order.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, PyArrowType, Table, ToPyArrow};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use flowgate::sdk::FlowRecord;

use crate::arrow_in::Rows;
use crate::arrow_out::{Outcome, decisions_batch};
use crate::guard::guard;
use crate::{Error, RecordError};

/// Rows decided together by one thread: a multiple of the host's batch of
/// 256 (so parts split no batch), and small enough that a part's output
/// stays far from Arrow's 2 GiB offsets.
const PART_ROWS: usize = 8192;

/// The longest record `decide` takes, as `flowgate check` takes lines.
const MAX_RECORD_BYTES: usize = 1 << 20;

/// A host: the policies it loaded, asked about flows.
///
/// ```python
/// import flowgate
/// host = flowgate.Host()              # the embedded reference set
/// host.decide({"id": "f-1", "platform": {"id": "meituan"}, "action": "use",
///              "data": {"categories": ["contact"]}, "purpose": "service",
///              "lawful_basis": "contract"})["effect"]   # 'allow'
/// ```
#[pyclass(frozen, module = "flowgate", name = "Host")]
pub(crate) struct Host {
    host: flowgate::Host,
    closed: AtomicBool,
}

#[pymethods]
impl Host {
    /// Loads the policies as `flowgate check` would: `policies=None` is the
    /// embedded reference set; a directory of bundles needs `trust` (a
    /// trust file) or `allow_unsigned=True`. `isolation` is `"per-record"`,
    /// `"per-call"` or `"reuse"` (the default); `log` and `log_key` write a
    /// receipt of every decision (see `docs/receipts.md`). Raises
    /// `flowgate.Error` with the CLI's message when it refuses.
    #[new]
    #[pyo3(signature = (policies=None, trust=None, allow_unsigned=false, isolation=None, log=None, log_key=None))]
    fn new(
        py: Python<'_>,
        policies: Option<PathBuf>,
        trust: Option<PathBuf>,
        allow_unsigned: bool,
        isolation: Option<String>,
        log: Option<PathBuf>,
        log_key: Option<PathBuf>,
    ) -> PyResult<Host> {
        let mut options: Vec<OsString> = Vec::new();
        let mut option = |flag: &str, value: Option<OsString>| {
            if let Some(value) = value {
                options.extend([flag.into(), value]);
            }
        };
        option("--policies", policies.map(Into::into));
        option("--trust", trust.map(Into::into));
        option("--isolation", isolation.map(Into::into));
        option("--log", log.map(Into::into));
        option("--log-key", log_key.map(Into::into));
        if allow_unsigned {
            options.push("--allow-unsigned".into());
        }
        let mut notes = Vec::new();
        let host = py.detach(|| guard(|| flowgate_cli::check_host(&options, &mut notes).map_err(Error::new_err)))?;
        let warnings = py.import("warnings")?;
        for note in String::from_utf8_lossy(&notes).lines() {
            warnings.call_method1("warn", (note,))?;
        }
        Ok(Host { host, closed: AtomicBool::new(false) })
    }

    /// Decides one record (a dict, or its JSON as `str` or `bytes`) and
    /// returns the decision as a dict, equal to the line `flowgate check`
    /// prints for it. Raises `flowgate.RecordError` (a `ValueError`) with
    /// the field-level message for a record that is not valid.
    fn decide(&self, py: Python<'_>, record: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let json = guard(|| record_json(py, record))?;
        let host = &self.host;
        let decided = py.detach(|| {
            guard(|| {
                let record = FlowRecord::from_json(&json).map_err(|err| RecordError::new_err(err.to_string()))?;
                let mut decisions = host
                    .try_evaluate_batch(std::slice::from_ref(&record))
                    .map_err(|err| Error::new_err(format!("{err}; no decision was given")))?;
                Ok(decisions.pop().expect("one decision per record").to_json())
            })
        })?;
        Ok(py.import("json")?.call_method1("loads", (decided,))?.unbind())
    }

    /// Decides every row of a `pyarrow.Table` or `RecordBatch` (anything
    /// with `__arrow_c_stream__`) whose columns are the flow record's
    /// fields (`flowgate.FLOW_SCHEMA`), and returns a `pyarrow.Table` in
    /// input order: `id`, `effect`, `obligations`, `remedies`, `reasons`
    /// and `error` (null, or the field-level message of a row that is not a
    /// valid record; one bad row never fails the batch). `threads` (default:
    /// one per core) decide parts of 8,192 rows each.
    #[pyo3(signature = (table, threads=None))]
    fn decide_batch(&self, py: Python<'_>, table: &Bound<'_, PyAny>, threads: Option<usize>) -> PyResult<Py<PyAny>> {
        let batches = guard(|| import(table))?;
        let threads = threads.unwrap_or_else(cores).max(1);
        let host = &self.host;
        let decided =
            py.detach(|| guard(|| validate(&batches).and_then(|()| decide_batches(host, &batches, threads))))?;
        let table = Table::try_new(decided, crate::arrow_out::decision_schema())
            .map_err(|err| Error::new_err(format!("internal error: {err}")))?;
        Ok(table.into_pyarrow(py)?.unbind())
    }

    /// The content id of the policy set that decides (64 hex digits): the
    /// same for the same signed policies on every machine.
    #[getter]
    fn policy_set(&self) -> String {
        self.host.policy_set().to_string()
    }

    /// The loaded policies: name, version and module digest of each, in name order.
    fn policies(&self) -> Vec<(String, String, String)> {
        self.host
            .policies()
            .iter()
            .map(|status| (status.info.name.clone(), status.info.version.clone(), status.info.digest.to_string()))
            .collect()
    }

    /// Closes the decision log, if any, with a signed checkpoint (as the end
    /// of `flowgate check` does); later decisions then fail. Dropping the
    /// host closes it too. Calling it again does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let host = &self.host;
        py.detach(|| {
            guard(|| match host.decision_log() {
                Some(log) => {
                    log.close().map(drop).map_err(|err| Error::new_err(format!("closing the decision log: {err}")))
                }
                None => Ok(()),
            })
        })
    }

    /// For BENCHMARKS.md: the seconds the Rust library alone
    /// (`flowgate::Host::evaluate_batch`) takes to decide the valid rows of
    /// `table`, read into records beforehand, in the same parts and on the
    /// same threads as `decide_batch`; and how many records that was.
    #[pyo3(signature = (table, threads=None))]
    fn _library_seconds(
        &self,
        py: Python<'_>,
        table: &Bound<'_, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<(f64, usize)> {
        let batches = guard(|| import(table))?;
        let threads = threads.unwrap_or_else(cores).max(1);
        let host = &self.host;
        py.detach(|| {
            guard(|| {
                validate(&batches)?;
                let records: Vec<FlowRecord> = batches
                    .iter()
                    .flat_map(|batch| {
                        let rows = Rows::bind(batch);
                        (0..batch.num_rows()).filter_map(|row| rows.record(row).ok()).collect::<Vec<_>>()
                    })
                    .collect();
                let parts: Vec<&[FlowRecord]> = records.chunks(PART_ROWS).collect();
                let started = Instant::now();
                on_threads(parts.len(), threads, |part| host.evaluate_batch(parts[part]).len());
                Ok((started.elapsed().as_secs_f64(), records.len()))
            })
        })
    }

    /// For BENCHMARKS.md: seconds spent validating, reading rows, deciding
    /// and writing decisions for `table`, one thread, in that order.
    fn _stages(&self, py: Python<'_>, table: &Bound<'_, PyAny>) -> PyResult<(f64, f64, f64, f64)> {
        let batches = guard(|| import(table))?;
        let host = &self.host;
        py.detach(|| {
            guard(|| {
                let t = Instant::now();
                validate(&batches)?;
                let validated = t.elapsed().as_secs_f64();
                let (mut read, mut decided, mut written) = (0.0, 0.0, 0.0);
                for batch in &batches {
                    let rows = Rows::bind(batch);
                    for start in (0..batch.num_rows()).step_by(PART_ROWS) {
                        let range = start..(start + PART_ROWS).min(batch.num_rows());
                        let t = Instant::now();
                        let mut records = Vec::with_capacity(range.len());
                        records.extend(range.clone().filter_map(|row| rows.record(row).ok()));
                        read += t.elapsed().as_secs_f64();
                        let t = Instant::now();
                        let decisions = host.evaluate_batch(&records);
                        decided += t.elapsed().as_secs_f64();
                        let t = Instant::now();
                        let outcomes: Vec<Outcome<'_>> =
                            decisions.into_iter().map(|d| Outcome { id: None, decision: Ok(d) }).collect();
                        let _ = decisions_batch(&outcomes);
                        drop(outcomes);
                        written += t.elapsed().as_secs_f64();
                    }
                }
                Ok((validated, read, decided, written))
            })
        })
    }

    fn __repr__(&self) -> String {
        format!("<flowgate.Host policy_set={} policies={}>", self.host.policy_set(), self.host.policies().len())
    }
}

/// `flowgate.FLOW_SCHEMA`: the flow record as Arrow reads it.
#[pyfunction]
pub(crate) fn flow_schema(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(crate::arrow_in::flow_schema().to_pyarrow(py)?.unbind())
}

/// `flowgate.DECISION_SCHEMA`: the table `decide_batch` returns.
#[pyfunction]
pub(crate) fn decision_schema(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(crate::arrow_out::decision_schema().as_ref().to_pyarrow(py)?.unbind())
}

/// Writes the embedded reference set to `dir` as bundle directories
/// (`DIR/<name>/manifest.toml`, `policy.wasm`), for the tests to sign,
/// tamper with and load as a directory.
#[pyfunction]
pub(crate) fn _write_reference_bundles(dir: PathBuf) -> PyResult<Vec<String>> {
    let mut names = Vec::new();
    for (name, manifest, wasm) in flowgate_reference_set::bundles() {
        let bundle = dir.join(name);
        std::fs::create_dir_all(&bundle)?;
        std::fs::write(bundle.join(flowgate::MANIFEST_FILE), manifest)?;
        std::fs::write(bundle.join(flowgate::MODULE_FILE), wasm)?;
        names.push(name.to_owned());
    }
    Ok(names)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The JSON text of a record given as a dict, `str` or `bytes`.
fn record_json(py: Python<'_>, record: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let json = if record.cast::<PyString>().is_ok() {
        record.extract::<String>()?.into_bytes()
    } else if let Ok(bytes) = record.cast::<PyBytes>() {
        bytes.as_bytes().to_vec()
    } else if record.cast::<PyDict>().is_ok() || record.hasattr("keys")? {
        let kwargs = PyDict::new(py);
        kwargs.set_item("allow_nan", false)?;
        kwargs.set_item("ensure_ascii", false)?;
        let dumped = py.import("json")?.call_method("dumps", (record,), Some(&kwargs));
        match dumped {
            Ok(text) => text.extract::<String>()?.into_bytes(),
            Err(err) if err.is_instance_of::<PyValueError>(py) => {
                return Err(RecordError::new_err(err.value(py).to_string()));
            }
            Err(err) => return Err(err),
        }
    } else {
        let kind = record.get_type().name()?;
        return Err(PyTypeError::new_err(format!("a record is a dict or its JSON text, not `{kind}`")));
    };
    if json.len() > MAX_RECORD_BYTES {
        return Err(RecordError::new_err(format!(
            "a record of {} bytes is longer than the {MAX_RECORD_BYTES} allowed",
            json.len()
        )));
    }
    Ok(json)
}

/// The record batches of a table, a record batch or a stream of them
/// (zero-copy: the arrays stay pyarrow's).
fn import(table: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    let batches = if table.hasattr("__arrow_c_stream__")? {
        let PyArrowType(reader) = table.extract::<PyArrowType<arrow_array::ffi_stream::RecordBatchStreamReader>>()?;
        reader.collect::<Result<Vec<_>, _>>().map_err(|err| PyValueError::new_err(format!("reading Arrow: {err}")))?
    } else if table.hasattr("__arrow_c_array__")? {
        vec![RecordBatch::from_pyarrow_bound(table)?]
    } else {
        let kind = table.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "decide_batch takes a pyarrow.Table or RecordBatch (Arrow's `__arrow_c_stream__`), not `{kind}`"
        )));
    };
    Ok(batches)
}

/// Checks batches whole (offsets, lengths, UTF-8): Arrow from outside is
/// read only once it is known to be well formed. Runs without the GIL.
fn validate(batches: &[RecordBatch]) -> PyResult<()> {
    for batch in batches {
        for column in batch.columns() {
            column
                .to_data()
                .validate_full()
                .map_err(|err| PyValueError::new_err(format!("malformed Arrow data: {err}")))?;
        }
    }
    Ok(())
}

/// Decides every row of `batches`, in parts over `threads` threads: one
/// output batch per part, in input order.
fn decide_batches(host: &flowgate::Host, batches: &[RecordBatch], threads: usize) -> PyResult<Vec<RecordBatch>> {
    let bound: Vec<Rows<'_>> = batches.iter().map(Rows::bind).collect();
    let parts: Vec<(usize, usize, usize)> = batches
        .iter()
        .enumerate()
        .flat_map(|(at, batch)| {
            (0..batch.num_rows())
                .step_by(PART_ROWS)
                .map(move |start| (at, start, (start + PART_ROWS).min(batch.num_rows())))
        })
        .collect();
    let decided = on_threads(parts.len(), threads, |part| {
        let (at, start, end) = parts[part];
        decide_part(host, &bound[at], start..end)
    });
    decided.into_iter().collect()
}

/// Reads, decides and writes the rows `range` of one batch.
fn decide_part(host: &flowgate::Host, rows: &Rows<'_>, range: std::ops::Range<usize>) -> PyResult<RecordBatch> {
    let mut records = Vec::with_capacity(range.len());
    let errors: Vec<Option<String>> =
        range.clone().map(|row| rows.record(row).map(|record| records.push(record)).err()).collect();
    let mut decisions = host
        .try_evaluate_batch(&records)
        .map_err(|err| Error::new_err(format!("{err}; no decision of this batch was given")))?
        .into_iter();
    let outcomes: Vec<Outcome<'_>> = range
        .zip(errors)
        .map(|(row, error)| Outcome {
            id: rows.id(row),
            decision: error.map_or_else(|| Ok(decisions.next().expect("one decision per record")), Err),
        })
        .collect();
    Ok(decisions_batch(&outcomes))
}

/// Runs `work` on every part `0..parts`, spread over `threads` threads
/// (each takes every `threads`-th part), and returns the results in order.
fn on_threads<T: Send>(parts: usize, threads: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.min(parts).max(1);
    if threads == 1 {
        return (0..parts).map(work).collect();
    }
    let mut by_thread: Vec<std::vec::IntoIter<T>> = std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = (0..threads)
            .map(|thread| scope.spawn(move || (thread..parts).step_by(threads).map(work).collect::<Vec<T>>()))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)).into_iter())
            .collect()
    });
    (0..parts).map(|part| by_thread[part % threads].next().expect("every part is done")).collect()
}
