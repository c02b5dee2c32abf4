//! Which answers are checked again in a fresh instance, chosen so that a
//! policy can neither predict nor recognise them.
//!
//! Where an instance can carry state (a batch at `per-call`, everything at
//! `reuse`), each answered record is picked with probability
//! `1 / recheck_every`, by a generator the guest cannot observe: SHA-256
//! in counter mode over a 256-bit seed from the operating system
//! (`getrandom`), held in the host. A policy sees no clock, no counter and
//! no randomness, and the picks do not depend on the records, their order,
//! their number or what the policy answered, so nothing it can see tells it
//! which answers will be checked.
//!
//! The picked records of a call are answered again together, in a random
//! order, in one ordinary call on a fresh instance of the same tenant:
//! the same export, the same buffer protocol, the same deadline as any
//! call a fresh instance makes. Every answer must be identical, and a fault
//! or deadline there counts as a difference. What a policy could still do
//! is in docs/threat-model.md.

use std::sync::Mutex;

use crate::model::Digest;

/// The picking generator of one policy.
pub(crate) struct Rechecks {
    /// One record in this many is picked, on average; 0 never.
    every: u64,
    state: Mutex<Picker>,
}

struct Picker {
    seed: [u8; 32],
    counter: u64,
    /// Unused random words of the last block.
    pool: Vec<u64>,
    /// Records still to answer before the next pick (at least 1).
    countdown: u64,
}

impl Picker {
    fn next_u64(&mut self) -> u64 {
        if self.pool.is_empty() {
            self.counter += 1;
            let block = Digest::of_parts(&[&self.seed, &self.counter.to_le_bytes()]);
            self.pool
                .extend(block.as_bytes().chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes"))));
        }
        self.pool.pop().expect("just filled")
    }

    /// A uniform number below `n` (n > 0), without modulo bias.
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// How many records until the next pick: geometric with mean `every`,
    /// so each record is picked with probability `1 / every`, independently.
    fn gap(&mut self, every: u64) -> u64 {
        if every <= 1 {
            return 1;
        }
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        let gap = (1.0 - unit).ln() / (1.0 - 1.0 / every as f64).ln();
        1 + gap.min(1e18) as u64
    }
}

impl Rechecks {
    /// Picks for a policy that rechecks one record in `every` (0: never).
    pub(crate) fn new(every: u64) -> Rechecks {
        let mut seed = [0u8; 32];
        // Without the operating system's randomness there is no seed the
        // guest cannot know: then every record is rechecked (slow, never
        // predictable).
        let every = if getrandom::fill(&mut seed).is_ok() { every } else { every.min(1) };
        let mut picker = Picker { seed, counter: 0, pool: Vec::with_capacity(4), countdown: 1 };
        picker.countdown = picker.gap(every);
        Rechecks { every, state: Mutex::new(picker) }
    }

    /// Picks among `count` answered records: their positions, in a random
    /// order (empty, almost always, for small calls).
    pub(crate) fn pick(&self, count: usize, picked: &mut Vec<usize>) {
        picked.clear();
        if self.every == 0 || count == 0 {
            return;
        }
        let mut picker = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut left = count as u64;
        if picker.countdown > left {
            picker.countdown -= left;
            return;
        }
        while picker.countdown <= left {
            left -= picker.countdown;
            picked.push(count - 1 - left as usize);
            picker.countdown = picker.gap(self.every);
        }
        picker.countdown -= left;
        // A random order: a policy whose answers depend on what came
        // before in the call answers differently.
        for i in (1..picked.len()).rev() {
            let j = picker.below(i as u64 + 1) as usize;
            picked.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_record_is_picked_at_the_rate_asked_wherever_it_stands() {
        let rechecks = Rechecks::new(16);
        let mut by_position = [0u32; 256];
        let mut picked = Vec::new();
        for _ in 0..2_000 {
            rechecks.pick(256, &mut picked);
            for &at in &picked {
                by_position[at] += 1;
            }
        }
        // 2,000 calls × 256 records / 16: 32,000 picks, 125 per position on average.
        let total: u32 = by_position.iter().sum();
        assert!((28_000..36_000).contains(&total), "{total} picks");
        assert!(by_position.iter().all(|&n| (60..200).contains(&n)), "no position is favoured: {by_position:?}");
        assert!(by_position[255] < 200 && by_position[0] > 60, "the last record is no likelier than the first");
    }

    #[test]
    fn two_hosts_pick_differently_and_never_means_never() {
        let (a, b) = (Rechecks::new(4), Rechecks::new(4));
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        let mut same = 0;
        for _ in 0..50 {
            a.pick(64, &mut pa);
            b.pick(64, &mut pb);
            same += usize::from(pa == pb);
        }
        assert!(same < 5, "seeded from the operating system, not a constant");
        let never = Rechecks::new(0);
        never.pick(1_000, &mut pa);
        assert!(pa.is_empty());
        let always = Rechecks::new(1);
        always.pick(5, &mut pa);
        pa.sort_unstable();
        assert_eq!(pa, [0, 1, 2, 3, 4]);
    }
}
