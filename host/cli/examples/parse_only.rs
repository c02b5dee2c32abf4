//! Parses every line of a JSON Lines file into a `FlowRecord` and nothing
//! more: the floor under `flowgate check`, which must parse as much.
//!
//! `cargo run --release -p flowgate-cli --example parse_only -- flows.jsonl`

use std::io::BufRead;
use std::time::Instant;

use flowgate::sdk::FlowRecord;

fn main() {
    let path = std::env::args().nth(1).expect("usage: parse_only FILE");
    let file = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&path).expect("readable file"));
    let started = Instant::now();
    let (mut valid, mut invalid) = (0u64, 0u64);
    for line in file.split(b'\n') {
        match FlowRecord::from_json(&line.expect("readable line")) {
            Ok(_) => valid += 1,
            Err(_) => invalid += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "parse_only: {valid} records ({invalid} invalid) in {seconds:.3} s ({:.0} records/s)",
        valid as f64 / seconds
    );
}
