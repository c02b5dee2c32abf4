//! `flowgate._flowgate`: the host as a Python extension module, under the
//! pure-Python package `flowgate` (`python/flowgate/`).
//!
//! Data teams keep flows in Arrow and Parquet and work in Python and Spark;
//! this module lets them decide flows in-process, on dicts one at a time or
//! on Arrow batches without a Python object per row, with exactly the
//! decisions `flowgate check` gives, because it is the same host built by
//! the same code as the CLI's (`flowgate_cli::check_host`).
//!
//! - [`host`]: the `Host` class (`decide`, `decide_batch`);
//! - [`arrow_in`]: Arrow columns to flow records, a field-level error per bad row;
//! - [`arrow_out`]: decisions to Arrow columns;
//! - [`audit`]: one unit of a decision log verified alone, for Spark to spread;
//! - [`guard`]: every call into Rust runs under it, so a panic is a Python
//!   exception, never an abort.
//!
//! Built by maturin (`pip install ./python`) as one abi3 wheel for every
//! CPython from 3.9; it shares the workspace's target directory and
//! `Cargo.lock` with the CLI.

use pyo3::prelude::*;

mod arrow_in;
mod arrow_out;
mod audit;
mod guard;
mod host;

pyo3::create_exception!(
    flowgate,
    Error,
    pyo3::exceptions::PyException,
    "The host refused: policies that cannot be loaded or verified, a decision log that cannot be written. The message is the CLI's."
);
pyo3::create_exception!(
    flowgate,
    RecordError,
    pyo3::exceptions::PyValueError,
    "A record that is not a valid flow record: the field-level message `flowgate check` prints for it."
);

/// The extension module: `Host`, the two exceptions, the flow schema and
/// the decision log's units.
#[pymodule]
fn _flowgate(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<host::Host>()?;
    module.add("Error", py.get_type::<Error>())?;
    module.add("RecordError", py.get_type::<RecordError>())?;
    module.add_function(wrap_pyfunction!(host::flow_schema, module)?)?;
    module.add_function(wrap_pyfunction!(host::decision_schema, module)?)?;
    module.add_function(wrap_pyfunction!(host::_write_reference_bundles, module)?)?;
    module.add_function(wrap_pyfunction!(audit::log_units, module)?)?;
    module.add_function(wrap_pyfunction!(audit::verify_log_unit, module)?)?;
    module.add_function(wrap_pyfunction!(audit::join_log_units, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
