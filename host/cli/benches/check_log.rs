//! What the decision log costs `flowgate check` on a million records:
//! the real binary, log off and `fsync`, in one run.
//!
//! `cargo bench -p flowgate-cli --bench check_log`
//!
//! The records (generated once, as `sample_flows` writes them) and the logs
//! live under `target/bench-check-log` on the machine's disk
//! (`FLOWGATE_BENCH_LOG_DIR` moves them); decisions go to `/dev/null`. Each
//! measurement starts a new log, so every run writes a million receipts
//! and signs their checkpoints with `fdatasync`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

const RECORDS: usize = 1_000_000;

fn root() -> PathBuf {
    std::env::var_os("FLOWGATE_BENCH_LOG_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-check-log"), PathBuf::from)
}

/// A million records, one JSON line each.
fn records(root: &Path) -> PathBuf {
    let path = root.join("flows-1m.jsonl");
    let mut rng = flowgate_reference_set::sample::Rng::new(2026);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for n in 0..RECORDS {
        let flow = flowgate_reference_set::sample::flow(&mut rng, format!("f-{n}"));
        writeln!(out, "{}", flow.to_json()).unwrap();
    }
    out.flush().unwrap();
    path
}

fn check(args: &[&std::ffi::OsStr]) {
    let status = Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .arg("check")
        .arg("--no-progress")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "flowgate check failed: {status}");
}

fn check_log(c: &mut Criterion) {
    let root = root();
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let flows = records(&root);
    let key = flowgate::SecretKey::generate().unwrap();
    key.write_pair(&root, "bench").unwrap();
    let key_path = root.join("bench.key");
    let mut group = c.benchmark_group("check_1m");
    // Seconds an iteration: ten samples of one run each.
    group.throughput(Throughput::Elements(RECORDS as u64)).sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("off", |b| b.iter(|| check(&[flows.as_os_str()])));
    group.bench_function("fsync", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                let log = root.join("log");
                let _ = std::fs::remove_dir_all(&log);
                let started = Instant::now();
                check(&[
                    "--log".as_ref(),
                    log.as_os_str(),
                    "--log-key".as_ref(),
                    key_path.as_os_str(),
                    "--durability".as_ref(),
                    "fsync".as_ref(),
                    flows.as_os_str(),
                ]);
                spent += started.elapsed();
            }
            spent
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, check_log);
criterion_main!(benches);
