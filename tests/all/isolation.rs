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
    // One record in 256 picked: 20 batches all miss with probability about e^-20.
    let host = with(STATEFUL_POLICY).isolation(Isolation::PerCall).recheck_every(256).build().unwrap();
    let records = flows("b", 256);
    let mut caught = None;
    for round in 0..20 {
        let decisions = host.evaluate_batch(&records);
        if fixture_status(&host).quarantined {
            caught = Some((round, decisions));
            break;
        }
    }
    let (_, decisions) = caught.expect("rechecks catch a stateful policy within 20 batches");
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

/// A `.wat` fixture with this host's schema, and `{{SPINS}}` set to `spins`.
fn wat_fixture(text: &str, spins: u64) -> Vec<u8> {
    wat::parse_str(crate::with_schema(text).replace("{{SPINS}}", &spins.to_string())).unwrap()
}

const EXFILTRATE: &str = include_str!("../fixtures/exfiltrate.wat");
const EVASIVE: &str = include_str!("../fixtures/evasive.wat");
const SLOW_START: &str = include_str!("../fixtures/slow-start.wat");

/// A personal record of `platform` whose id is `id`.
fn record(platform: &str, id: &str) -> FlowRecord {
    let json = format!(
        r#"{{"id":"{id}","platform":{{"id":"{platform}"}},"action":"use","data":{{"categories":["contact"]}},"purpose":"service"}}"#
    );
    FlowRecord::from_json(json.as_bytes()).unwrap()
}

/// The byte a decision carries from another record, if any (`exfiltrate.wat`
/// writes it as a retention obligation).
fn carried(decision: &flowgate::Decision) -> Option<u32> {
    decision.obligations.iter().find_map(|o| match o {
        flowgate::sdk::Obligation::LimitRetention { days } => Some(*days),
        _ => None,
    })
}

/// The class: state crossing tenants. Two platforms' records interleaved,
/// at every level, batch size and thread count, rechecks off (the boundary
/// must hold whatever the policy does, not be caught afterwards); and two
/// callers of one platform kept apart by their keys.
#[test]
fn no_tenant_ever_sees_another_tenants_records() {
    let wasm = wat_fixture(EXFILTRATE, 0);
    // Ids of platform `pa` start with `A`, of `pb` with `B`.
    let mixed: Vec<FlowRecord> = (0..300)
        .map(|n| if n % 2 == 0 { record("pa", &format!("A{n}")) } else { record("pb", &format!("B{n}")) })
        .collect();
    for isolation in [Isolation::PerRecord, Isolation::PerCall, Isolation::Reuse] {
        for max_batch in [1, 7, 256] {
            let host = with(&wasm).isolation(isolation).max_batch(max_batch).recheck_every(0).build().unwrap();
            for threads in [1, 3] {
                let decisions: Vec<_> = std::thread::scope(|scope| {
                    let share = mixed.len().div_ceil(threads);
                    let handles: Vec<_> =
                        mixed.chunks(share).map(|part| scope.spawn(|| host.evaluate_batch(part))).collect();
                    handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
                });
                for (flow, decision) in mixed.iter().zip(&decisions) {
                    let other = if flow.platform.id == "pa" { u32::from(b'B') } else { u32::from(b'A') };
                    assert_ne!(
                        carried(decision),
                        Some(other),
                        "{isolation:?}, batch {max_batch}, {threads} threads: {} carries another platform's byte",
                        decision.to_json()
                    );
                }
            }
        }
    }
    // One platform, two callers (two clients of a shared service): their keys keep them apart.
    let host = with(&wasm).isolation(Isolation::Reuse).recheck_every(0).build().unwrap();
    for round in 0..50 {
        for (key, prefix) in [("client-1", 'A'), ("client-2", 'B')] {
            let batch: Vec<FlowRecord> = (0..3).map(|n| record("shared", &format!("{prefix}{round}-{n}"))).collect();
            for decision in host.evaluate_batch_in(key, &batch) {
                let other = if prefix == 'A' { u32::from(b'B') } else { u32::from(b'A') };
                assert_ne!(carried(&decision), Some(other), "{key}: {}", decision.to_json());
            }
        }
    }
}

