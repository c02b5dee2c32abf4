//! Cost per record as the work grows: 10, 100 and 1,000 loaded policies
//! (variants of the reference ones, each narrowed to one action, as
//! regulators' per-sector variants would be) beside the same policies
//! compiled natively, and records of 1 to 10 categories.
//!
//! `cargo bench -p flowgate --bench scaling`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowgate::sdk::{Action, Category, Effect, FlowRecord, Obligation, Remedy};
use flowgate::testing::NativeSet;
use flowgate::{Bundle, Decision, Host};
use flowgate_reference_set::sample::{self, Rng};

const RECORDS: usize = 1024;

/// The manifests of `count` policies: the reference ten, then variants of
/// them, each named apart and limited to one action (the reference ones
/// keep their scope), with the reference policy each one runs.
fn manifests(count: usize) -> Vec<(&'static str, String)> {
    let reference: Vec<(&str, &str, &[u8])> = flowgate_reference_set::bundles().collect();
    (0..count)
        .map(|n| {
            let (name, manifest, _) = reference[n % reference.len()];
            if n < reference.len() {
                return (name, manifest.to_owned());
            }
            let action = Action::ALL[n / reference.len() % (Action::ALL.len() - 1)];
            let variant = manifest.replacen(&format!("name = \"{name}\""), &format!("name = \"{name}-{n}\""), 1);
            // The reference vectors are left out: most fall outside the
            // narrowed scope, and a bundle's vectors must hold its scope.
            let variant = variant.split("\n[[test]]").next().unwrap();
            (name, narrow(variant, action))
        })
        .collect()
}

/// A host with the `count` policies of [`manifests`].
fn policies(count: usize) -> Host {
    let cache = std::env::temp_dir().join(format!("flowgate-bench-scaling-{}", std::process::id()));
    let mut builder = Host::builder().cache_dir(&cache);
    for (name, manifest) in manifests(count) {
        let wasm = flowgate_reference_set::bundles().find(|(n, ..)| *n == name).unwrap().2;
        builder = builder.bundle(Bundle::from_bytes(name, &manifest, wasm.to_vec()).unwrap());
    }
    builder.build().unwrap()
}

/// The same `count` policies compiled natively, scopes and all: the floor.
fn native_policies(count: usize) -> NativeSet {
    let manifests = manifests(count);
    let mut natives = Vec::with_capacity(count);
    while natives.len() < count {
        natives.extend(flowgate_reference_set::native());
    }
    let pairs = manifests.iter().map(|(name, manifest)| {
        let at = natives.iter().position(|(n, _)| n == name).unwrap();
        (manifest.as_str(), natives.swap_remove(at).1)
    });
    NativeSet::new(pairs.collect::<Vec<_>>()).unwrap()
}

/// The manifest with its `[applies_to]` actions replaced by `action` alone.
fn narrow(manifest: &str, action: Action) -> String {
    let only = format!("actions = [\"{action}\"]");
    match manifest.lines().find(|line| line.starts_with("actions = ")) {
        Some(line) => manifest.replacen(line, &only, 1),
        None => manifest.replacen("[applies_to]\n", &format!("[applies_to]\n{only}\n"), 1),
    }
}

/// What a decision requires of the platform: effect, obligations, remedies.
/// Variants add reasons of their own, never another outcome.
type Outcome = (Effect, Vec<Obligation>, Vec<Remedy>);

fn outcome(decision: &Decision) -> Outcome {
    (decision.effect, decision.obligations.clone(), decision.remedies.clone())
}

/// The rows of a group must do the same work: batches decide like single
/// calls, no decision is a fault, and (given `expected`) every record gets
/// the outcome the ten reference policies alone give it.
fn assert_rows_agree(host: &Host, flows: &[FlowRecord], expected: Option<&[Outcome]>) {
    let batched: Vec<Decision> = flows.chunks(256).flat_map(|c| host.evaluate_batch(c)).collect();
    for (n, (flow, decision)) in flows.iter().zip(&batched).enumerate() {
        assert!(*decision == host.evaluate(flow), "batch and single call differ on {}", flow.to_json());
        assert!(decision.reasons.iter().all(|r| r.rule() != "policy-fault"), "{}", decision.to_json());
        if let Some(expected) = expected {
            assert!(outcome(decision) == expected[n], "variants change the outcome of {}", flow.to_json());
        }
    }
}

fn loaded_policies(c: &mut Criterion) {
    let flows = sample::flows(42, RECORDS);
    let reference: Vec<_> = policies(10).evaluate_batch(&flows).iter().map(outcome).collect();
    let mut group = c.benchmark_group("loaded_policies");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);
    for count in [10, 100, 1000] {
        let host = policies(count);
        assert_eq!(host.policies().len(), count);
        assert_rows_agree(&host, &flows, Some(&reference));
        let natives = native_policies(count);
        for flow in &flows {
            let (native, wasm) = (natives.decide(flow).to_json(), host.evaluate(flow).to_json());
            assert!(native == wasm, "native and Flowgate differ on {}", flow.to_json());
        }
        group.bench_function(format!("{count}_native"), |b| {
            b.iter(|| flows.iter().map(|flow| natives.decide(flow)).collect::<Vec<_>>())
        });
        group.bench_function(format!("{count}_batch_256"), |b| {
            b.iter_batched(
                || (),
                |()| flows.chunks(256).map(|c| host.evaluate_batch(c)).collect::<Vec<_>>(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(format!("{count}_single"), |b| {
            b.iter(|| flows.iter().map(|flow| host.evaluate(flow)).collect::<Vec<_>>())
        });
    }
    group.finish();
}

/// The records with exactly `n` categories each.
fn with_categories(flows: &[FlowRecord], n: usize, rng: &mut Rng) -> Vec<FlowRecord> {
    flows
        .iter()
        .map(|flow| {
            let mut flow = flow.clone();
            let mut pool: Vec<Category> =
                Category::ALL.iter().copied().filter(|c| *c != Category::NonPersonal).collect();
            flow.data.categories = (0..n).map(|_| pool.swap_remove(rng.below(pool.len()))).collect();
            flow
        })
        .collect()
}

fn categories(c: &mut Criterion) {
    let host = policies(10);
    let base = sample::flows(43, RECORDS);
    let mut rng = Rng::new(44);
    let mut group = c.benchmark_group("categories");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for n in [1, 2, 5, 10] {
        let flows = with_categories(&base, n, &mut rng);
        assert_rows_agree(&host, &flows, None);
        group.bench_function(format!("{n}_batch_256"), |b| {
            b.iter(|| flows.chunks(256).map(|c| host.evaluate_batch(c)).collect::<Vec<_>>())
        });
    }
    group.finish();
}

criterion_group!(benches, loaded_policies, categories);
criterion_main!(benches);
