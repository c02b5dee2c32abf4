//! Hooks for Flowgate's own tests and benchmarks, behind the `test-util`
//! feature: not part of the API.
//!
//! They let a policy compiled natively (outside the sandbox) be combined
//! exactly as the host combines Wasm policies, so the two can be compared
//! and measured side by side.

use std::cell::RefCell;
use std::sync::Arc;

pub use crate::host::{POLL_INTERVAL, QUIET};
pub use crate::policy::check_vectors;
pub use crate::sandbox::TICK;

use flowgate_sdk::{DynPolicy, Effect, FlowRecord, FlowView, Rule, StringFields, wire};

use crate::bundle::{BundleError, Manifest};
use crate::decide::{Unmatched, combine};
use crate::model::{Decision, Digest, Facts, PolicyAnswer, PolicyInfo, Reason, Scope};

/// Describes a policy that runs natively, so its answers combine like any
/// other. It has no module or bundle, so its digests are all zeros.
pub fn native_policy_info(manifest: &Manifest, rules: &[Rule]) -> Arc<PolicyInfo> {
    Arc::new(PolicyInfo {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        digest: Digest::from_bytes([0; 32]),
        bundle_digest: Digest::from_bytes([0; 32]),
        content_digest: Digest::from_bytes([0; 32]),
        signers: Vec::new(),
        regulator: manifest.regulator.clone(),
        articles: manifest.articles.clone(),
        reasons: rules
            .iter()
            .map(|rule| {
                Reason::new(&manifest.name, &manifest.version, rule.name, rule.article, rule.message)
                    .with_outcome(manifest.rules.get(rule.name).copied())
            })
            .collect(),
    })
}

/// Combines answers given in policy name order, as the host does.
pub fn combine_answers(flow: &FlowRecord, answers: Vec<PolicyAnswer>, unmatched: Unmatched) -> Decision {
    combine(flow, answers, unmatched)
}

/// Policies compiled natively, asked and combined as the host asks and
/// combines their Wasm builds (a policy whose `[applies_to]` excludes a
/// record is not asked): the other side of agreement tests, and the floor
/// in benchmarks.
///
/// Policies read a record through a [`FlowView`], so a native run does
/// what the host does, the cheapest way: it encodes the record once (into
/// a buffer kept per thread, no allocation), and every policy reads the
/// fields it needs from that one view. It copies nothing into anything,
/// calls nothing through a sandbox, and hands every policy every string.
pub struct NativeSet {
    /// In policy name order, as the host keeps them.
    policies: Vec<(Arc<PolicyInfo>, Scope, Box<dyn DynPolicy>)>,
}

impl NativeSet {
    /// A set of `(manifest text, policy)` pairs; the manifests give names and versions.
    pub fn new<'a>(
        policies: impl IntoIterator<Item = (&'a str, Box<dyn DynPolicy>)>,
    ) -> Result<NativeSet, BundleError> {
        let mut policies = policies
            .into_iter()
            .map(|(manifest, policy)| {
                let manifest = Manifest::parse("native", manifest)?;
                Ok((native_policy_info(&manifest, policy.rules()), Scope::new(&manifest.applies_to), policy))
            })
            .collect::<Result<Vec<_>, BundleError>>()?;
        policies.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(NativeSet { policies })
    }

    /// The answers of the policies that apply to `flow`, in name order.
    pub fn answers(&self, flow: &FlowRecord) -> Vec<PolicyAnswer> {
        let facts = Facts::of(flow);
        with_view(flow, |view| {
            self.policies
                .iter()
                .filter(|(_, scope, _)| scope.covers(&facts))
                .map(|(info, _, policy)| PolicyAnswer { policy: Arc::clone(info), outcome: Ok(policy.evaluate(view)) })
                .filter(|answer| answer.effect() != Effect::NotApplicable)
                .collect()
        })
    }

    /// The combined decision about `flow`, personal data no policy applies to denied.
    pub fn decide(&self, flow: &FlowRecord) -> Decision {
        combine(flow, self.answers(flow), Unmatched::Deny)
    }
}

/// Calls `f` with a view of `flow`, encoded into this thread's buffer.
fn with_view<R>(flow: &FlowRecord, f: impl FnOnce(&FlowView<'_>) -> R) -> R {
    thread_local! {
        static BYTES: RefCell<Vec<u8>> = RefCell::default();
    }
    BYTES.with_borrow_mut(|bytes| {
        bytes.clear();
        wire::encode_record(flow, bytes);
        f(&FlowView::new(bytes, StringFields::ALL).expect("an encoded record is well formed"))
    })
}

/// Starts, and drops, one fresh configured instance of every policy
/// `host` serves (what a call at `per-call` starts); returns how many.
pub fn start_fresh_instances(host: &crate::Host) -> Result<usize, crate::Fault> {
    host.start_fresh_instances()
}

/// How many of the policies `host` serves start their fresh instances from
/// a snapshot of a configured instance (the others configure each one).
pub fn snapshotted(host: &crate::Host) -> usize {
    host.snapshotted()
}
