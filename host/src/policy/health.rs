//! A policy's fault record, and the rule that quarantines it.
//!
//! The rule is over distinct records, not calls: a policy is quarantined
//! once `faults` distinct records made it fault within the last
//! `2 × faults` records it was asked about (by default 16 within 32: it
//! faults on at least half of what it sees). So a few hostile records, or
//! one hostile record sent again and again, cannot quarantine a policy for
//! everyone, while a policy that faults on most records is quarantined in
//! single-record calls and batches alike. A batch that faults is not
//! counted itself: its records are asked again one by one, and those
//! answers count.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::model::Quarantine;

/// The largest threshold kept: the window of faulting records stays small.
const MAX_THRESHOLD: u32 = 1 << 16;

const HEALTHY: u8 = 0;
const TOO_MANY_FAULTS: u8 = 1;
const NONDETERMINISTIC: u8 = 2;
const UNTRUSTED: u8 = 3;

/// The fault record of one policy version.
pub(crate) struct Health {
    /// Faults in a window that quarantine.
    faults_to_quarantine: u32,
    /// Records answered or faulted on, the clock the window is measured in.
    asked: AtomicU64,
    total_faults: AtomicU64,
    quarantine: AtomicU8,
    /// The most recent distinct faulting records: `(record hash, when)`.
    recent: Mutex<VecDeque<(u64, u64)>>,
}

impl Health {
    pub(crate) fn new(faults_to_quarantine: u32) -> Health {
        Health {
            faults_to_quarantine: faults_to_quarantine.clamp(1, MAX_THRESHOLD),
            asked: AtomicU64::new(0),
            total_faults: AtomicU64::new(0),
            quarantine: AtomicU8::new(HEALTHY),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// `records` were answered without a fault.
    pub(crate) fn answered(&self, records: usize) {
        self.asked.fetch_add(records as u64, Ordering::Relaxed);
    }

    /// The record with content hash `record` made the policy fault.
    pub(crate) fn faulted(&self, record: u64) {
        self.total_faults.fetch_add(1, Ordering::Relaxed);
        let now = self.asked.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if recent.iter().any(|&(hash, _)| hash == record) {
            return; // the same record again proves nothing new about the policy
        }
        let faults = self.faults_to_quarantine as usize;
        if recent.len() == faults {
            recent.pop_front();
        }
        recent.push_back((record, now));
        let window = 2 * u64::from(self.faults_to_quarantine);
        if recent.len() == faults && now - recent[0].1 < window {
            let _ = self.quarantine.compare_exchange(HEALTHY, TOO_MANY_FAULTS, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The policy answered a record differently in a fresh instance.
    pub(crate) fn nondeterministic(&self) {
        self.total_faults.fetch_add(1, Ordering::Relaxed);
        self.quarantine.store(NONDETERMINISTIC, Ordering::Relaxed);
    }

    /// The policy's signatures no longer meet the trust policy.
    pub(crate) fn untrusted(&self) {
        self.quarantine.store(UNTRUSTED, Ordering::Relaxed);
    }

    /// Why the policy is quarantined, if it is.
    pub(crate) fn quarantine(&self) -> Option<Quarantine> {
        match self.quarantine.load(Ordering::Relaxed) {
            HEALTHY => None,
            TOO_MANY_FAULTS => Some(Quarantine::Faults(self.faults_to_quarantine)),
            NONDETERMINISTIC => Some(Quarantine::Nondeterministic),
            _ => Some(Quarantine::Untrusted),
        }
    }

    pub(crate) fn is_quarantined(&self) -> bool {
        self.quarantine().is_some()
    }

    pub(crate) fn total_faults(&self) -> u64 {
        self.total_faults.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asks a fresh policy about `records` records, faulting on each record
    /// `faults` says; returns whether it ended quarantined.
    fn run(threshold: u32, records: u64, faults: impl Fn(u64) -> Option<u64>) -> bool {
        let health = Health::new(threshold);
        for n in 0..records {
            match faults(n) {
                Some(hash) => health.faulted(hash),
                None => health.answered(1),
            }
        }
        health.is_quarantined()
    }

    #[test]
    fn a_policy_faulting_on_most_records_is_quarantined() {
        assert!(run(16, 16, Some), "every record faults: quarantined at the 16th");
        assert!(!run(16, 15, Some));
        assert!(run(16, 100, |n| (n % 2 == 0).then_some(n)), "half of them");
    }

    #[test]
    fn a_few_hostile_records_do_not_quarantine() {
        assert!(!run(16, 10_000, |n| (n % 3 == 0).then_some(n)), "a third of records");
        assert!(!run(16, 10_000, |n| (n < 15).then_some(n)), "fifteen hostile records in a row");
        assert!(!run(16, 10_000, |n| (n % 2 == 0).then_some(7)), "one hostile record, sent again and again");
        assert!(!run(16, 10_000, |n| (n % 2 == 0).then_some(n % 4)), "two hostile records, alternating");
    }
}
