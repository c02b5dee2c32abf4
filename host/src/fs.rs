//! Every file the host reads or creates goes through this module: it is
//! the log crate's [`flowgate_log::fs`], one module for the host, the
//! decision log and a regulator's verifying tool, re-exported here so the
//! host keeps naming it `crate::fs`.

pub use flowgate_log::fs::*;
