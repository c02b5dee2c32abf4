//! `flowgate digest RECORD.json`: the digest a receipt gives a record, so
//! that whoever holds a record (the person it is about, an auditor with a
//! complaint) can match it with the `record` of a receipt proved to them.
//!
//! The digest is SHA-256 of the record's binary encoding, not of its JSON
//! (`docs/receipts.md`, "The record digest"): the same record spelled in
//! other JSON (member order, spacing, defaults left out) has the same
//! digest. A file holding one record, pretty-printed or not, gives one
//! line; a JSON Lines file gives one line per record.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use flowgate::record_digest;
use flowgate::sdk::FlowRecord;

use crate::{EXIT_INVALID, EXIT_OK};

/// The most bytes read.
const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Prints the digest of each record of `file` (`-` for stdin).
pub fn run(file: &Path, stdin: impl Read, mut stdout: impl Write, mut stderr: impl Write) -> anyhow::Result<u8> {
    let bytes = if file == Path::new("-") {
        let mut bytes = Vec::new();
        stdin.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).context("reading stdin")?;
        anyhow::ensure!(bytes.len() as u64 <= MAX_INPUT_BYTES, "the input is larger than {MAX_INPUT_BYTES} bytes");
        bytes
    } else {
        flowgate::transparency::fs::read_capped(file, MAX_INPUT_BYTES).context("cannot read the records")?
    };
    if let Ok(record) = FlowRecord::from_json(&bytes) {
        writeln!(stdout, "{}", record_digest(&record))?;
        return Ok(EXIT_OK);
    }
    let mut invalid = 0;
    for (number, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match FlowRecord::from_json(line) {
            Ok(record) => writeln!(stdout, "{}", record_digest(&record))?,
            Err(err) => {
                invalid += 1;
                writeln!(stderr, "line {}: {}", number + 1, flowgate::escape(&err.to_string(), 4096))?;
            }
        }
    }
    Ok(if invalid > 0 { EXIT_INVALID } else { EXIT_OK })
}
