//! Per-record cost of Extism single calls against Flowgate single calls, in
//! the same run, on the same records, with the same decisions (checked by
//! `tests/agreement.rs`).
//!
//! `cargo bench --manifest-path host/benches/extism/Cargo.toml`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate_extism_bench::{ExtismPolicies, flowgate_host};

const RECORDS: usize = 256;

fn extism_vs_flowgate(c: &mut Criterion) {
    let flows = flowgate_reference_set::sample::flows(42, RECORDS);
    let host = flowgate_host();
    let mut extism = ExtismPolicies::new();
    let mut group = c.benchmark_group("extism_vs_flowgate");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("flowgate_single", |b| {
        b.iter(|| flows.iter().map(|flow| host.evaluate(flow)).collect::<Vec<_>>())
    });
    group.bench_function("flowgate_batch_256", |b| b.iter(|| host.evaluate_batch(&flows)));
    group.bench_function("extism_single", |b| {
        b.iter(|| flows.iter().map(|flow| extism.decide(flow)).collect::<Vec<_>>())
    });
    group.finish();
}

criterion_group!(benches, extism_vs_flowgate);
criterion_main!(benches);
