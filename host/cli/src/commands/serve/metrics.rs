//! `GET /metrics`: counters kept while serving, and the policies' own
//! state read at scrape time, in the Prometheus text format (0.0.4).
//!
//! Names (every one prefixed `flowgate_`):
//! - `decisions_total{effect}`: decisions made, by combined effect;
//! - `policy_answers_total{policy,effect}`: each applied policy's own answers;
//! - `rule_fired_total{policy,rule}`: rules in decisions' reasons (faults as `policy-fault`);
//! - `evaluation_seconds{endpoint}`: histogram of one request's parse, evaluate
//!   and render on an evaluation thread;
//! - `policy_faults{policy,version}`, `policy_quarantined{policy,version}`:
//!   gauges per loaded version;
//! - `policy_set_activation`: the active set's activation counter;
//! - `policy_events_total{event}`: activations, rejections, removals, trust changes, deactivations;
//! - `http_requests_total{route,status}`;
//! - `queue_depth` (admitted, waiting for an evaluation thread),
//!   `requests_in_flight` (admitted, their answer not yet taken whole), `queue_capacity`;
//! - `connections_open`, and `connections_closed_total{reason}`: connections
//!   the server closed, `stalled` (past their deadline) or `reclaimed` (for a newcomer).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use flowgate::sdk::Effect;
use flowgate::{Decision, Host, PolicyEvent};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0];

/// The two endpoints that decide.
#[derive(Clone, Copy)]
pub enum Endpoint {
    Single = 0,
    Batch = 1,
}

const ENDPOINTS: [&str; 2] = ["single", "batch"];

/// Why the server closed a connection.
#[derive(Clone, Copy)]
pub enum Cut {
    /// It went past its deadline without a step.
    Stalled = 0,
    /// Its slot was given to a newcomer.
    Reclaimed = 1,
}

const CUTS: [&str; 2] = ["stalled", "reclaimed"];

