//! What happens to the policy set, for the embedding program to log or act on.

use std::fmt;
use std::sync::Arc;

use crate::model::{Digest, PolicyInfo, escape};

/// The longest origin or reason a log line carries.
const MAX_LOGGED: usize = 4096;

/// A change to the active policy set, or a version that was refused.
///
/// Subscribe with [`Host::subscribe`](crate::Host::subscribe); the
/// `Display` form is one log line, with any text from outside the host
/// (paths, a policy's own messages) escaped, so it cannot forge another.
#[derive(Debug, Clone)]
pub enum PolicyEvent {
    /// A policy version passed every check and now serves.
    Activated {
        /// The new version.
        policy: Arc<PolicyInfo>,
        /// The policy set it is part of.
        policy_set: u64,
    },
    /// A version was refused; whatever served before keeps serving.
    Rejected {
        /// Where it came from: a bundle's directory (or label), a trust file.
        origin: String,
        /// The policy's name and version, when a bundle was read that far.
        policy: Option<String>,
        /// Why, with every cause.
        reason: String,
    },
    /// The trust policy was replaced (every active policy verified again).
    TrustChanged {
        /// The digest of the new trust file.
        digest: Digest,
    },
    /// A policy no longer meets the trust policy: it denies every flow in
    /// its scope until a valid version arrives.
    Deactivated {
        /// Its name.
        name: String,
        /// Which rule of the trust policy it breaks now.
        reason: String,
    },
    /// A policy was removed.
    Removed {
        /// Its name.
        name: String,
        /// The policy set without it.
        policy_set: u64,
    },
}

impl fmt::Display for PolicyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyEvent::Activated { policy, policy_set } => write!(
                f,
                "activated `{}` {} (sha256 {}) in policy set {policy_set}",
                escape(&policy.name, MAX_LOGGED),
                escape(&policy.version, MAX_LOGGED),
                policy.digest.short()
            ),
            PolicyEvent::Rejected { origin, policy: Some(policy), reason } => write!(
                f,
                "rejected {} from `{}`: {}; the previous version keeps serving",
                escape(policy, MAX_LOGGED),
                escape(origin, MAX_LOGGED),
                escape(reason, MAX_LOGGED)
            ),
            PolicyEvent::Rejected { origin, policy: None, reason } => write!(
                f,
                "rejected `{}`: {}; the previous version keeps serving",
                escape(origin, MAX_LOGGED),
                escape(reason, MAX_LOGGED)
            ),
            PolicyEvent::TrustChanged { digest } => {
                write!(f, "trust file (sha256 {}) in force; every active policy verified again", digest.short())
            }
            PolicyEvent::Deactivated { name, reason } => write!(
                f,
                "deactivated `{}`: {}; every flow in its scope is denied until a valid version arrives",
                escape(name, MAX_LOGGED),
                escape(reason, MAX_LOGGED)
            ),
            PolicyEvent::Removed { name, policy_set } => {
                write!(f, "removed `{}` in policy set {policy_set}", escape(name, MAX_LOGGED))
            }
        }
    }
}

/// An error and all its causes on one line: `a: b: c`. A cause that an
/// error's own message already states (`... is refused: <why>`, with
/// `<why>` also its source) is said once.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
