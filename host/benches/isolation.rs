//! What each isolation level costs per record: the ten reference policies,
//! one record per call and batches of 256, at `per-record`, `per-call` and
//! `reuse` (with its default rechecks, and without), beside native code;
//! batches mixing two platforms (one call per platform and policy); and
//! what one fresh configured instance costs (`instantiation`).
//!
//! `cargo bench -p flowgate --bench isolation`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::testing::NativeSet;
use flowgate::{Bundle, Host, Isolation};
use flowgate_reference_set::sample;

const RECORDS: usize = 1024;

/// The reference set at `isolation`, rechecking one record in `recheck_every` (0: never).
fn host(isolation: Isolation, recheck_every: u64) -> Host {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| Bundle::from_bytes(name, manifest, wasm.to_vec()).unwrap())
        .fold(Host::builder().isolation(isolation).recheck_every(recheck_every), flowgate::HostBuilder::bundle)
        .build()
        .unwrap()
}

fn isolation(c: &mut Criterion) {
    let flows = sample::flows(42, RECORDS);
    let natives = NativeSet::new(
        flowgate_reference_set::native()
            .into_iter()
            .map(|(name, policy)| (flowgate_reference_set::manifest(name).unwrap(), policy)),
    )
    .unwrap();
    let levels = [
        ("per_record", Isolation::PerRecord, 1024),
        ("per_call", Isolation::PerCall, 1024),
        ("reuse", Isolation::Reuse, 1024),
        ("reuse_no_recheck", Isolation::Reuse, 0),
    ];
    let hosts: Vec<(&str, Host)> = levels.iter().map(|&(name, level, every)| (name, host(level, every))).collect();
    // Every level decides these records as native code does, or the figures compare nothing.
    let expected: Vec<String> = flows.iter().map(|flow| natives.decide(flow).to_json()).collect();
    for (name, host) in &hosts {
        let got: Vec<String> = host.evaluate_batch(&flows).iter().map(|d| d.to_json()).collect();
        assert!(got == expected, "{name} decides like native code");
    }

    let mut group = c.benchmark_group("isolation");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("native", |b| b.iter(|| flows.iter().map(|flow| natives.decide(flow)).collect::<Vec<_>>()));
    for (name, host) in &hosts {
        group.bench_function(format!("{name}_single"), |b| {
            b.iter(|| flows.iter().map(|flow| host.evaluate(flow)).collect::<Vec<_>>())
        });
        group.bench_function(format!("{name}_batch_256"), |b| {
            b.iter(|| flows.chunks(256).map(|chunk| host.evaluate_batch(chunk)).collect::<Vec<_>>())
        });
    }
    // Two platforms interleaved: each policy is called once per platform.
    let mixed: Vec<_> = flows
        .iter()
        .enumerate()
        .map(|(n, flow)| {
            let mut flow = flow.clone();
            flow.platform.id = if n % 2 == 0 { "platform-a".into() } else { "platform-b".into() };
            flow
        })
        .collect();
    for (name, host) in &hosts {
        group.bench_function(format!("{name}_batch_256_two_platforms"), |b| {
            b.iter(|| mixed.chunks(256).map(|chunk| host.evaluate_batch(chunk)).collect::<Vec<_>>())
        });
    }
    group.finish();

    // One fresh configured instance of each of the ten policies, per iteration.
    let mut group = c.benchmark_group("instantiation");
    let (_, host) = &hosts[1];
    let count = flowgate::testing::start_fresh_instances(host).unwrap();
    group.throughput(Throughput::Elements(count as u64));
    group.bench_function("fresh_configured_instance", |b| {
        b.iter(|| flowgate::testing::start_fresh_instances(host).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = isolation
}
criterion_main!(benches);
