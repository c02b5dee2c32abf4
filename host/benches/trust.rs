//! What verifying signatures adds to loading a bundle: `Host::load` of a
//! reference bundle with and without a trust policy (compiled modules come
//! from the cache, so the figures are the checks, not Cranelift), and the
//! verification alone.
//!
//! `cargo bench -p flowgate --bench trust`

use criterion::{Criterion, criterion_group, criterion_main};
use flowgate::{Bundle, Host, SecretKey, TrustPolicy};

fn trust(c: &mut Criterion) {
    let root = std::env::temp_dir().join(format!("flowgate-bench-trust-{}", std::process::id()));
    let dir = root.join("lawful-basis");
    std::fs::create_dir_all(&dir).unwrap();
    let (_, manifest, wasm) = flowgate_reference_set::bundles().find(|(n, _, _)| *n == "lawful-basis").unwrap();
    std::fs::write(dir.join(flowgate::MANIFEST_FILE), manifest).unwrap();
    std::fs::write(dir.join(flowgate::MODULE_FILE), wasm).unwrap();
    let key = SecretKey::generate().unwrap();
    let bundle = Bundle::sign_dir(&dir, &key).unwrap();
    let policy = TrustPolicy::parse(
        "bench",
        &format!(
            "[[key]]\nid = \"k\"\npublic = \"{}\"\nholder = \"h\"\n[[grant]]\npolicies = [\"*\"]\nkeys = [\"k\"]\n",
            key.public()
        ),
    )
    .unwrap();
    let cache = root.join("cache");
    let unsigned = Host::builder().cache_dir(&cache).build().unwrap();
    let verified = Host::builder().cache_dir(&cache).trust(policy.clone()).build().unwrap();
    // Both admit the bundle, or the comparison measures a refusal.
    unsigned.load(&bundle).unwrap();
    verified.load(&bundle).unwrap();

    let mut group = c.benchmark_group("load");
    group.bench_function("verify_only", |b| b.iter(|| policy.verify(&bundle, None).unwrap()));
    group.bench_function("load_unsigned", |b| b.iter(|| unsigned.load(&bundle).unwrap()));
    group.bench_function("load_verified", |b| b.iter(|| verified.load(&bundle).unwrap()));
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = trust
}
criterion_main!(benches);
