//! Regulators' signing keys, and the decision log's: Ed25519 key pairs in
//! two small text files (`ID.key`, mode 0600; `ID.pub`, `ed25519:` and 64
//! hex digits, the form a trust file pastes in). They are the log crate's
//! [`flowgate_log::keys`], one implementation for bundles and the log,
//! re-exported here.

pub use flowgate_log::keys::{KeyError, PublicKey, SecretKey};
