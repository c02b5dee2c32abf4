//! What can go wrong inside a policy while it answers.

use flowgate_sdk::wire::WireError;

/// A policy's failure to answer. The host turns each into a `deny` naming
/// the policy and the fault (fail closed), discards the instance, and counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// The call ran past its deadline (an endless loop, or far too much work).
    #[error("ran past its deadline of {0} ms")]
    Deadline(u64),
    /// The module tried to grow its memory past the cap.
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
    /// What the guest handed back could not be used.
    #[error("gave an invalid answer: {0}")]
    BadAnswer(AnswerError),
    /// The record carries a word the policy's vocabulary lacks (it was
    /// built against an older SDK), so it was not asked: never handed the
    /// word as another one, it counts as a deny. Not held against the
    /// policy's health: the gap is in the vocabulary, not in the policy.
    #[error(
        "does not know the word `{word}` of `{field}` (it was built against an older vocabulary), so it was not asked"
    )]
    UnknownWord {
        /// The record field holding the word.
        field: &'static str,
        /// The word, as this host spells it.
        word: &'static str,
    },
    /// The call's whole budget (instances started, the call, its retries
    /// and its recheck together: a small multiple of the deadline) was
    /// spent before this record was answered, so it was not asked. Not held
    /// against the policy's health: the records that spent it were.
    #[error("was not asked: the call's budget of {0} ms was spent on other records")]
    BudgetSpent(u64),
    /// The policy is quarantined: it is not asked any more until a new
    /// version is loaded.
    #[error("is quarantined: {0}")]
    Quarantined(Quarantine),
}

/// Why a policy was quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Quarantine {
    /// It faulted on too many distinct records (see `HostBuilder::quarantine_after`).
    #[error("{0} distinct records made it fault within the last {window}", window = 2 * u64::from(*.0))]
    Faults(u32),
    /// Asked again in a fresh instance (records picked at random, in a
    /// random order), it answered a record differently, or faulted: its
    /// answers depend on earlier records or on which instance answers.
    #[error(
        "it answered a record differently in a fresh instance, or faulted there, so its answers depend on earlier records"
    )]
    Nondeterministic,
    /// Its signatures no longer meet the trust file (a key was revoked or
    /// expired): every flow in its scope is denied until a valid version arrives.
    #[error(
        "its signatures no longer meet the trust file; flows in its scope are denied until a valid version arrives"
    )]
    Untrusted,
}

/// How a guest's answer (or a buffer it handed the host) was unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The answer points outside the guest's memory.
    #[error("it points outside memory ({len} bytes at {address:#x})")]
    OutsideMemory {
        /// Where the answer claims to start.
        address: usize,
        /// Its claimed length.
        len: usize,
    },
    /// The answer is longer than any honest answer can be.
    #[error("{len} bytes, more than the {cap} allowed")]
    TooLarge {
        /// Its claimed length.
        len: usize,
        /// The most the host reads.
        cap: usize,
    },
    /// The input buffer the guest offered lies outside its memory.
    #[error("its input buffer at {address:#x} lies outside its memory")]
    InputOutsideMemory {
        /// Where the guest put its buffer.
        address: usize,
    },
    /// The input would not fit the ABI's 32-bit lengths.
    #[error("input of {0} bytes is larger than 2 GiB")]
    InputTooLarge(usize),
    /// Not one answer per record.
    #[error("{found} answers for {expected} records")]
    WrongCount {
        /// How many answers the guest gave.
        found: usize,
        /// How many records it was handed.
        expected: usize,
    },
    /// An answer names a rule the policy's table does not have.
    #[error("it names a rule beyond its table of {rules}")]
    UnknownRule {
        /// How many rules the table has.
        rules: usize,
    },
    /// An answer does not read: an unknown effect, obligation or remedy, a
    /// reserved byte that is not zero, or parts that contradict the effect.
    #[error("{0}")]
    Malformed(WireError),
    /// An export checked at load could not be found on a new instance.
    #[error("export `{0}` vanished after the load check")]
    MissingExport(&'static str),
    /// A new instance refused the configuration its first instance accepted.
    #[error("it refused its configuration on a new instance: {0}")]
    ConfigRefused(String),
}
