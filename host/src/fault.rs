//! What can go wrong inside a policy while it answers.

/// A policy's failure to answer. The host turns each into a `deny` naming
/// the policy and the fault (fail closed), discards the instance, and counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// The call ran past its deadline (an endless loop, or far too much work).
    #[error("ran past its deadline of {0} ms")]
    Deadline(u64),
    /// The module tried to grow its memory or tables past the cap.
    #[error("tried to grow past its limit of {0} bytes of memory")]
    MemoryLimit(u64),
    /// The module tried to grow a table past the cap.
    #[error("tried to grow a table past its limit of {0} elements")]
    TableLimit(u64),
    /// The wasm stack overflowed (deep recursion).
    #[error("exhausted its stack")]
    StackOverflow,
    /// The module executed `unreachable`; a Rust `panic!` in a policy ends this way.
    #[error("panicked (wasm `unreachable` executed)")]
    Unreachable,
    /// Any other trap (out-of-bounds access, division by zero, ...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The answer could not be read: it points outside memory, is too
    /// large, or holds an invalid effect, obligation, remedy or rule.
    #[error("gave an invalid answer: {0}")]
    BadAnswer(String),
    /// The policy faulted too many times in a row and is not asked any more
    /// until a new version is loaded.
    #[error("is quarantined after {0} consecutive faults")]
    Quarantined(u32),
}
