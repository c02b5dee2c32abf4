//! Writes a small log's public artifacts to a directory, for checking with
//! another implementation of RFC 9162 and the C2SP formats (such as
//! `testdata/go-interop/main.go`, which uses Go's `golang.org/x/mod/sumdb`):
//!
//! `cargo run -p flowgate-log --example interop_sample -- OUT_DIR`
//!
//! - `log.vkey`: the log's verifier key (C2SP signed-note form);
//! - `checkpoint`: the newest checkpoint, signed by the log and cosigned by
//!   a witness (a signature type older verifiers must ignore);
//! - `inclusion-<i>.json`: inclusion proofs of several entries;
//! - `consistency-<m>.json` with `checkpoint-<m>`: proofs from older sizes.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flowgate_log::checkpoint::Checkpoint;
use flowgate_log::cosignature::Cosigner;
use flowgate_log::frontier::Frontier;
use flowgate_log::keys::SecretKey;
use flowgate_log::merkle::{consistency_proof, inclusion_proof, leaf_hash};
use flowgate_log::note::Signer;
use flowgate_log::proof::{ConsistencyProof, InclusionProof, base64_hashes};
use flowgate_log::tiles::{MemoryLevels, Tiled};

const ORIGIN: &str = "flowgate.example/interop";

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: interop_sample OUT_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    let signer = Signer::new(ORIGIN, SecretKey::from_seed(&[3; 32])).unwrap();
    let witness = Cosigner::new("regulator.example/witness", SecretKey::from_seed(&[4; 32])).unwrap();
    let entries: Vec<Vec<u8>> = (0..1000u32).map(|i| format!("entry {i}").into_bytes()).collect();
    let mut frontier = Frontier::new();
    let mut levels = MemoryLevels::new();
    let mut roots = Vec::new();
    for entry in &entries {
        frontier.push(leaf_hash(entry), |s, h| levels.keep(s, h).unwrap());
        roots.push(frontier.root());
    }
    let tiled = Tiled(&levels);
    let sign = |size: u64, cosign: bool| {
        let checkpoint = Checkpoint::new(ORIGIN, size, roots[size as usize - 1]);
        let mut note = checkpoint.sign(&signer).unwrap();
        if cosign {
            note.push(witness.cosign(&note, 1_796_000_000)).unwrap();
        }
        note.to_text()
    };
    let size = entries.len() as u64;
    let newest = sign(size, true);
    std::fs::write(out.join("log.vkey"), signer.verifier().to_vkey()).unwrap();
    std::fs::write(out.join("witness.vkey"), witness.verifier().to_vkey()).unwrap();
    std::fs::write(out.join("checkpoint"), &newest).unwrap();
    for index in [0u64, 1, 2, 255, 256, 511, 512, 700, 998, 999] {
        let proof = InclusionProof {
            receipt: STANDARD.encode(&entries[index as usize]),
            index,
            tree_size: size,
            proof: base64_hashes(&inclusion_proof(&tiled, index, size).unwrap()),
            checkpoint: newest.clone(),
        };
        std::fs::write(out.join(format!("inclusion-{index}.json")), proof.to_json()).unwrap();
    }
    for old in [1u64, 2, 3, 7, 8, 256, 257, 600, 999, 1000] {
        std::fs::write(out.join(format!("checkpoint-{old}")), sign(old, false)).unwrap();
        let proof = ConsistencyProof {
            old_size: old,
            new_size: size,
            proof: base64_hashes(&consistency_proof(&tiled, old, size).unwrap()),
            checkpoint: newest.clone(),
        };
        std::fs::write(out.join(format!("consistency-{old}.json")), proof.to_json()).unwrap();
    }
}
