//! What one call into a policy may cost, everything included.
//!
//! A call is more than one guest call: an instance may have to be started
//! (its start function and configuration), a batch that faults is retried
//! record by record, each retry perhaps on a fresh instance, and some
//! answers are checked again on another. Each of those steps has the
//! policy's deadline, so without a bound on the whole, a policy that starts
//! slowly and faults on some records makes one call cost hundreds of
//! deadlines. The budget bounds the sequence: every step's deadline is cut
//! to what is left of it, and records still unanswered when it is spent
//! are denied ([`Fault::BudgetSpent`](crate::Fault::BudgetSpent)), failing
//! closed.
//!
//! A call may spend [`WORK_DEADLINES`] deadlines on instances, the batch
//! and its retries, and one more deadline is kept for the recheck alone,
//! so a policy cannot spend its budget to escape one: at most
//! `(WORK_DEADLINES + 1) × deadline` of wall time per policy per call.

use std::time::{Duration, Instant};

/// Deadlines a call may spend on its work: the batch, retries and the
/// instances they need.
pub(crate) const WORK_DEADLINES: u64 = 3;

/// The wall-clock budget of one call into one policy.
pub(crate) struct Budget {
    deadline_ms: u64,
    started: Instant,
}

impl Budget {
    pub(crate) fn start(deadline_ms: u64) -> Budget {
        Budget { deadline_ms, started: Instant::now() }
    }

    /// The whole budget, in milliseconds, as faults name it.
    pub(crate) fn total_ms(&self) -> u64 {
        (WORK_DEADLINES + 1) * self.deadline_ms
    }

    /// What is left for work (not the recheck's share), in whole
    /// milliseconds; 0 when it is spent.
    pub(crate) fn for_work(&self) -> u64 {
        self.left(WORK_DEADLINES * self.deadline_ms)
    }

    /// What is left for the recheck: a full deadline of its own, at least.
    pub(crate) fn for_recheck(&self) -> u64 {
        self.left(self.total_ms()).min(self.deadline_ms)
    }

    fn left(&self, of_ms: u64) -> u64 {
        Duration::from_millis(of_ms).saturating_sub(self.started.elapsed()).as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recheck_keeps_a_deadline_whatever_work_spent() {
        let budget = Budget { deadline_ms: 10, started: Instant::now() - Duration::from_millis(35) };
        assert_eq!(budget.for_work(), 0);
        assert!((4..=5).contains(&budget.for_recheck()), "{}", budget.for_recheck());
        let fresh = Budget::start(10);
        assert!(fresh.for_work() > 25 && fresh.for_recheck() == 10);
        assert_eq!(fresh.total_ms(), 40);
    }
}
