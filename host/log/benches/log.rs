//! What the transparency log costs per receipt, the parts that stage B's
//! targets rest on (BENCHMARKS.md, "Decision receipts"):
//!
//! - `append`: what the writer adds per decision: encode the receipt, hash
//!   the leaf, append it to the tree and keep the stored levels (no I/O);
//! - `sign_checkpoint`: what it adds per group commit: one checkpoint
//!   signed (its root is the frontier's, already folded);
//! - `verify_chunk`: `audit verify` on one core: decode, check and hash
//!   every entry of a chunk and fold it, the rate that must reach
//!   1,000,000 receipts/s;
//! - `verify_all_cores`: the same over chunks on every core, joined;
//! - `prove`: one inclusion proof from stored levels of a large tree.
//!
//! `cargo bench -p flowgate-log --bench log`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate_log::Digest;
use flowgate_log::checkpoint::Checkpoint;
use flowgate_log::frontier::Frontier;
use flowgate_log::keys::SecretKey;
use flowgate_log::merkle::{inclusion_proof, leaf_hash};
use flowgate_log::note::Signer;
use flowgate_log::policy_set::{PolicyEntry, PolicySet};
use flowgate_log::receipt::{Effect, ObligationRef, ReasonRef, Receipt, RuleRef};
use flowgate_log::tiles::{MemoryLevels, Tiled};
use flowgate_log::verify::{ChunkVerifier, Combiner};

const CHUNK: usize = 1 << 16;

/// A receipt like the reference set's (see `receipt.rs`' tests).
fn receipt(index: u64) -> Receipt {
    Receipt {
        index,
        time_ms: 1_796_000_000_000 + index / 256,
        policy_set: 0,
        platform: ["alipay", "taobao", "didi", "meituan", "huabei", "weibo"][index as usize % 6].into(),
        flow: format!("42-{index}"),
        record: Digest::of(&index.to_be_bytes()),
        effect: Effect::ALL[index as usize % 3],
        applied: vec![5, 8, 10],
        reasons: vec![
            ReasonRef { policy: 8, rule: RuleRef::Numbered(5) },
            ReasonRef { policy: 10, rule: RuleRef::Numbered(4) },
        ],
        obligations: vec![ObligationRef { kind: 2, parameter: 0 }],
        remedies: vec![],
    }
}

fn policy_set() -> PolicySet {
    PolicySet {
        index: 0,
        time_ms: 1_796_000_000_000,
        id: Digest::of(b"set"),
        host_version: "0.1.0".into(),
        host_rules: vec!["no-policy-applied".into()],
        policies: (0..10)
            .map(|i| PolicyEntry {
                name: format!("policy-{i}"),
                version: "1.0.0".into(),
                digest: Digest::of(&[i]),
                rules: (0..5).map(|r| format!("rule-{r}")).collect(),
            })
            .collect(),
        obligations: vec![],
        remedies: vec![],
    }
}

fn entries(n: usize) -> Vec<Vec<u8>> {
    std::iter::once(policy_set().encode()).chain((1..n as u64).map(|i| receipt(i).encode())).collect()
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Elements(1024));
    let receipts: Vec<Receipt> = (1..=1024).map(receipt).collect();
    group.bench_function("append", |b| {
        let mut frontier = Frontier::new();
        let mut levels = MemoryLevels::new();
        let mut buffer = Vec::with_capacity(256 * 1024);
        b.iter(|| {
            buffer.clear();
            for receipt in &receipts {
                let at = buffer.len();
                receipt.encode_into(&mut buffer);
                let leaf = leaf_hash(&buffer[at..]);
                frontier.push(leaf, |subtree, hash| levels.keep(subtree, hash).unwrap());
            }
            black_box(frontier.root())
        })
    });
    group.throughput(Throughput::Elements(1));
    let signer = Signer::new("flowgate.example/bench", SecretKey::from_seed(&[7; 32])).unwrap();
    let checkpoint = Checkpoint::new("flowgate.example/bench", 1 << 20, Digest::of(b"root"));
    group.bench_function("sign_checkpoint", |b| b.iter(|| black_box(checkpoint.sign(&signer).unwrap())));
    group.finish();
}

fn verify(c: &mut Criterion) {
    let entries = entries(CHUNK * 4);
    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Elements(CHUNK as u64));
    group.bench_function("verify_chunk", |b| {
        b.iter(|| {
            let mut verifier = ChunkVerifier::new(0);
            entries[..CHUNK].iter().for_each(|e| {
                verifier.push(e, |_, _| {});
            });
            black_box(verifier.finish())
        })
    });
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.bench_function("verify_all_cores", |b| {
        b.iter(|| {
            let reports: Vec<_> = std::thread::scope(|scope| {
                let workers: Vec<_> = entries
                    .chunks(CHUNK)
                    .enumerate()
                    .map(|(k, part)| {
                        scope.spawn(move || {
                            let mut verifier = ChunkVerifier::new((k * CHUNK) as u64);
                            part.iter().for_each(|e| {
                                verifier.push(e, |_, _| {});
                            });
                            verifier.finish()
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            let mut combiner = Combiner::new();
            reports.into_iter().for_each(|r| combiner.join(r).unwrap());
            assert_eq!(combiner.problems().0.len(), 0);
            black_box(combiner.frontier().root())
        })
    });
    group.throughput(Throughput::Elements(1));
    let mut frontier = Frontier::new();
    let mut levels = MemoryLevels::new();
    for e in &entries {
        frontier.push(leaf_hash(e), |s, h| levels.keep(s, h).unwrap());
    }
    let tiled = Tiled(levels);
    let size = frontier.size();
    group.bench_function("prove", |b| b.iter(|| black_box(inclusion_proof(&tiled, 123_457, size).unwrap())));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = append, verify
}
criterion_main!(benches);
