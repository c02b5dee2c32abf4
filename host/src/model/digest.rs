//! The SHA-256 digest that identifies modules, bundles, cache entries,
//! records and the decision log's tree: the log crate's
//! [`flowgate_log::Digest`], one type for both, re-exported here.

pub use flowgate_log::Digest;
