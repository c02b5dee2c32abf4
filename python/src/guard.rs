//! Panics stop at the boundary: Python code that calls Flowgate (a Spark
//! executor deciding a partition, say) gets an exception it can catch with
//! `except Exception`, never an aborted interpreter or pyo3's
//! `PanicException`, which derives from `BaseException`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::PyResult;

use crate::Error;

/// Runs `f`, turning a panic into `flowgate.Error("internal error: ...")`.
///
/// Nothing the host promises panics on any input; this is the last line,
/// not the error path.
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Err(Error::new_err(format!("internal error: {message}")))
    })
}
