//! One version of the whole set of active policies, and its content id.
//!
//! A set is immutable: a reload builds a new set and swaps it in whole, so
//! an evaluation decides with exactly one set. Each set has two names: a
//! monotonic activation counter, for ordering within one process, and a
//! content id, the same on every machine and after every restart, that
//! identifies what decides: every active policy's name, version and the
//! digests of its manifest and module, which policies are deactivated, and
//! the host's handling of flows no policy applies to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flowgate_sdk::Action;

use crate::model::{Digest, Facts, Quarantine};
use crate::policy::{CompiledPolicy, LoadError};

use super::combine::Unmatched;

static NEXT_ACTIVATION: AtomicU64 = AtomicU64::new(1);

/// The active policies, in name order.
pub(crate) struct PolicySet {
    pub(crate) activation: u64,
    pub(crate) id: Digest,
    pub(crate) policies: Vec<Arc<CompiledPolicy>>,
    /// For each action (by code), the positions of the policies whose scope
    /// admits it: all a batch of records of one action has to look at. With
    /// a thousand policies narrowed by action, a single call then never
    /// touches the others.
    by_action: Vec<Vec<usize>>,
    /// Every position, for a batch of several actions.
    everyone: Vec<usize>,
    pub(crate) unmatched: Unmatched,
}

impl PolicySet {
    pub(crate) fn new(mut policies: Vec<Arc<CompiledPolicy>>, unmatched: Unmatched) -> Result<PolicySet, LoadError> {
        policies.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        if let Some(pair) = policies.windows(2).find(|pair| pair[0].info.name == pair[1].info.name) {
            return Err(LoadError::DuplicatePolicy(pair[0].info.name.clone()));
        }
        let id = content_id(&policies, unmatched);
        let by_action = Action::ALL
            .iter()
            .map(|&action| (0..policies.len()).filter(|&p| policies[p].scope.admits(action)).collect())
            .collect();
        let everyone = (0..policies.len()).collect();
        let activation = NEXT_ACTIVATION.fetch_add(1, Ordering::Relaxed);
        Ok(PolicySet { activation, id, policies, by_action, everyone, unmatched })
    }

    /// Every position, in name order.
    pub(crate) fn all(&self) -> &[usize] {
        &self.everyone
    }

    /// The positions of the policies that may apply to records with these
    /// facts, in name order (a superset: each record is still checked).
    pub(crate) fn candidates(&self, facts: &[Facts]) -> &[usize] {
        let actions = facts.iter().fold(0, |bits, facts| bits | facts.action_bit());
        if actions.count_ones() == 1 { &self.by_action[actions.trailing_zeros() as usize] } else { &self.everyone }
    }

    /// This set with `policy` added, or replacing the one of the same name.
    pub(crate) fn with(&self, policy: &Arc<CompiledPolicy>) -> PolicySet {
        let mut policies: Vec<_> = self.policies.iter().filter(|p| p.info.name != policy.info.name).cloned().collect();
        policies.push(Arc::clone(policy));
        PolicySet::new(policies, self.unmatched).expect("names are unique after replacing")
    }

    /// This set without the policy `name`.
    pub(crate) fn without(&self, name: &str) -> PolicySet {
        let policies = self.policies.iter().filter(|p| p.info.name != name).cloned().collect();
        PolicySet::new(policies, self.unmatched).expect("a subset of unique names is unique")
    }

    /// The same policies as a new set (after some were deactivated).
    pub(crate) fn renewed(&self) -> PolicySet {
        PolicySet::new(self.policies.clone(), self.unmatched).expect("the same names are unique")
    }

    /// The text its content id is the digest of.
    pub(crate) fn content_text(&self) -> String {
        content_text(&self.policies, self.unmatched)
    }

    /// The policy `name`, if it is active.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<CompiledPolicy>> {
        self.policies.iter().find(|p| p.info.name == name)
    }
}

/// The content id: a digest over what decides, in name order.
fn content_id(policies: &[Arc<CompiledPolicy>], unmatched: Unmatched) -> Digest {
    Digest::of(content_text(policies, unmatched).as_bytes())
}

/// The text the content id digests: one line per policy, after the host's
/// handling of unmatched flows (what the archive keeps, to be checked).
fn content_text(policies: &[Arc<CompiledPolicy>], unmatched: Unmatched) -> String {
    let mut text = String::from("flowgate policy set v1\n");
    text.push_str(match unmatched {
        Unmatched::Deny => "unmatched deny\n",
        Unmatched::Allow => "unmatched allow\n",
    });
    for policy in policies {
        let info = &policy.info;
        let state = if policy.quarantine() == Some(Quarantine::Untrusted) { "deactivated" } else { "active" };
        text.push_str(&format!("policy {} {} {} {state}\n", info.name, info.version, info.content_digest));
    }
    text
}
