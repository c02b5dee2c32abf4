//! Generated and mutated modules: more than 10,000 of them go through
//! loading and evaluation with zero panics and zero hangs; every outcome is
//! either a refusal at load or a decision for every record.
//!
//! Three seeded populations, so every run sees the same modules:
//! - wasm-smith modules shaped like the ABI (its exports, random code);
//! - valid guests whose answers are random bytes at random addresses;
//! - reference policies with random bytes flipped, cut or repeated.

use arbitrary::Unstructured;
use flowgate::sdk::FlowRecord;
use flowgate::{Bundle, Host, Limits};
use flowgate_reference_set::sample::{self, Rng};

const SMITH_MODULES: u64 = 5_000;
const ANSWER_FUZZERS: u64 = 5_000;
const MUTATIONS_PER_POLICY: u64 = 20;

const MANIFEST: &str = "name = \"generated\"\nversion = \"0.0.0\"\nregulator = \"fuzz\"\narticles = []\n";

/// Tallies what happened to the generated modules.
#[derive(Debug, Default)]
struct Outcomes {
    refused: u64,
    loaded: u64,
    decisions: u64,
}

/// A host with no policies, short deadlines, for loading modules one by one.
fn empty_host() -> Host {
    Host::builder().limits(Limits { deadline_ms: 10, ..Limits::default() }).build().unwrap()
}

/// Loads `wasm`; if it loads, evaluates `flows` and checks a decision comes back for each.
fn try_module(host: &Host, wasm: Vec<u8>, flows: &[FlowRecord], outcomes: &mut Outcomes) {
    let bundle = Bundle::from_bytes("generated", MANIFEST, wasm).unwrap();
    match host.load(&bundle) {
        Err(_) => outcomes.refused += 1,
        Ok(_) => {
            outcomes.loaded += 1;
            let decisions = host.evaluate_batch(flows);
            assert_eq!(decisions.len(), flows.len());
            for (flow, decision) in flows.iter().zip(&decisions) {
                assert_eq!(decision.id, flow.id);
            }
            outcomes.decisions += decisions.len() as u64;
            assert!(host.remove("generated"));
        }
    }
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn wasm_smith_modules_load_or_are_refused() {
    let abi = wat::parse_str(
        r#"(module
            (memory (export "memory") 1 4)
            (func (export "flowgate_abi_version") (result i32) unreachable)
            (func (export "flowgate_buffer") (param i32) (result i32) unreachable)
            (func (export "flowgate_rules") (result i64) unreachable)
            (func (export "flowgate_init") (param i32) (result i64) unreachable)
            (func (export "flowgate_evaluate") (param i32) (result i64) unreachable))"#,
    )
    .unwrap();
    let host = empty_host();
    let flows = sample::flows(1, 3);
    let mut rng = Rng::new(2024);
    let mut outcomes = Outcomes::default();
    for n in 0..SMITH_MODULES {
        let mut config = wasm_smith::Config { max_funcs: 8, max_instructions: 64, ..Default::default() };
        // Half are shaped like the ABI, half are anything at all.
        if n % 2 == 0 {
            config.exports = Some(abi.clone());
        }
        let seed = random_bytes(&mut rng, 1024);
        let Ok(module) = wasm_smith::Module::new(config, &mut Unstructured::new(&seed)) else {
            continue;
        };
        try_module(&host, module.to_bytes(), &flows, &mut outcomes);
    }
    assert!(outcomes.refused + outcomes.loaded >= SMITH_MODULES * 9 / 10, "{outcomes:?}");
}

/// A valid guest whose `flowgate_evaluate` writes random bytes at a random
/// place and answers with a random address and length.
fn answer_fuzzer(rng: &mut Rng) -> String {
    let mut stores = String::new();
    for _ in 0..rng.below(24) {
        let address = 196_600 + rng.below(64);
        stores.push_str(&format!("(i32.store8 (i32.const {address}) (i32.const {}))\n", rng.next_u64() as u8));
    }
    let address: u64 = match rng.below(3) {
        0 => 196_608,
        1 => rng.next_u64() & 0xffff_ffff,
        _ => 196_600 + rng.below(16) as u64,
    };
    let len: u64 = match rng.below(3) {
        0 => 4 + 13 * rng.below(4) as u64,
        1 => rng.next_u64() & 0xffff_ffff,
        _ => rng.below(64) as u64,
    };
    format!(
        r#"(module
            (memory (export "memory") 4)
            (data (i32.const 16) "[]")
            (func (export "flowgate_abi_version") (result i32) (i32.const 1))
            (func (export "flowgate_buffer") (param i32) (result i32) (i32.const 1024))
            (func (export "flowgate_rules") (result i64) (i64.const {rules}))
            (func (export "flowgate_init") (param i32) (result i64) (i64.const 0))
            (func (export "flowgate_evaluate") (param i32) (result i64)
                {stores}
                (i64.const {packed})))"#,
        rules = (16u64 << 32) | 2,
        packed = ((address << 32) | len) as i64,
    )
}

#[test]
fn guests_with_random_answers_only_fault() {
    let host = empty_host();
    let flows = sample::flows(2, 2);
    let mut rng = Rng::new(7);
    let mut outcomes = Outcomes::default();
    for _ in 0..ANSWER_FUZZERS {
        let wasm = wat::parse_str(answer_fuzzer(&mut rng)).unwrap();
        try_module(&host, wasm, &flows, &mut outcomes);
    }
    assert_eq!(outcomes.loaded, ANSWER_FUZZERS, "{outcomes:?}");
}

#[test]
fn mutated_reference_policies_load_or_are_refused() {
    let host = empty_host();
    let flows = sample::flows(3, 4);
    let mut rng = Rng::new(99);
    let mut outcomes = Outcomes::default();
    for (_, _, wasm) in flowgate_reference_set::bundles() {
        for _ in 0..MUTATIONS_PER_POLICY {
            let mut mutant = wasm.to_vec();
            match rng.below(3) {
                0 => {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(mutant.len());
                        mutant[at] = rng.next_u64() as u8;
                    }
                }
                1 => mutant.truncate(rng.below(mutant.len())),
                _ => {
                    let at = rng.below(mutant.len());
                    let end = (at + rng.below(256)).min(mutant.len());
                    let copy = mutant[at..end].to_vec();
                    mutant.splice(at..at, copy);
                }
            }
            try_module(&host, mutant, &flows, &mut outcomes);
        }
    }
    assert!(outcomes.refused > 0 && outcomes.refused + outcomes.loaded == 10 * MUTATIONS_PER_POLICY, "{outcomes:?}");
}
