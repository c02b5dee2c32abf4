//! `POST /v1/decisions/batch`: JSON Lines in, JSON Lines out, in order,
//! decided in chunks and answered as a stream, so that a request holds its
//! body and its records, and never an allocation per line nor its whole
//! answer (which can be many times its body: a one-byte invalid line gets
//! a line of error).
//!
//! 1. Every line is parsed once, on evaluation threads, a part of the body
//!    at a time: a valid line's record is kept with its line number, an
//!    invalid line is only counted, a blank line costs nothing.
//! 2. The status is known then: 200, or 400 with the count of invalid lines.
//! 3. The records are decided in chunks of at most [`CHUNK_RECORDS`] (one
//!    call per policy each) by one pinned policy set, so one version decides
//!    the whole batch; each chunk is rendered while the client takes the one
//!    before. An invalid line's error is found again, when its chunk is
//!    rendered, by parsing that line again (only invalid lines are parsed twice).

use std::ops::Range;

use flowgate::sdk::FlowRecord;
use flowgate::{Host, PinnedSet};

use super::auth::Caller;
use super::metrics::Tally;
use crate::lines::{Format, MAX_LINE_BYTES, is_blank, parse_bytes, split};

/// Most records in a chunk: the host's batch, so a chunk is one call per policy.
pub const CHUNK_RECORDS: usize = 256;
/// Most invalid lines in a chunk: bounds the error lines rendered at once.
const CHUNK_INVALID: usize = 1024;
/// Most input bytes in a chunk (a longer line is a chunk of its own).
const CHUNK_BYTES: usize = 256 << 10;
/// Input parsed in one go on an evaluation thread, so a large batch does
/// not hold a thread from requests that arrive meanwhile.
const PART_BYTES: usize = 1 << 20;

/// A run of input lines, and the records of its valid ones.
pub struct Chunk {
    /// Its bytes in the body.
    span: Range<usize>,
    /// The number of its first line (from 1, as `check` counts).
    first_line: usize,
    /// The records of its valid lines, in order.
    records: Vec<FlowRecord>,
    /// Which of its lines (counted from 0) those are.
    valid: Vec<u32>,
    /// How many of its lines are invalid.
    invalid: usize,
}

/// What parsing a part of the body found.
pub struct Part {
    /// Its chunks, those with something to answer.
    pub chunks: Vec<Chunk>,
    /// Its invalid lines.
    pub invalid: usize,
    /// Where the next part starts.
    pub next: usize,
    /// The number of the next part's first line.
    pub next_line: usize,
}

/// Parses the lines of `body` from byte `from` (whose line number is
/// `first_line`) for about [`PART_BYTES`], into chunks.
pub fn parse_part(body: &[u8], from: usize, first_line: usize) -> Part {
    let mut part = Part { chunks: Vec::new(), invalid: 0, next: body.len(), next_line: first_line };
    let mut chunk = Chunk { span: from..from, first_line, records: Vec::new(), valid: Vec::new(), invalid: 0 };
    let mut number = first_line;
    for (offset, line, len) in split(&body[from..]) {
        let start = from + offset;
        let end = (start + len + 1).min(body.len()); // its `\n` too
        if start - from >= PART_BYTES {
            part.next = start;
            break;
        }
        // Blank lines cost nothing: neither parsing nor memory.
        if len > MAX_LINE_BYTES || !is_blank(line) {
            match parse_bytes(line, len) {
                Ok(Some(record)) => {
                    chunk.valid.push((number - chunk.first_line) as u32);
                    chunk.records.push(record);
                }
                Ok(None) => {}
                Err(_) => {
                    chunk.invalid += 1;
                    part.invalid += 1;
                }
            }
        }
        chunk.span.end = end;
        number += 1;
        let full =
            chunk.records.len() == CHUNK_RECORDS || chunk.invalid == CHUNK_INVALID || chunk.span.len() >= CHUNK_BYTES;
        if full {
            let next = Chunk { span: end..end, first_line: number, records: Vec::new(), valid: Vec::new(), invalid: 0 };
            keep(&mut part.chunks, std::mem::replace(&mut chunk, next));
        }
    }
    keep(&mut part.chunks, chunk);
    part.next_line = number;
    part
}

/// Keeps `chunk` if it has anything to answer.
fn keep(chunks: &mut Vec<Chunk>, mut chunk: Chunk) {
    if !chunk.records.is_empty() || chunk.invalid > 0 {
        chunk.records.shrink_to_fit();
        chunk.valid.shrink_to_fit();
        chunks.push(chunk);
    }
}

