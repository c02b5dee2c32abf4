//! What the decision log costs per record: the ten reference policies in
//! batches of 256, with the log off, `buffered` and `fsync`, in one run.
//!
//! `cargo bench -p flowgate --bench receipts`
//!
//! The log is written to a directory under `target/` (a real disk, so that
//! `fsync` means what it says); closed segments are removed between
//! measurements so a long run does not fill the disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::{Bundle, Durability, Host, LogOptions, SecretKey};
use flowgate_reference_set::sample;

const RECORDS: usize = 1024;

fn host(log: Option<(&Path, Durability)>) -> Host {
    let mut builder = flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| Bundle::from_bytes(name, manifest, wasm.to_vec()).unwrap())
        .fold(Host::builder(), flowgate::HostBuilder::bundle);
    if let Some((dir, durability)) = log {
        let options = LogOptions { durability, segment_bytes: 8 << 20, ..LogOptions::default() };
        builder = builder.decision_log(dir, SecretKey::generate().unwrap(), options);
    }
    builder.build().unwrap()
}

/// Removes every segment but the newest (the one being written).
fn prune(dir: &Path) {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("segment-"))
        .collect();
    segments.sort();
    segments.pop();
    segments.iter().for_each(|p| std::fs::remove_file(p).unwrap());
}

fn receipts(c: &mut Criterion) {
    let flows = sample::flows(42, RECORDS);
    let root = std::env::var_os("FLOWGATE_BENCH_LOG_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-receipts"), PathBuf::from);
    let _ = std::fs::remove_dir_all(&root);
    let rows = [("off", None), ("buffered", Some(Durability::Buffered)), ("fsync", Some(Durability::Fsync))];
    let mut group = c.benchmark_group("receipts");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, durability) in rows {
        let dir = root.join(name);
        let host = host(durability.map(|d| (dir.as_path(), d)));
        // The log must not change a decision.
        let reference = self::host(None);
        let json = |host: &Host| host.evaluate_batch(&flows).iter().map(|d| d.to_json()).collect::<Vec<_>>();
        assert!(json(&host) == json(&reference), "{name}: the log changes no decision");
        group.bench_function(format!("{name}_batch_256"), |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    for chunk in flows.chunks(256) {
                        std::hint::black_box(host.try_evaluate_batch(chunk).unwrap());
                    }
                }
                let elapsed = started.elapsed();
                if durability.is_some() {
                    prune(&dir);
                }
                elapsed
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = receipts
}
criterion_main!(benches);
