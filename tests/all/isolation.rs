//! What a policy can carry between records, and what a few hostile records
//! can do to a policy. With a fixture that remembers every record it sees:
//! at the strictest level decisions are the same whatever the order, batch
//! size and thread count; where state can carry, rechecks catch it. With a
//! fixture that faults on chosen records: a few of them quarantine nothing,
//! a policy faulting on most records is quarantined, and retries after a
//! deadline cost one more deadline, not one per record.

use std::time::{Duration, Instant};

use flowgate::sdk::{Effect, FlowRecord};
use flowgate::{Bundle, Fault, Host, HostBuilder, Isolation, Limits, Quarantine};
use flowgate_tests::fixtures::{PICKY_POLICY, STATEFUL_POLICY};

const MANIFEST: &str = "name = \"fixture\"\nversion = \"1.0.0\"\nregulator = \"nobody\"\narticles = []\n";

fn with(wasm: &[u8]) -> HostBuilder {
    Host::builder().bundle(Bundle::from_bytes("fixture", MANIFEST, wasm.to_vec()).unwrap())
}

/// `count` personal records whose ids start with `prefix`.
fn flows(prefix: &str, count: usize) -> Vec<FlowRecord> {
    (0..count)
        .map(|n| {
            let json = format!(
                r#"{{"id":"{prefix}-{n}","platform":{{"id":"p"}},"action":"use","data":{{"categories":["contact"]}},"purpose":"service"}}"#
            );
            FlowRecord::from_json(json.as_bytes()).unwrap()
        })
        .collect()
}

fn fixture_status(host: &Host) -> flowgate::PolicyStatus {
    host.policies().into_iter().find(|p| p.info.name == "fixture").unwrap()
}

#[test]
fn at_the_strictest_level_decisions_depend_only_on_the_record() {
    let records = flows("r", 300);
    let mut reversed = records.clone();
    reversed.reverse();
    for max_batch in [1, 7, 256] {
        let host = with(STATEFUL_POLICY).isolation(Isolation::PerRecord).max_batch(max_batch).build().unwrap();
        for threads in [1, 3] {
            for order in [&records, &reversed] {
                let decisions: Vec<_> = std::thread::scope(|scope| {
                    let share = order.len().div_ceil(threads);
                    let handles: Vec<_> =
                        order.chunks(share).map(|part| scope.spawn(|| host.evaluate_batch(part))).collect();
                    handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
                });
                for decision in &decisions {
                    assert_eq!(
                        decision.effect,
                        Effect::Allow,
                        "batch {max_batch}, {threads} threads: {}",
                        decision.to_json()
                    );
                    assert!(decision.obligations.is_empty(), "nothing carried over: {}", decision.to_json());
                }
            }
        }
        assert!(!fixture_status(&host).quarantined);
    }
}

#[test]
fn state_carried_within_a_batch_is_caught_and_quarantined() {
    let host = with(STATEFUL_POLICY).isolation(Isolation::PerCall).build().unwrap();
    let records = flows("b", 256);
    let mut caught = None;
    for round in 0..20 {
        let decisions = host.evaluate_batch(&records);
        if fixture_status(&host).quarantined {
            caught = Some((round, decisions));
            break;
        }
    }
    let (round, decisions) = caught.expect("the default recheck catches a stateful policy within 4,096 records");
    assert!(round < 17, "caught in round {round}");
    for decision in &decisions {
        assert_eq!(decision.effect, Effect::Deny, "the call that revealed it fails closed");
        let answer = decision.answers.iter().find(|a| a.policy.name == "fixture").unwrap();
        assert_eq!(answer.outcome, Err(Fault::Quarantined(Quarantine::Nondeterministic)));
    }
    let reason = &decisions[0].reasons[0];
    assert!(reason.message().contains("differently in a fresh instance"), "{}", reason.message());
    // Single records are fresh instances at this level: nothing to carry, nothing to catch.
    let single = with(STATEFUL_POLICY).isolation(Isolation::PerCall).recheck_every(1).build().unwrap();
    for flow in flows("s", 50) {
        assert_eq!(single.evaluate(&flow).effect, Effect::Allow);
    }
}

