//! How large the decision log's compact receipts are on the reference set:
//! the sample flows decided by the ten policies (native builds, combined as
//! the host combines them), each encoded as a `flowgate-log` receipt.
//!
//! `cargo run --release -p flowgate-reference-set --example receipt_sizes -- 100000`
//!
//! Prints the mean, the spread, and an estimate of the whole log
//! directory per receipt (entries with their length prefix, the stored
//! tree levels, the `--flow` index), for the 160- and 256-byte
//! targets.

use flowgate_log::Digest;
use flowgate_log::merkle::leaf_hash;
use flowgate_log::policy_set::{ObligationWord, PolicyEntry, PolicySet};
use flowgate_log::receipt::{Effect, ObligationRef, ReasonRef, Receipt, RuleRef};
use flowgate_sdk::{Effect as SdkEffect, ObligationKind, ObligationSet, Remedy, RemedySet, wire};

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let policies = flowgate_reference_set::native();
    let set = PolicySet {
        index: 0,
        time_ms: 1_796_000_000_000,
        id: Digest::of(b"reference set"),
        host_version: "0.1.0".into(),
        host_rules: vec!["no-policy-applied".into()],
        policies: flowgate_reference_set::bundles()
            .zip(&policies)
            .map(|((name, manifest, wasm), (_, policy))| PolicyEntry {
                name: name.into(),
                version: manifest_version(manifest),
                digest: Digest::of(wasm),
                rules: policy.rules().iter().map(|r| r.name.to_owned()).chain(["policy-fault".into()]).collect(),
            })
            .collect(),
        obligations: ObligationKind::ALL
            .iter()
            .map(|kind| ObligationWord {
                word: kind.as_str().into(),
                parameter: match kind {
                    ObligationKind::Aggregate => "k".into(),
                    ObligationKind::LimitRetention => "days".into(),
                    _ => String::new(),
                },
            })
            .collect(),
        remedies: Remedy::ALL.iter().map(|r| r.as_str().into()).collect(),
    };
    let flows = flowgate_reference_set::sample::flows(42, count);
    let mut sizes = Vec::with_capacity(count);
    let mut effects = [0usize; 4];
    let mut record = Vec::with_capacity(512);
    for (i, flow) in flows.iter().enumerate() {
        let (mut applied, mut reasons, mut denied) = (Vec::new(), Vec::new(), false);
        let (mut obligations, mut remedies) = (ObligationSet::EMPTY, RemedySet::EMPTY);
        for (number, (_, policy)) in policies.iter().enumerate() {
            let answer = policy.answer(flow);
            if answer.effect() == SdkEffect::NotApplicable {
                continue;
            }
            let number = number as u32 + 1;
            applied.push(number);
            denied |= answer.is_denied();
            obligations.merge(&answer.obligations());
            remedies.merge(answer.remedies());
            reasons.extend(
                answer
                    .fired()
                    .map(|rule| ReasonRef { policy: number, rule: RuleRef::Numbered(rule.index() as u32 + 1) }),
            );
        }
        let effect = if applied.is_empty() {
            if flow.is_personal() {
                reasons.push(ReasonRef { policy: 0, rule: RuleRef::Numbered(1) });
                Effect::Deny
            } else {
                Effect::NotApplicable
            }
        } else if denied {
            Effect::Deny
        } else if obligations.is_empty() {
            Effect::Allow
        } else {
            Effect::AllowWithObligations
        };
        effects[effect.number() as usize] += 1;
        record.clear();
        wire::encode_record(flow, &mut record);
        let index = i as u64 + 1;
        let receipt = Receipt {
            index,
            time_ms: 1_796_000_000_000 + index / 100,
            policy_set: 0,
            platform: flow.platform.id.clone(),
            flow: flow.id.clone(),
            record: Digest::of(&record),
            effect,
            applied,
            reasons,
            obligations: if effect == Effect::Deny {
                Vec::new()
            } else {
                obligations
                    .iter()
                    .map(|o| ObligationRef { kind: u32::from(o.kind().code()), parameter: u64::from(o.parameter()) })
                    .collect()
            },
            remedies: if effect == Effect::Deny {
                remedies.iter().map(|r| u32::from(r.code())).collect()
            } else {
                vec![]
            },
        };
        let bytes = receipt.encode();
        // Every receipt must decode and explain against its set.
        let _ = leaf_hash(&bytes);
        receipt.explain(&set).expect("a receipt fits its policy set");
        sizes.push(bytes.len());
    }
    sizes.sort_unstable();
    let mean = sizes.iter().sum::<usize>() as f64 / count as f64;
    let at = |q: f64| sizes[((count - 1) as f64 * q) as usize];
    println!("receipts: {count} sample flows (seed 42), policy set entry: {} bytes once", set.encode().len());
    println!(
        "effects: allow {}, allow_with_obligations {}, deny {}, not_applicable {}",
        effects[0], effects[1], effects[2], effects[3]
    );
    println!(
        "receipt bytes: mean {mean:.1}, min {}, median {}, p99 {}, max {}",
        sizes[0],
        at(0.5),
        at(0.99),
        sizes[count - 1]
    );
    // Stage B's directory per receipt: the entry with a 2-byte length
    // prefix, stored tree levels 0, 8, 16… (32 × 256/255 bytes), the
    // `--flow` index (8-byte flow-id hash + 8-byte index), the bundle
    // offsets (8 bytes per 256 entries).
    let directory = mean + 2.0 + 32.0 * 256.0 / 255.0 + 16.0 + 8.0 / 256.0;
    println!("log directory per receipt (estimate): {directory:.1} bytes");
}

fn manifest_version(manifest: &str) -> String {
    let table: toml::Table = toml::from_str(manifest).expect("valid manifest");
    table["version"].as_str().expect("a version").to_owned()
}