/// Everything counted while serving.
pub struct Metrics {
    effects: [AtomicU64; Effect::ALL.len()],
    answers: Mutex<HashMap<(String, Effect), u64>>,
    rules: Mutex<HashMap<(String, String), u64>>,
    latency: [Histogram; 2],
    events: Mutex<HashMap<&'static str, u64>>,
    requests: Mutex<HashMap<(&'static str, u16), u64>>,
    /// Admitted requests waiting for an evaluation thread.
    pub queue_depth: AtomicI64,
    /// Admitted requests not yet answered.
    pub in_flight: AtomicI64,
    queue_capacity: usize,
    connections_open: AtomicI64,
    connections_cut: [AtomicU64; CUTS.len()],
}

/// What one request decided, gathered on its evaluation thread and merged once.
#[derive(Default)]
pub struct Tally {
    effects: [u64; Effect::ALL.len()],
    answers: HashMap<(String, Effect), u64>,
    rules: HashMap<(String, String), u64>,
}

impl Tally {
    /// Counts one decision.
    pub fn add(&mut self, decision: &Decision) {
        self.effects[usize::from(decision.effect.code())] += 1;
        for answer in &decision.answers {
            let key = (answer.policy.name.clone(), answer.effect());
            *self.answers.entry(key).or_default() += 1;
        }
        for reason in &decision.reasons {
            *self.rules.entry((reason.policy().to_owned(), reason.rule().to_owned())).or_default() += 1;
        }
    }
}

struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    pub fn new(queue_capacity: usize) -> Metrics {
        Metrics {
            effects: std::array::from_fn(|_| AtomicU64::new(0)),
            answers: Mutex::default(),
            rules: Mutex::default(),
            latency: [Histogram::new(), Histogram::new()],
            events: Mutex::default(),
            requests: Mutex::default(),
            queue_depth: AtomicI64::new(0),
            in_flight: AtomicI64::new(0),
            queue_capacity,
            connections_open: AtomicI64::new(0),
            connections_cut: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// A connection took a slot.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection gave its slot back.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// The server closed a connection.
    pub fn connection_cut(&self, cut: Cut) {
        self.connections_cut[cut as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds what one request decided, and how long that took.
    pub fn decided(&self, endpoint: Endpoint, tally: Tally, elapsed: Duration) {
        self.tally(tally);
        self.observe(endpoint, elapsed);
    }

    /// Adds what part of a request decided.
    pub fn tally(&self, tally: Tally) {
        for (counter, &count) in self.effects.iter().zip(&tally.effects) {
            if count > 0 {
                counter.fetch_add(count, Ordering::Relaxed);
            }
        }
        let mut answers = lock(&self.answers);
        for (key, count) in tally.answers {
            *answers.entry(key).or_default() += count;
        }
        drop(answers);
        let mut rules = lock(&self.rules);
        for (key, count) in tally.rules {
            *rules.entry(key).or_default() += count;
        }
        drop(rules);
    }

    /// How long one request spent on evaluation threads.
    pub fn observe(&self, endpoint: Endpoint, elapsed: Duration) {
        self.latency[endpoint as usize].observe(elapsed);
    }

    /// Counts an answered request.
    pub fn request(&self, route: &'static str, status: u16) {
        *lock(&self.requests).entry((route, status)).or_default() += 1;
    }

    /// Counts a change to the policy set (or a refused one).
    pub fn event(&self, event: &PolicyEvent) {
        let name = match event {
            PolicyEvent::Activated { .. } => "activated",
            PolicyEvent::Rejected { .. } => "rejected",
            PolicyEvent::TrustChanged { .. } => "trust_changed",
            PolicyEvent::Deactivated { .. } => "deactivated",
            PolicyEvent::Removed { .. } => "removed",
        };
        *lock(&self.events).entry(name).or_default() += 1;
    }

    /// The whole text exposition.
    pub fn render(&self, host: &Host) -> String {
        let mut out = String::with_capacity(4096);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP flowgate_{name} {help}\n# TYPE flowgate_{name} {kind}");
        };
        family(&mut out, "decisions_total", "counter", "Decisions made, by combined effect.");
        for (effect, counter) in Effect::ALL.iter().zip(&self.effects) {
            let _ =
                writeln!(out, "flowgate_decisions_total{{effect=\"{effect}\"}} {}", counter.load(Ordering::Relaxed));
        }
        family(&mut out, "policy_answers_total", "counter", "Answers of each applied policy, by effect.");
        let mut answers: Vec<_> = lock(&self.answers).iter().map(|((p, e), n)| (p.clone(), *e, *n)).collect();
        answers.sort();
        for (policy, effect, count) in answers {
            let _ = writeln!(
                out,
                "flowgate_policy_answers_total{{policy=\"{}\",effect=\"{effect}\"}} {count}",
                label(&policy)
            );
        }
        family(&mut out, "rule_fired_total", "counter", "Rules in decisions' reasons, by policy and rule.");
        let mut rules: Vec<_> = lock(&self.rules).iter().map(|(k, n)| (k.clone(), *n)).collect();
        rules.sort();
        for ((policy, rule), count) in rules {
            let _ = writeln!(
                out,
                "flowgate_rule_fired_total{{policy=\"{}\",rule=\"{}\"}} {count}",
                label(&policy),
                label(&rule)
            );
        }
        family(&mut out, "evaluation_seconds", "histogram", "Parse, evaluate and render of one request's records.");
        for (endpoint, histogram) in ENDPOINTS.iter().zip(&self.latency) {
            let mut cumulative = 0;
            for (bound, bucket) in BUCKETS.iter().zip(&histogram.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "flowgate_evaluation_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "flowgate_evaluation_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "flowgate_evaluation_seconds_sum{{endpoint=\"{endpoint}\"}} {sum}");
            let _ = writeln!(out, "flowgate_evaluation_seconds_count{{endpoint=\"{endpoint}\"}} {count}");
        }
        let policies = host.policies();
        family(&mut out, "policy_faults", "gauge", "Faults of each loaded policy version since it was loaded.");
        for status in &policies {
            let (name, version) = (label(&status.info.name), label(&status.info.version));
            let _ =
                writeln!(out, "flowgate_policy_faults{{policy=\"{name}\",version=\"{version}\"}} {}", status.faults);
        }
        family(&mut out, "policy_quarantined", "gauge", "1 while a loaded policy version is quarantined.");
        for status in &policies {
            let (name, version) = (label(&status.info.name), label(&status.info.version));
            let quarantined = u8::from(status.quarantined);
            let _ =
                writeln!(out, "flowgate_policy_quarantined{{policy=\"{name}\",version=\"{version}\"}} {quarantined}");
        }
        family(&mut out, "policy_set_activation", "gauge", "Activation counter of the active policy set.");
        let _ = writeln!(out, "flowgate_policy_set_activation {}", host.policy_set_version());
        family(&mut out, "policy_events_total", "counter", "Changes to the policy set, and refused versions.");
        let mut events: Vec<_> = lock(&self.events).iter().map(|(k, n)| (*k, *n)).collect();
        events.sort();
        for (event, count) in events {
            let _ = writeln!(out, "flowgate_policy_events_total{{event=\"{event}\"}} {count}");
        }
        family(&mut out, "http_requests_total", "counter", "Answered requests, by route and status.");
        let mut requests: Vec<_> = lock(&self.requests).iter().map(|(k, n)| (*k, *n)).collect();
        requests.sort();
        for ((route, status), count) in requests {
            let _ = writeln!(out, "flowgate_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}");
        }
        family(&mut out, "queue_depth", "gauge", "Admitted requests waiting for an evaluation thread.");
        let _ = writeln!(out, "flowgate_queue_depth {}", self.queue_depth.load(Ordering::Relaxed));
        family(&mut out, "requests_in_flight", "gauge", "Admitted decision requests not yet answered.");
        let _ = writeln!(out, "flowgate_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        family(&mut out, "queue_capacity", "gauge", "Decision requests admitted at once; more get 503.");
        let _ = writeln!(out, "flowgate_queue_capacity {}", self.queue_capacity);
        family(&mut out, "connections_open", "gauge", "Connections holding a slot.");
        let _ = writeln!(out, "flowgate_connections_open {}", self.connections_open.load(Ordering::Relaxed));
        family(&mut out, "connections_closed_total", "counter", "Connections the server closed, by reason.");
        for (reason, counter) in CUTS.iter().zip(&self.connections_cut) {
            let _ = writeln!(
                out,
                "flowgate_connections_closed_total{{reason=\"{reason}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// A label value as the text format escapes it.
fn label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_cannot_break_out() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn histogram_buckets_are_cumulative_in_the_text() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_micros(30));
        histogram.observe(Duration::from_micros(700));
        histogram.observe(Duration::from_secs(60));
        assert_eq!(histogram.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(histogram.buckets[4].load(Ordering::Relaxed), 1);
        assert_eq!(histogram.count.load(Ordering::Relaxed), 3, "past the last bucket: only in +Inf");
    }
}
