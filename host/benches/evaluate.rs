//! Cost per record of the ten reference policies: native Rust (the floor,
//! with the same combining), Flowgate one record per call, Flowgate batches.
//!
//! `cargo bench -p flowgate --bench evaluate`

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowgate::sdk::{DynPolicy, FlowRecord};
use flowgate::{Bundle, Host, Manifest, PolicyAnswer, PolicyInfo, Unmatched, combine};
use flowgate_reference_set::sample;

const RECORDS: usize = 4096;

fn reference_host() -> Host {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| Bundle::from_bytes(name, manifest, wasm.to_vec()).unwrap())
        .fold(Host::builder(), flowgate::HostBuilder::bundle)
        .build()
        .unwrap()
}

fn native_policies() -> Vec<(Arc<PolicyInfo>, Box<dyn DynPolicy>)> {
    flowgate_reference_set::native()
        .into_iter()
        .map(|(name, policy)| {
            let manifest = Manifest::parse(name, flowgate_reference_set::manifest(name).unwrap()).unwrap();
            (Arc::new(PolicyInfo::native(&manifest, policy.rules())), policy)
        })
        .collect()
}

fn native_decide(policies: &[(Arc<PolicyInfo>, Box<dyn DynPolicy>)], flow: &FlowRecord) -> flowgate::Decision {
    let answers = policies
        .iter()
        .map(|(info, policy)| PolicyAnswer { policy: Arc::clone(info), outcome: Ok(policy.evaluate(flow)) })
        .collect();
    combine(flow, answers, Unmatched::Deny)
}

fn per_record(c: &mut Criterion) {
    let flows = sample::flows(42, RECORDS);
    let host = reference_host();
    let natives = native_policies();

    let mut group = c.benchmark_group("per_record");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("native", |b| {
        b.iter(|| flows.iter().map(|flow| native_decide(&natives, flow)).collect::<Vec<_>>())
    });
    group.bench_function("flowgate_single", |b| {
        b.iter(|| flows.iter().map(|flow| host.evaluate(flow)).collect::<Vec<_>>())
    });
    for batch in [1, 16, 256, 4096] {
        group.bench_function(format!("flowgate_batch_{batch}"), |b| {
            b.iter_batched(
                || (),
                |()| flows.chunks(batch).flat_map(|chunk| host.evaluate_batch(chunk)).collect::<Vec<_>>(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The engines people would otherwise pick, on the same records with the
/// same decisions (checked by `tests/all/peers.rs`). Slower, so on fewer
/// records; compare time per record.
fn peers(c: &mut Criterion) {
    const PEER_RECORDS: usize = 256;
    let flows = sample::flows(42, PEER_RECORDS);
    let mut group = c.benchmark_group("per_record_peers");
    group.throughput(Throughput::Elements(PEER_RECORDS as u64));
    let mut rego = flowgate_peers::RegoPolicies::new().unwrap();
    group.bench_function("regorus", |b| {
        b.iter(|| flows.iter().map(|flow| rego.decide(flow).unwrap()).collect::<Vec<_>>())
    });
    let cedar = flowgate_peers::CedarPolicies::new().unwrap();
    group.bench_function("cedar", |b| {
        b.iter(|| flows.iter().map(|flow| cedar.decide(flow).unwrap()).collect::<Vec<_>>())
    });
    group.finish();
}

criterion_group!(benches, per_record, peers);
criterion_main!(benches);
