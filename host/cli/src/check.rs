//! `flowgate check`: one decision per JSON line, in input order.
//!
//! Input is read in chunks of lines; each chunk is split across the cores,
//! and every worker parses, evaluates and serialises its share, so the
//! whole pipeline (not only evaluation) runs in parallel while memory stays
//! bounded by one chunk. Invalid lines go to stderr with their line number;
//! blank lines are skipped silently, as JSON Lines tools commonly do.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use flowgate::Host;
use flowgate::sdk::{Effect, FlowRecord, RecordError};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{EXIT_INVALID, EXIT_OK, policies};

/// Lines per chunk: large enough to keep both cores busy, small enough to
/// keep memory flat on files of any size.
const CHUNK_LINES: usize = 8192;
/// Longest line accepted. A valid record is far shorter (strings are capped
/// at 1 KiB); a longer line is reported without being held in memory.
const MAX_LINE_BYTES: usize = 1 << 20;

pub fn run(
    policies: Option<&Path>,
    file: &Path,
    stdin: impl BufRead,
    mut stdout: impl Write,
    stderr: &mut impl Write,
    progress: bool,
) -> anyhow::Result<u8> {
    let host = policies::host_builder(policies)?
        .build()
        .context("loading policies")?;
    let (mut input, size): (Box<dyn BufRead>, Option<u64>) = if file == Path::new("-") {
        (Box::new(stdin), None)
    } else {
        let opened =
            File::open(file).with_context(|| format!("cannot open `{}`", file.display()))?;
        let size = opened.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 16, opened)), size)
    };
    let bar = progress.then(|| progress_bar(size));
    let workers = std::thread::available_parallelism().map_or(1, usize::from);

    let started = Instant::now();
    let mut summary = Summary::default();
    let mut first_line = 1;
    loop {
        let chunk = read_chunk(&mut input, CHUNK_LINES).context("reading input")?;
        if chunk.is_empty() {
            break;
        }
        let outcomes = decide_chunk(&host, &chunk, workers);
        for (offset, outcome) in outcomes.iter().enumerate() {
            match outcome {
                Outcome::Blank => {}
                Outcome::Decided(json, effect) => {
                    writeln!(stdout, "{json}").context("writing decisions")?;
                    summary.count(*effect);
                }
                Outcome::Invalid(reason) => {
                    writeln!(stderr, "line {}: {reason}", first_line + offset)?;
                    summary.invalid += 1;
                }
            }
        }
        first_line += chunk.len();
        if let Some(bar) = &bar {
            bar.inc(chunk.iter().map(|line| line.len as u64 + 1).sum::<u64>());
        }
    }
    stdout.flush().context("writing decisions")?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    writeln!(
        stderr,
        "{}",
        summary.report(started.elapsed().as_secs_f64())
    )?;
    Ok(if summary.invalid > 0 {
        EXIT_INVALID
    } else {
        EXIT_OK
    })
}

/// One input line: its bytes, or only its length if it was too long to keep.
struct Line {
    bytes: Vec<u8>,
    len: usize,
}

enum Outcome {
    Blank,
    Decided(String, Effect),
    Invalid(String),
}

fn read_chunk(input: &mut impl BufRead, lines: usize) -> std::io::Result<Vec<Line>> {
    let mut chunk = Vec::with_capacity(lines);
    while chunk.len() < lines {
        match read_line(input)? {
            Some(line) => chunk.push(line),
            None => break,
        }
    }
    Ok(chunk)
}

/// Reads one line, without its `\n` or `\r\n`, keeping at most `MAX_LINE_BYTES`.
fn read_line(input: &mut impl BufRead) -> std::io::Result<Option<Line>> {
    let mut bytes = Vec::new();
    let mut len = 0;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok((len > 0).then_some(Line { bytes, len }));
        }
        let (part, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], true),
            None => (available, false),
        };
        if len + part.len() <= MAX_LINE_BYTES {
            bytes.extend_from_slice(part);
        } else {
            bytes = Vec::new();
        }
        len += part.len();
        let used = part.len() + usize::from(done);
        input.consume(used);
        if done {
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            return Ok(Some(Line { bytes, len }));
        }
    }
}

/// Parses, evaluates and serialises a chunk, split across `workers` threads.
fn decide_chunk(host: &Host, chunk: &[Line], workers: usize) -> Vec<Outcome> {
    let share = chunk.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunk
            .chunks(share)
            .map(|part| scope.spawn(move || decide_lines(host, part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("workers do not panic"))
            .collect()
    })
}

fn decide_lines(host: &Host, lines: &[Line]) -> Vec<Outcome> {
    let parsed: Vec<Result<Option<FlowRecord>, String>> = lines.iter().map(parse_line).collect();
    let records: Vec<FlowRecord> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok()?.clone())
        .collect();
    let mut decisions = host.evaluate_batch(&records).into_iter();
    parsed
        .into_iter()
        .map(|line| match line {
            Ok(None) => Outcome::Blank,
            Ok(Some(_)) => {
                let decision = decisions.next().expect("one decision per record");
                Outcome::Decided(decision.to_json(), decision.effect)
            }
            Err(reason) => Outcome::Invalid(reason),
        })
        .collect()
}

fn parse_line(line: &Line) -> Result<Option<FlowRecord>, String> {
    if line.len > MAX_LINE_BYTES {
        return Err(format!(
            "line of {} bytes is longer than the {MAX_LINE_BYTES} allowed",
            line.len
        ));
    }
    if line.bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    FlowRecord::from_json(&line.bytes)
        .map(Some)
        .map_err(|err: RecordError| err.to_string())
}

fn progress_bar(size: Option<u64>) -> ProgressBar {
    match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} read").expect("valid template"),
        ),
    }
}

#[derive(Default)]
struct Summary {
    effects: [u64; Effect::ALL.len()],
    invalid: u64,
}

impl Summary {
    fn count(&mut self, effect: Effect) {
        self.effects[usize::from(effect.code())] += 1;
    }

    fn report(&self, seconds: f64) -> String {
        let records: u64 = self.effects.iter().sum();
        let rate = if seconds > 0.0 {
            records as f64 / seconds
        } else {
            0.0
        };
        let counts: Vec<String> = Effect::ALL
            .iter()
            .map(|effect| format!("{effect} {}", self.effects[usize::from(effect.code())]))
            .collect();
        format!(
            "flowgate: {records} records in {seconds:.3} s ({rate:.0} records/s): {}; {} invalid lines",
            counts.join(", "),
            self.invalid
        )
    }
}