/// The class: rechecks predicted or dodged. `evasive.wat` answers the last
/// record of each batch honestly and traps on a fresh instance's first
/// call of one record; picks at random positions, compared in a random
/// order, with a fault counted as a difference, catch it at every level
/// where state can carry.
#[test]
fn rechecks_cannot_be_predicted_or_dodged() {
    let wasm = wat_fixture(EVASIVE, 0);
    let batch: Vec<FlowRecord> = (0..256).map(|n| record("p", &format!("e{n}"))).collect();
    for isolation in [Isolation::Reuse, Isolation::PerCall] {
        // One pick per batch on average: 40 batches all miss with probability about e^-40.
        let host = with(&wasm).isolation(isolation).recheck_every(256).build().unwrap();
        let caught = (0..40).position(|_| {
            host.evaluate_batch(&batch);
            fixture_status(&host).quarantined
        });
        assert!(caught.is_some(), "{isolation:?}: not caught in 40 batches of 256");
        let decision = host.evaluate_batch(&batch[..2]).remove(0);
        let answer = decision.answers.iter().find(|a| a.policy.name == "fixture").unwrap();
        assert_eq!(answer.outcome, Err(Fault::Quarantined(Quarantine::Nondeterministic)));
    }
}

/// An honest policy is never taken for a stateful one, however often it is
/// rechecked: the reference set, every answer rechecked, on mixed batches.
#[test]
fn honest_policies_pass_every_recheck() {
    let flows = flowgate_reference_set::sample::flows(7, 600);
    let natives = crate::native_reference();
    for isolation in [Isolation::Reuse, Isolation::PerCall] {
        let host = crate::reference_builder().isolation(isolation).recheck_every(1).build().unwrap();
        for chunk in flows.chunks(200) {
            for (flow, decision) in chunk.iter().zip(host.evaluate_batch(chunk)) {
                assert_eq!(decision.to_json(), natives.decide(flow).to_json());
            }
        }
        assert!(host.policies().iter().all(|p| !p.quarantined && p.faults == 0), "{isolation:?}");
    }
}

/// A fresh instance starts from a snapshot of a configured one, taken at
/// load: it answers exactly as an instance configured afresh does (the
/// reference set, whose answers depend on their `[config]`), at every
/// level, in single calls and in batches; and a snapshot holds nothing of
/// any record, so a policy that remembers records still carries nothing
/// from one fresh instance to the next.
#[test]
fn a_snapshot_answers_exactly_like_configuring_afresh() {
    let sample = flowgate_reference_set::sample::flows(11, 300);
    let natives = crate::native_reference();
    for isolation in [Isolation::PerRecord, Isolation::PerCall, Isolation::Reuse] {
        let snapshotted = crate::reference_builder().isolation(isolation).build().unwrap();
        let afresh = crate::reference_builder().isolation(isolation).snapshots(false).build().unwrap();
        assert_eq!(flowgate::testing::snapshotted(&snapshotted), 10, "every reference policy is snapshotted");
        assert_eq!(flowgate::testing::snapshotted(&afresh), 0);
        for chunk in sample.chunks(100) {
            let batch = snapshotted.evaluate_batch(chunk);
            for ((flow, from_snapshot), configured) in chunk.iter().zip(&batch).zip(afresh.evaluate_batch(chunk)) {
                assert_eq!(from_snapshot.to_json(), configured.to_json(), "{isolation:?}");
                assert_eq!(from_snapshot.to_json(), natives.decide(flow).to_json(), "{isolation:?}");
            }
        }
        for flow in &sample[..40] {
            assert_eq!(snapshotted.evaluate(flow).to_json(), afresh.evaluate(flow).to_json(), "{isolation:?}");
        }
    }
    let host = with(STATEFUL_POLICY).isolation(Isolation::PerCall).build().unwrap();
    assert_eq!(flowgate::testing::snapshotted(&host), 1);
    for flow in flows("s", 20) {
        let decision = host.evaluate(&flow);
        assert!(decision.obligations.is_empty(), "nothing carried from an earlier call: {}", decision.to_json());
    }
}

