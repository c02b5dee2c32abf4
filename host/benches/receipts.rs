//! What the decision log costs, in one run: the ten reference policies in
//! batches of 256 with the log off, `buffered` and `fsync`; `audit verify`
//! of a million receipts on one core and on every core; and the bytes a
//! receipt takes, alone and on disk (printed).
//!
//! `cargo bench -p flowgate --bench receipts`
//!
//! The logs are written to a directory under `target/` (a real disk, so
//! that `fsync` means what it says; `FLOWGATE_BENCH_LOG_DIR` moves it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::transparency::entry::Entry;
use flowgate::transparency::store::Stored;
use flowgate::{Audit, Bundle, Durability, Host, LogOptions, SecretKey, VerifyOptions};
use flowgate_reference_set::sample;

const RECORDS: usize = 1024;
const VERIFIED: usize = 1_000_000;

fn host(log: Option<(&Path, &SecretKey, Durability)>) -> Host {
    let mut builder = flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| Bundle::from_bytes(name, manifest, wasm.to_vec()).unwrap())
        .fold(Host::builder(), flowgate::HostBuilder::bundle);
    if let Some((dir, key, durability)) = log {
        builder = builder.decision_log(dir, key.clone(), LogOptions { durability, ..LogOptions::default() });
    }
    builder.build().unwrap()
}

fn root() -> PathBuf {
    std::env::var_os("FLOWGATE_BENCH_LOG_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-receipts"), PathBuf::from)
}

fn receipts(c: &mut Criterion) {
    let flows = sample::flows(42, RECORDS);
    let root = root();
    let _ = std::fs::remove_dir_all(&root);
    let key = SecretKey::generate().unwrap();
    let rows = [("off", None), ("buffered", Some(Durability::Buffered)), ("fsync", Some(Durability::Fsync))];
    let mut group = c.benchmark_group("receipts");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, durability) in rows {
        let dir = root.join(name);
        let host = host(durability.map(|d| (dir.as_path(), &key, d)));
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
                started.elapsed()
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

/// A million receipts of the reference set, logged in batches of 256.
fn million(dir: &Path, key: &SecretKey) {
    let host = host(Some((dir, key, Durability::Buffered)));
    let flows = sample::flows(7, 65_536);
    let mut written = 0;
    while written < VERIFIED {
        let start = written % flows.len();
        let len = 256.min(VERIFIED - written).min(flows.len() - start);
        host.try_evaluate_batch(&flows[start..start + len]).unwrap();
        written += len;
    }
    host.decision_log().unwrap().close().unwrap();
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() { dir_bytes(&path) } else { std::fs::metadata(&path).unwrap().len() }
        })
        .sum()
}

/// The million-receipt log, made once, on first use (a filtered run that
/// does not verify does not make it).
fn million_log() -> &'static (PathBuf, SecretKey) {
    static LOG: std::sync::OnceLock<(PathBuf, SecretKey)> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let dir = root().join("million");
        let _ = std::fs::remove_dir_all(&dir);
        let key = SecretKey::generate().unwrap();
        million(&dir, &key);
        sizes(&dir);
        (dir, key)
    })
}

/// Prints the bytes of a receipt, and of the log directory per receipt.
fn sizes(dir: &Path) {
    let (mut receipts, mut bytes) = (0u64, 0u64);
    for read in Stored::open(&dir).unwrap().entries().unwrap() {
        let (_, entry) = read.unwrap();
        if let Ok(Entry::Receipt(_)) = Entry::decode(&entry) {
            receipts += 1;
            bytes += entry.len() as u64;
        }
    }
    eprintln!(
        "receipts: {receipts}, {:.1} bytes each on average; the log directory: {:.1} bytes per receipt",
        bytes as f64 / receipts as f64,
        dir_bytes(&dir) as f64 / receipts as f64
    );
}

fn verify(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut group = c.benchmark_group("audit_verify");
    group.throughput(Throughput::Elements(VERIFIED as u64)).sample_size(10);
    for (name, threads) in [("one_core", 1), ("every_core", cores)] {
        group.bench_function(name, |b| {
            let (dir, key) = million_log();
            let audit = Audit::open(dir).unwrap();
            b.iter(|| {
                let verified =
                    audit.verify_with(VerifyOptions { threads, ..VerifyOptions::new(key.public()) }).unwrap();
                assert_eq!((verified.receipts, verified.broken), (VERIFIED as u64, None));
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(root().join("million"));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = receipts, verify
}
criterion_main!(benches);
