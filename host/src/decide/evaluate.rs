//! The one evaluation loop: records encoded once per chunk, each policy
//! that may apply asked once per chunk about the records in its scope, and
//! the answers combined per record. `Host::evaluate_batch` and
//! `Host::explain` both run it, so what explains a decision is exactly
//! what made it.
//!
//! Records of different tenants (`platform.id`, and the caller's key) in one
//! chunk are handed to each policy in separate calls, one per tenant, so no
//! instance state ever holds two tenants' records, at any isolation level.

use std::cell::RefCell;
use std::sync::Arc;

use flowgate_sdk::{Answer, Effect, FlowRecord};

use crate::model::{Decision, Facts, Fault, PolicyAnswer, PolicyVerdict, Verdict};
use crate::policy::Tenant;
use crate::sandbox::EncodedRecords;

use super::combine::combine;
use super::policy_set::PolicySet;

/// Decides `flows` of the caller `tenant_key` ("" for none) with `set`, handing each record's decision to `decided`
/// in order, with the binary form of its record (what its receipt's digest
/// covers) and, when `explain` is set, what every policy of the set did
/// about it, in name order (otherwise nothing).
///
/// Each policy is called once per `max_batch` records. Only the policies
/// that applied are recorded in a decision: a policy that cannot apply
/// costs its scope check and nothing more.
pub(crate) fn evaluate(
    set: &PolicySet,
    flows: &[FlowRecord],
    max_batch: usize,
    explain: bool,
    tenant_key: &str,
    mut decided: impl FnMut(&FlowRecord, Decision, Vec<PolicyVerdict>, &[u8]),
) {
    with_scratch(|scratch| {
        let Scratch { records, facts, selected, outcomes, tenant_of, firsts, answers, verdicts } = scratch;
        for chunk in flows.chunks(max_batch.max(1)) {
            records.encode(chunk);
            facts.clear();
            facts.extend(chunk.iter().map(Facts::of));
            tenants(chunk, tenant_of, firsts);
            // One list per record, empty (no allocation until its first
            // answer): each becomes its decision's own.
            answers.clear();
            answers.resize_with(chunk.len(), Vec::new);
            verdicts.clear();
            verdicts.resize_with(chunk.len(), Vec::new);
            // Explaining names every policy, skipped ones included.
            let asked = if explain { set.all() } else { set.candidates(facts) };
            for &at in asked {
                let policy = &set.policies[at];
                selected.clear();
                for (i, facts) in facts.iter().enumerate() {
                    if policy.scope.covers(facts) {
                        selected.push(i);
                    } else if explain {
                        let verdict = Verdict::SkippedByScope;
                        verdicts[i].push(PolicyVerdict { policy: Arc::clone(&policy.info), verdict });
                    }
                }
                outcomes.clear();
                if firsts.len() == 1 {
                    let tenant = Tenant { key: tenant_key, platform: &chunk[firsts[0]].platform.id };
                    policy.answer_each(records, selected, tenant, outcomes);
                } else {
                    // One call per tenant. Answers are gathered per record
                    // below, so the order of records within a policy's
                    // answers does not matter.
                    selected.sort_by_key(|&i| tenant_of[i]);
                    for run in selected.chunk_by(|&a, &b| tenant_of[a] == tenant_of[b]) {
                        let tenant = Tenant { key: tenant_key, platform: &chunk[run[0]].platform.id };
                        policy.answer_each(records, run, tenant, outcomes);
                    }
                }
                for (&i, outcome) in selected.iter().zip(outcomes.drain(..)) {
                    if explain {
                        let verdict = match &outcome {
                            Ok(answer) => Verdict::Answered(*answer),
                            Err(fault) => Verdict::Faulted(fault.clone()),
                        };
                        verdicts[i].push(PolicyVerdict { policy: Arc::clone(&policy.info), verdict });
                    }
                    if outcome.as_ref().is_ok_and(|answer| answer.effect() == Effect::NotApplicable) {
                        continue;
                    }
                    answers[i].push(PolicyAnswer { policy: Arc::clone(&policy.info), outcome });
                }
            }
            for (i, flow) in chunk.iter().enumerate() {
                let mut decision = combine(flow, std::mem::take(&mut answers[i]), set.unmatched);
                decision.policy_set = set.id;
                decision.activation = set.activation;
                decided(flow, decision, std::mem::take(&mut verdicts[i]), records.record(i));
            }
        }
    });
}

/// What one evaluation needs besides its output, kept per thread so that a
/// call allocates nothing but its decisions.
#[derive(Default)]
struct Scratch {
    records: EncodedRecords,
    facts: Vec<Facts>,
    selected: Vec<usize>,
    outcomes: Vec<Result<Answer, Fault>>,
    /// For each record of the chunk, its tenant's number.
    tenant_of: Vec<u32>,
    /// For each tenant of the chunk, its first record.
    firsts: Vec<usize>,
    /// For each record of the chunk, the answers of the policies that
    /// applied, in policy order (moved into its decision).
    answers: Vec<Vec<PolicyAnswer>>,
    /// For each record, what every policy did, when explaining.
    verdicts: Vec<Vec<PolicyVerdict>>,
}

/// Numbers the tenants of `chunk` by first appearance. Almost every chunk
/// holds one platform; a chunk of many compares each record with the
/// tenants seen so far (at most `max_batch` each).
fn tenants(chunk: &[FlowRecord], tenant_of: &mut Vec<u32>, firsts: &mut Vec<usize>) {
    tenant_of.clear();
    firsts.clear();
    for (i, flow) in chunk.iter().enumerate() {
        let platform = &flow.platform.id;
        let seen = match tenant_of.last() {
            Some(&previous) if chunk[firsts[previous as usize]].platform.id == *platform => Some(previous as usize),
            _ => firsts.iter().position(|&first| chunk[first].platform.id == *platform),
        };
        let tenant = seen.unwrap_or_else(|| {
            firsts.push(i);
            firsts.len() - 1
        });
        tenant_of.push(tenant as u32);
    }
}

/// Runs `f` with this thread's scratch.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::default();
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        // Entered again on this thread (an evaluation from inside one): a scratch of its own.
        Err(_) => f(&mut Scratch::default()),
    })
}
