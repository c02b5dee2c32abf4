//! Cost per record of the ten reference policies: native Rust (the floor,
//! with the same combining), Flowgate one record per call, Flowgate batches.
//!
//! `cargo bench -p flowgate --bench evaluate`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowgate::sdk::{Effect, FlowRecord};
use flowgate::testing::NativeSet;
use flowgate::{Bundle, Host};
use flowgate_peers::comparable;
use flowgate_reference_set::sample;

const RECORDS: usize = 4096;
const BATCHES: [usize; 4] = [1, 16, 256, 4096];

fn reference_host() -> Host {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| Bundle::from_bytes(name, manifest, wasm.to_vec()).unwrap())
        .fold(Host::builder(), flowgate::HostBuilder::bundle)
        .build()
        .unwrap()
}

/// The ten policies compiled natively, combined as the host combines them.
fn native_policies() -> NativeSet {
    NativeSet::new(
        flowgate_reference_set::native()
            .into_iter()
            .map(|(name, policy)| (flowgate_reference_set::manifest(name).unwrap(), policy)),
    )
    .unwrap()
}

/// Every row must do the same work: native, single calls and every batch
/// size decide every benchmarked record alike, none of them by a fault.
fn assert_rows_agree(flows: &[FlowRecord], host: &Host, natives: &NativeSet) {
    let single: Vec<String> = flows.iter().map(|flow| host.evaluate(flow).to_json()).collect();
    for (flow, decision) in flows.iter().zip(&single) {
        assert_eq!(natives.decide(flow).to_json(), *decision, "native and Flowgate differ on {}", flow.to_json());
        assert!(!decision.contains("policy-fault"), "{decision}");
    }
    for batch in BATCHES {
        let batched: Vec<String> =
            flows.chunks(batch).flat_map(|chunk| host.evaluate_batch(chunk)).map(|d| d.to_json()).collect();
        assert!(batched == single, "batches of {batch} decide unlike single calls");
    }
}

fn per_record(c: &mut Criterion) {
    let flows = sample::flows(42, RECORDS);
    let host = reference_host();
    let natives = native_policies();
    assert_rows_agree(&flows, &host, &natives);

    let mut group = c.benchmark_group("per_record");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("native", |b| b.iter(|| flows.iter().map(|flow| natives.decide(flow)).collect::<Vec<_>>()));
    group.bench_function("flowgate_single", |b| {
        b.iter(|| flows.iter().map(|flow| host.evaluate(flow)).collect::<Vec<_>>())
    });
    for batch in BATCHES {
        group.bench_function(format!("flowgate_batch_{batch}"), |b| {
            b.iter_batched(
                || (),
                |()| flows.chunks(batch).map(|chunk| host.evaluate_batch(chunk)).collect::<Vec<_>>(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The engines people would otherwise pick, on the same records with the
/// same decisions (checked here on the benchmarked records, and by
/// `tests/all/peers.rs` on 10,000). Slower, so on fewer records; compare
/// time per record.
fn peers(c: &mut Criterion) {
    const PEER_RECORDS: usize = 256;
    let flows = sample::flows(42, PEER_RECORDS);
    let mut rego = flowgate_peers::RegoPolicies::new().unwrap();
    let cedar = flowgate_peers::CedarPolicies::new().unwrap();
    // The same decisions as Flowgate's: whole decisions for Rego, effects
    // and the deny rules named for Cedar (what it models).
    let host = reference_host();
    for flow in &flows {
        let decision = host.evaluate(flow);
        assert_eq!(rego.decide(flow).unwrap(), comparable(&decision.to_json()), "Rego differs on {}", flow.to_json());
        let answer = cedar.decide(flow).unwrap();
        assert_eq!(cedar.decide_from_json(flow).unwrap(), answer, "Cedar's two contexts differ on {}", flow.to_json());
        assert_eq!(answer.deny, decision.effect == Effect::Deny, "Cedar differs on {}", flow.to_json());
        for (policy, rule) in &answer.rules {
            let named = decision.reasons.iter().any(|r| r.policy() == policy && r.rule() == rule);
            assert!(named, "Cedar names {policy}/{rule}, Flowgate does not: {}", flow.to_json());
        }
    }

    let mut group = c.benchmark_group("per_record_peers");
    group.throughput(Throughput::Elements(PEER_RECORDS as u64));
    group.bench_function("regorus", |b| {
        b.iter(|| flows.iter().map(|flow| rego.decide(flow).unwrap()).collect::<Vec<_>>())
    });
    // The fair row: the context from restricted expressions; and the
    // context from JSON, which is about half of that row's time.
    group.bench_function("cedar", |b| {
        b.iter(|| flows.iter().map(|flow| cedar.decide(flow).unwrap()).collect::<Vec<_>>())
    });
    group.bench_function("cedar_from_json", |b| {
        b.iter(|| flows.iter().map(|flow| cedar.decide_from_json(flow).unwrap()).collect::<Vec<_>>())
    });
    group.finish();
}

criterion_group!(benches, per_record, peers);
criterion_main!(benches);