#[test]
fn state_carried_between_calls_is_caught_when_instances_are_reused() {
    let host = with(STATEFUL_POLICY).isolation(Isolation::Reuse).recheck_every(1).build().unwrap();
    let records = flows("u", 3);
    assert_eq!(host.evaluate(&records[0]).effect, Effect::Allow, "the first record meets a fresh state");
    let second = host.evaluate(&records[1]);
    assert_eq!(second.effect, Effect::Deny);
    assert!(fixture_status(&host).quarantined);

    // At the default level, single calls: each answer is picked with
    // probability 1/64 here, so 1,280 records miss every pick with
    // probability (63/64)^1280, about e^-20.
    let default = with(STATEFUL_POLICY).recheck_every(64).build().unwrap();
    let caught_at = flows("d", 1_280).iter().position(|flow| {
        default.evaluate(flow);
        fixture_status(&default).quarantined
    });
    assert!(caught_at.is_some(), "not caught in 1,280 records");
}

#[test]
fn a_few_hostile_records_do_not_quarantine_a_policy_for_everyone() {
    let host = with(PICKY_POLICY).build().unwrap();
    let mut batch = flows("fine", 96);
    batch.extend(flows("hostile", 4));
    for round in 0..5 {
        let decisions = host.evaluate_batch(&batch);
        for (flow, decision) in batch.iter().zip(&decisions) {
            let expected = if flow.id.starts_with("hostile") { Effect::Deny } else { Effect::Allow };
            assert_eq!(decision.effect, expected, "round {round}: {}", decision.to_json());
        }
    }
    let status = fixture_status(&host);
    assert!(!status.quarantined, "the same four records, sent five times, are four records");
    assert_eq!(status.faults, 20);

    // One hostile record sent again and again, alone, proves nothing new either.
    let replayed = flows("hostile", 1).remove(0);
    for _ in 0..50 {
        assert_eq!(host.evaluate(&replayed).effect, Effect::Deny);
    }
    assert!(!fixture_status(&host).quarantined);
    assert_eq!(host.evaluate(&flows("fine", 1)[0]).effect, Effect::Allow, "it still serves everyone else");
}

#[test]
fn a_policy_faulting_on_most_records_is_quarantined_in_single_calls() {
    let host = with(PICKY_POLICY).quarantine_after(16).build().unwrap();
    let mut faulted = 0;
    for flow in flows("hostile", 40) {
        let decision = host.evaluate(&flow);
        assert_eq!(decision.effect, Effect::Deny);
        if fixture_status(&host).quarantined {
            break;
        }
        faulted += 1;
    }
    assert_eq!(faulted, 15, "quarantined at the 16th distinct faulting record");
    let fine = host.evaluate(&flows("fine", 1)[0]);
    let answer = fine.answers.iter().find(|a| a.policy.name == "fixture").unwrap();
    assert_eq!(answer.outcome, Err(Fault::Quarantined(Quarantine::Faults(16))));
}

#[test]
fn retries_after_a_deadline_share_one_more_deadline() {
    let deadline = Limits { deadline_ms: 200, ..Limits::default() };
    let host = with(PICKY_POLICY).limits(deadline).build().unwrap();
    let mut batch = flows("fine", 63);
    batch.insert(31, flows("slow", 1).remove(0));
    let started = Instant::now();
    let decisions = host.evaluate_batch(&batch);
    // Before, each of the 64 retries could take a full 200 ms: 13 s. A guard, not a benchmark.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    for (flow, decision) in batch.iter().zip(&decisions) {
        let expected = if flow.id.starts_with("slow") { Effect::Deny } else { Effect::Allow };
        assert_eq!(decision.effect, expected, "{}", decision.to_json());
    }
    let slow = decisions[31].answers.iter().find(|a| a.policy.name == "fixture").unwrap();
    assert!(matches!(slow.outcome, Err(Fault::Deadline(ms)) if ms < 200), "{:?}", slow.outcome);
}
