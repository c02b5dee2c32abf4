//! The `flowgate` commands, one module each, named for what they do: the
//! deciding commands (`check`, `serve`, `policies`), the author's
//! (`new`, `build`, `test`, `reference`), the regulator's (`key new`, `sign`, `verify`)
//! and the auditor's (`audit ...`, `digest`).

pub(crate) mod check;
pub mod serve;
pub(crate) mod policies;
pub(crate) mod new;
pub(crate) mod reference;
pub(crate) mod build;
pub(crate) mod test;
pub(crate) mod signing;
pub(crate) mod verify;
pub(crate) mod audit;
pub(crate) mod digest;
