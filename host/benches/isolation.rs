//! What each isolation level costs per record: the ten reference policies,
//! one record per call and batches of 256, at `per-record`, `per-call` and
//! `reuse` (with its default rechecks, without, rechecking every record,
//! and with fresh instances configured afresh as before snapshots), beside
//! native code; batches of the sample's six platforms, of two platforms
//! alternating, and of one platform (one call per platform and policy);
//! and what one fresh configured instance costs (`instantiation`): from
//! the snapshot of a configured instance or configured afresh, from the
//! pool (`per-call`) or mapped on demand (`reuse`), in wall time and in
//! the benchmarking thread's CPU time.
//!
//! `cargo bench -p flowgate --bench isolation`

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::testing::NativeSet;
use flowgate::{Bundle, Host, Isolation};
use flowgate_reference_set::sample;

const RECORDS: usize = 1024;

/// The reference set at `isolation`, rechecking one record in
/// `recheck_every` (0: never), fresh instances from snapshots or not.
fn host(isolation: Isolation, recheck_every: u64, snapshots: bool) -> Host {
    builder(isolation).recheck_every(recheck_every).snapshots(snapshots).build().unwrap()
}

fn builder(isolation: Isolation) -> flowgate::HostBuilder {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| Bundle::from_bytes(name, manifest, wasm.to_vec()).unwrap())
        .fold(Host::builder().isolation(isolation), flowgate::HostBuilder::bundle)
}

fn isolation(c: &mut Criterion) {
    let flows = sample::flows(42, RECORDS);
    let natives = NativeSet::new(
        flowgate_reference_set::native()
            .into_iter()
            .map(|(name, policy)| (flowgate_reference_set::manifest(name).unwrap(), policy)),
    )
    .unwrap();
    // `reuse_configured_afresh` is `reuse` as it was before snapshots:
    // every fresh instance (a recheck's, a new tenant's) configured.
    let levels = [
        ("per_record", Isolation::PerRecord, 1024, true),
        ("per_call", Isolation::PerCall, 1024, true),
        ("reuse", Isolation::Reuse, 1024, true),
        ("reuse_no_recheck", Isolation::Reuse, 0, true),
        ("reuse_recheck_all", Isolation::Reuse, 1, true),
        ("reuse_configured_afresh", Isolation::Reuse, 1024, false),
    ];
    let hosts: Vec<(&str, Host)> =
        levels.iter().map(|&(name, level, every, snapshots)| (name, host(level, every, snapshots))).collect();
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
    // One platform: each policy is called once per batch.
    let single: Vec<_> = flows
        .iter()
        .map(|flow| {
            let mut flow = flow.clone();
            flow.platform.id = "platform-a".into();
            flow
        })
        .collect();
    for (name, host) in &hosts {
        group.bench_function(format!("{name}_batch_256_two_platforms"), |b| {
            b.iter(|| mixed.chunks(256).map(|chunk| host.evaluate_batch(chunk)).collect::<Vec<_>>())
        });
        group.bench_function(format!("{name}_batch_256_one_platform"), |b| {
            b.iter(|| single.chunks(256).map(|chunk| host.evaluate_batch(chunk)).collect::<Vec<_>>())
        });
    }
    group.finish();

    // One fresh configured instance of each of the ten policies, per
    // iteration (throughput: per policy).
    let mut group = c.benchmark_group("instantiation");
    let unsnapshotted = |isolation| builder(isolation).snapshots(false).build().unwrap();
    let instances = [
        ("fresh_configured_instance", &hosts[1].1),
        ("fresh_configured_instance_on_demand", &hosts[2].1),
        ("configured_afresh_pooled", &unsnapshotted(Isolation::PerCall)),
        ("configured_afresh_on_demand", &unsnapshotted(Isolation::Reuse)),
    ];
    for (name, host) in instances {
        assert_eq!(flowgate::testing::snapshotted(host), if name.starts_with("fresh") { 10 } else { 0 }, "{name}");
        let count = flowgate::testing::start_fresh_instances(host).unwrap();
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(name, |b| b.iter(|| flowgate::testing::start_fresh_instances(host).unwrap()));
        // The same, timed in this thread's CPU time (user and system): on
        // a machine shared with other work, what an instance costs the
        // thread that starts it, without the time others had the core.
        group.bench_function(format!("{name}_cpu_time"), |b| {
            b.iter_custom(|iters| {
                let started = thread_cpu_time();
                for _ in 0..iters {
                    flowgate::testing::start_fresh_instances(host).unwrap();
                }
                thread_cpu_time() - started
            })
        });
    }
    group.finish();
}

/// The CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec for the call's duration.
    #[allow(unsafe_code)]
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "the thread's CPU clock");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = isolation
}
criterion_main!(benches);
