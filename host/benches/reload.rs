//! Hot reload costs: a new version landing in a watched directory until it
//! serves (with and without the module cache), start-up of the reference
//! set (cold and warm cache), and evaluation throughput with 1 and 2
//! threads, with and without continuous reloads.
//!
//! `cargo bench -p flowgate --bench reload`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::sdk::FlowRecord;
use flowgate::testing::NativeSet;
use flowgate::{Bundle, Decision, Host, HostBuilder, PolicyEvent};
use flowgate_reference_set::sample;

const RECORDS: usize = 4096;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowgate-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn reference() -> HostBuilder {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| Bundle::from_bytes(name, manifest, wasm.to_vec()).unwrap())
        .fold(Host::builder(), HostBuilder::bundle)
}

fn lawful_basis(version: u64) -> (String, &'static [u8]) {
    let (_, manifest, wasm) = flowgate_reference_set::bundles().find(|(n, _, _)| *n == "lawful-basis").unwrap();
    (manifest.replace("version = \"1.0.0\"", &format!("version = \"1.0.{version}\"")), wasm)
}

fn write_bundle(dir: &Path, manifest: &str, wasm: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(flowgate::MODULE_FILE), wasm).unwrap();
    std::fs::write(dir.join(flowgate::MANIFEST_FILE), manifest).unwrap();
}

/// From writing a new version into a watched directory to its activation.
fn landing_to_serving(c: &mut Criterion) {
    let mut group = c.benchmark_group("landing_to_serving");
    group.sample_size(10);
    for cached in [false, true] {
        let dir = scratch(&format!("landing-{cached}"));
        let (manifest, wasm) = lawful_basis(0);
        write_bundle(&dir.join("lawful-basis"), &manifest, wasm);
        let mut builder = Host::builder().policy_dir(&dir);
        if cached {
            builder = builder.cache_dir(scratch("landing-cache"));
        }
        let host = Arc::new(builder.build().unwrap());
        let events = host.subscribe();
        let _watcher = host.watch(&dir).unwrap();
        let mut version = 0;
        group.bench_function(if cached { "cache" } else { "no_cache" }, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    version += 1;
                    let (manifest, _) = lawful_basis(version);
                    let landed = Instant::now();
                    std::fs::write(dir.join("lawful-basis").join(flowgate::MANIFEST_FILE), manifest).unwrap();
                    // A read that races the write is rejected; the next event loads it.
                    while !matches!(
                        events.recv_timeout(Duration::from_secs(30)).expect("activation"),
                        PolicyEvent::Activated { .. }
                    ) {}
                    total += landed.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

/// The decisions of `host` about `flows`, as JSON.
fn decisions(host: &Host, flows: &[FlowRecord]) -> Vec<String> {
    host.evaluate_batch(flows).iter().map(Decision::to_json).collect()
}

/// Building a host with the ten reference policies.
fn start_up(c: &mut Criterion) {
    // The rows must build the same host: without a cache, compiling into
    // one, and loading from it decide alike.
    let flows = sample::flows(42, 256);
    let expected = decisions(&reference().build().unwrap(), &flows);
    let cache = scratch("start-up-check");
    for pass in ["cold", "warm"] {
        let host = reference().cache_dir(&cache).build().unwrap();
        assert!(decisions(&host, &flows) == expected, "a {pass} cache changes decisions");
    }
    assert!(expected.iter().all(|d| !d.contains("policy-fault")));

    let mut group = c.benchmark_group("start_up");
    group.sample_size(10);
    group.bench_function("no_cache", |b| b.iter(|| reference().build().unwrap()));
    let mut cold = 0;
    group.bench_function("cold_cache", |b| {
        b.iter(|| {
            cold += 1;
            reference().cache_dir(scratch(&format!("cold-{cold}"))).build().unwrap()
        })
    });
    let warm = scratch("warm");
    reference().cache_dir(&warm).build().unwrap();
    group.bench_function("warm_cache", |b| b.iter(|| reference().cache_dir(&warm).build().unwrap()));
    group.finish();
}

/// Evaluates `flows` split over `threads` threads, in batches of 256.
fn evaluate_on(host: &Host, flows: &[FlowRecord], threads: usize) {
    std::thread::scope(|scope| {
        for part in flows.chunks(flows.len().div_ceil(threads)) {
            scope.spawn(move || {
                for batch in part.chunks(256) {
                    std::hint::black_box(host.evaluate_batch(batch));
                }
            });
        }
    });
}

/// The ten reference policies compiled natively, combined as the host does.
fn native_reference() -> NativeSet {
    NativeSet::new(
        flowgate_reference_set::native()
            .into_iter()
            .map(|(name, policy)| (flowgate_reference_set::manifest(name).unwrap(), policy)),
    )
    .unwrap()
}

/// Decides `flows` natively, split over `threads` threads as [`evaluate_on`] splits them.
fn decide_natively_on(natives: &NativeSet, flows: &[FlowRecord], threads: usize) {
    std::thread::scope(|scope| {
        for part in flows.chunks(flows.len().div_ceil(threads)) {
            scope.spawn(move || {
                for batch in part.chunks(256) {
                    std::hint::black_box(batch.iter().map(|flow| natives.decide(flow)).collect::<Vec<_>>());
                }
            });
        }
    });
}

/// Throughput with 1 and 2 threads, quiet and during continuous reloads,
/// beside native code on 1 and 2 threads.
fn throughput(c: &mut Criterion) {
    let flows = sample::flows(42, RECORDS);
    let host = Arc::new(reference().cache_dir(scratch("throughput-cache")).build().unwrap());
    // Split over threads, the records are decided as on one.
    let expected = decisions(&host, &flows);
    let split: Vec<String> = std::thread::scope(|scope| {
        let parts: Vec<_> = flows.chunks(RECORDS / 2).map(|part| scope.spawn(|| decisions(&host, part))).collect();
        parts.into_iter().flat_map(|part| part.join().unwrap()).collect()
    });
    assert!(split == expected, "two threads decide unlike one");
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(RECORDS as u64));
    let natives = native_reference();
    assert!(
        flows.iter().zip(&expected).all(|(flow, decision)| natives.decide(flow).to_json() == *decision),
        "native code decides unlike the host"
    );
    for threads in [1, 2] {
        group.bench_function(format!("{threads}_threads"), |b| b.iter(|| evaluate_on(&host, &flows, threads)));
        // The floor: how the same work scales natively on this machine.
        group.bench_function(format!("native_{threads}_threads"), |b| {
            b.iter(|| decide_natively_on(&natives, &flows, threads))
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reloader = {
        let (host, stop) = (Arc::clone(&host), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut version = 0;
            // One new version every 10 ms: a hundred reloads a second.
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                version += 1;
                let (manifest, wasm) = lawful_basis(version);
                host.load(&Bundle::from_bytes("reload", &manifest, wasm.to_vec()).unwrap()).unwrap();
            }
            version
        })
    };
    group.bench_function("2_threads_during_reloads", |b| b.iter(|| evaluate_on(&host, &flows, 2)));
    stop.store(true, Ordering::Relaxed);
    let reloads = reloader.join().unwrap();
    eprintln!("throughput/2_threads_during_reloads: {reloads} reloads happened during the measurement");
    group.finish();
}

criterion_group!(benches, landing_to_serving, start_up, throughput);
criterion_main!(benches);