/// Decides `chunk`'s records with `pinned`, as `caller`'s, and renders its
/// answer lines: each valid line's decision and each invalid line's error,
/// in order.
/// Fails, giving no decision, if their receipts cannot be written.
pub fn answer_chunk(
    host: &Host,
    pinned: &PinnedSet,
    body: &[u8],
    chunk: Chunk,
    format: Format,
    caller: &Caller,
    tally: &mut Tally,
) -> Result<String, String> {
    let mut decided: Vec<String> = Vec::with_capacity(chunk.records.len());
    if !chunk.records.is_empty() {
        host.decide_pinned(pinned, &chunk.records, format.explain, caller.key(), |decision, verdicts| {
            tally.add(&decision);
            decided.push(format.render(&decision, format.explain.then_some(&verdicts[..])));
        })
        .map_err(|err| format!("{:#}", anyhow::Error::from(err)))?;
    }
    drop(chunk.records);
    let mut text = String::with_capacity(decided.iter().map(|line| line.len() + 1).sum::<usize>() + 64);
    let mut decided = decided.into_iter();
    let mut valid = chunk.valid.iter().peekable();
    for (index, (_, line, len)) in split(&body[chunk.span]).enumerate() {
        if valid.next_if(|&&at| at as usize == index).is_some() {
            text.push_str(&decided.next().expect("one decision per valid line"));
        } else if let Err(reason) = parse_bytes(line, len) {
            // `line` first, so a reader can tell the line from its first bytes.
            let reason = serde_json::Value::String(reason);
            text.push_str(&format!("{{\"line\":{},\"error\":{reason}}}", chunk.first_line + index));
        } else {
            continue; // blank
        }
        text.push('\n');
    }
    Ok(text)
}

/// The chunks of a body, and how many of its lines are invalid: see [`parse_part`].
#[cfg(test)]
fn parse_all(body: &[u8]) -> (Vec<Chunk>, usize) {
    let (mut chunks, mut invalid, mut from, mut line) = (Vec::new(), 0, 0, 1);
    while from < body.len() {
        let part = parse_part(body, from, line);
        chunks.extend(part.chunks);
        invalid += part.invalid;
        (from, line) = (part.next, part.next_line);
    }
    (chunks, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USE: &str = r#"{"id":"a","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service","lawful_basis":"contract"}"#;

    #[test]
    fn blank_lines_make_no_chunk_and_invalid_lines_keep_nothing() {
        let blanks = vec![b'\n'; 3 << 20];
        let (chunks, invalid) = parse_all(&blanks);
        assert!(chunks.is_empty());
        assert_eq!(invalid, 0);

        let invalid_lines = b"x\n".repeat(5000);
        let (chunks, invalid) = parse_all(&invalid_lines);
        assert_eq!(invalid, 5000);
        assert_eq!(chunks.len(), 5, "at most 1,024 invalid lines a chunk");
        assert!(chunks.iter().all(|chunk| chunk.records.is_empty() && chunk.valid.is_empty()));
    }

    #[test]
    fn chunks_answer_every_line_in_place_with_check_s_numbers() {
        let host = crate::options::reference_bundles()
            .unwrap()
            .into_iter()
            .fold(flowgate::Host::builder(), flowgate::HostBuilder::bundle)
            .build()
            .unwrap();
        let mut body = String::new();
        for n in 0..600 {
            body.push_str(match n % 3 {
                0 => USE,
                1 => "\r",
                _ => "not json",
            });
            body.push('\n');
        }
        let (chunks, invalid) = parse_all(body.as_bytes());
        assert_eq!(invalid, 200);
        assert_eq!(chunks.len(), 1, "200 records, 200 invalid lines: one chunk");
        let pinned = host.pin();
        let mut tally = Tally::default();
        let mut answers = String::new();
        for chunk in chunks {
            answers += &answer_chunk(
                &host,
                &pinned,
                body.as_bytes(),
                chunk,
                Format::default(),
                &Caller::default(),
                &mut tally,
            )
            .unwrap();
        }
        let lines: Vec<&str> = answers.lines().collect();
        assert_eq!(lines.len(), 400, "one answer per non-blank line");
        assert!(lines[0].starts_with(r#"{"id":"a","effect":"allow""#), "{}", lines[0]);
        assert!(lines[1].starts_with(r#"{"line":3,"error":"#), "{}", lines[1]);
        assert!(lines[399].starts_with(r#"{"line":600,"error":"#), "{}", lines[399]);
    }
}