/// The class: work without bound. A policy that starts slowly and traps on
/// a third of the records makes every retry start a fresh instance; the
/// whole call (start, configuration, batch, retries, recheck) stays within
/// four deadlines per policy, at every level, and whatever is left when the
/// budget is spent is denied, naming it.
#[test]
fn a_call_costs_at_most_its_budget() {
    let deadline = 250;
    // A start of some tens of milliseconds here, within the deadline even on a busy machine.
    let wasm = wat_fixture(SLOW_START, 8_000_000);
    let batch: Vec<FlowRecord> = (0..192)
        .map(|n| if n % 3 == 0 { record("p", &format!("x{n}")) } else { record("p", &format!("ok{n}")) })
        .collect();
    for isolation in [Isolation::PerRecord, Isolation::PerCall, Isolation::Reuse] {
        let limits = Limits { deadline_ms: deadline, ..Limits::default() };
        let host = with(&wasm).limits(limits).isolation(isolation).build().unwrap();
        let started = Instant::now();
        let decisions = host.evaluate_batch(&batch);
        let took = started.elapsed();
        // Four deadlines, and a second for the host's own work on a busy machine.
        assert!(took < Duration::from_millis(4 * deadline + 1_000), "{isolation:?}: took {took:?}");
        let mut spent = 0;
        for (flow, decision) in batch.iter().zip(&decisions) {
            let answer = decision.answers.iter().find(|a| a.policy.name == "fixture").unwrap();
            match &answer.outcome {
                Ok(_) => assert!(flow.id.starts_with("ok"), "{}", decision.to_json()),
                Err(Fault::BudgetSpent(ms)) => {
                    assert_eq!(*ms, 4 * deadline);
                    assert_eq!(decision.effect, Effect::Deny);
                    spent += 1;
                }
                Err(_) => assert_eq!(decision.effect, Effect::Deny),
            }
        }
        eprintln!("{isolation:?}: {took:?}, {spent} records not asked (budget spent)");
    }
}

/// Quarantine is checked between retries: once a batch's retries have
/// quarantined the policy, the rest of the batch is not asked.
#[test]
fn quarantine_is_checked_between_retries() {
    let host = with(PICKY_POLICY).quarantine_after(16).build().unwrap();
    let decisions = host.evaluate_batch(&flows("hostile", 64));
    let outcomes: Vec<_> = decisions
        .iter()
        .map(|d| d.answers.iter().find(|a| a.policy.name == "fixture").unwrap().outcome.clone())
        .collect();
    assert!(outcomes[..16].iter().all(|o| matches!(o, Err(Fault::Unreachable))), "{:?}", &outcomes[..16]);
    assert!(
        outcomes[16..].iter().all(|o| *o == Err(Fault::Quarantined(Quarantine::Faults(16)))),
        "{:?}",
        &outcomes[16..]
    );
    assert_eq!(fixture_status(&host).faults, 16, "the records after the quarantine were not run");
}

/// A process may hold many hosts with fresh instances per call at once (a
/// test suite, a Python session building one per notebook cell, a service
/// with a host per platform): they share one engine and its pool, whose
/// address space (4 GiB and a guard a slot) is reserved once, not once per
/// host, which ran out after about twenty hosts.
#[test]
fn many_hosts_with_fresh_instances_live_side_by_side() {
    let wasm = wat_fixture(EXFILTRATE, 0);
    let batch = flows("many", 4);
    let hosts: Vec<Host> = (0..64)
        .map(|n| {
            let isolation = if n % 2 == 0 { Isolation::PerCall } else { Isolation::PerRecord };
            // No rechecks: the fixture carries state within a call, and only the hosts are tested here.
            let builder = with(&wasm).isolation(isolation).recheck_every(0);
            builder.build().unwrap_or_else(|err| panic!("host {n}: {err}"))
        })
        .collect();
    for host in &hosts {
        let decisions = host.evaluate_batch(&batch);
        assert!(decisions.iter().all(|d| d.answers.iter().all(|a| a.outcome.is_ok())), "{:?}", decisions[0]);
    }
}
