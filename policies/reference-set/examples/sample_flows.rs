//! Writes generated flow records as JSON Lines, for benchmarks of whole files.
//!
//! `cargo run --release -p flowgate-reference-set --example sample_flows -- 1000000 > flows.jsonl`

use std::io::Write;

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let mut rng = flowgate_reference_set::sample::Rng::new(2026);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for n in 0..count {
        let flow = flowgate_reference_set::sample::flow(&mut rng, format!("f-{n}"));
        writeln!(out, "{}", flow.to_json()).expect("stdout is writable");
    }
}
