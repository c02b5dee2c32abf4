//! `flowgate check`: one decision per JSON line, in input order.
//!
//! Input is read in chunks of lines; each chunk is split across the cores,
//! and every worker parses, evaluates and serialises its share, so the
//! whole pipeline (not only evaluation) runs in parallel while memory stays
//! bounded by one chunk. Invalid lines go to stderr with their line number;
//! blank lines are skipped silently, as JSON Lines tools commonly do.
//!
//! With `--watch`, each line is answered as soon as it arrives, while the
//! policies follow their directory; activations and rejections are logged
//! on stderr.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use flowgate::sdk::Effect;
use flowgate::{Host, HostBuilder, PolicyEvent};
use indicatif::{ProgressBar, ProgressStyle};

use crate::lines::{Format, Line, MAX_LINE_BYTES, Outcome, decide_lines, read_chunk};

use crate::{EXIT_INVALID, EXIT_OK};

/// What a policy loading error is said to have happened in.
pub const LOADING: &str = "loading policies";

/// Lines per chunk: large enough to keep both cores busy, small enough to
/// keep memory flat on files of any size.
const CHUNK_LINES: usize = 8192;
/// Lines decided together: a multiple of the host's batch of 256, so
/// parts split no batch.
const PART_LINES: usize = 1024;
/// Lines decided together when every decision leaves a receipt first:
/// each part ends in a group commit, whose syncs the part's thread waits
/// for, so fewer, larger parts wait less (BENCHMARKS.md, "Decision
/// receipts"). Still a multiple of 256 and independent of the core count.
const LOGGED_PART_LINES: usize = 4096;

/// What `flowgate check` was asked to do.
pub struct Check<'a> {
    /// The host to build: its policies, trust, limits and cache.
    pub builder: HostBuilder,
    /// Keep the policies in step with this directory while reading.
    pub watch: Option<&'a Path>,
    /// The input file, `-` for stdin.
    pub file: &'a Path,
    /// Draw a progress bar.
    pub progress: bool,
    /// Add the policy set's id and the applied policies to every decision.
    pub provenance: bool,
    /// Add what every loaded policy did to every decision.
    pub explain: bool,
}

pub fn run(
    check: Check<'_>,
    stdin: impl BufRead + Send,
    stdout: impl Write,
    stderr: &mut (impl Write + Send),
) -> anyhow::Result<u8> {
    let host = Arc::new(check.builder.build().context(LOADING)?);
    crate::options::report_start(&host, stderr)?;
    let format = Format { provenance: check.provenance, explain: check.explain };
    let (input, size): (Box<dyn BufRead + Send + '_>, Option<u64>) = if check.file == Path::new("-") {
        (Box::new(stdin), None)
    } else {
        let opened = File::open(check.file).with_context(|| format!("cannot open `{}`", check.file.display()))?;
        let size = opened.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 16, opened)), size)
    };
    let stderr = Mutex::new(stderr);
    let status = match check.watch {
        None => {
            let bar = check.progress.then(|| progress_bar(size));
            decide_stream(&host, input, stdout, &stderr, bar, Chunks::Full, format)
        }
        Some(dir) => {
            let events = host.subscribe();
            let _watcher = host.watch(dir).context("watching policies")?;
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                let (stderr, done) = (&stderr, &done);
                scope.spawn(move || log_events(&events, stderr, done));
                // Watching serves a live stream: answer lines as soon as they arrive.
                let result = decide_stream(&host, input, stdout, stderr, None, Chunks::Arrived, format);
                done.store(true, Ordering::Relaxed);
                result
            })
        }
    }?;
    // Closing the log signs a checkpoint of every receipt written.
    if let Some(log) = host.decision_log() {
        log.close().context("closing the decision log")?;
    }
    Ok(status)
}

/// How input lines are grouped into chunks.
#[derive(Clone, Copy, PartialEq)]
enum Chunks {
    /// `CHUNK_LINES` at a time: the most throughput.
    Full,
    /// The lines that have arrived, at least one: answers as soon as each
    /// line arrives, yet lines that arrive together are decided together
    /// (and their receipts written with one `fsync`).
    Arrived,
}

/// Writes policy events to stderr until `done`, then whatever is left.
fn log_events(events: &Receiver<PolicyEvent>, stderr: &Mutex<&mut (impl Write + Send)>, done: &AtomicBool) {
    let log = |event: PolicyEvent| {
        let mut stderr = stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = writeln!(stderr, "flowgate: {event}");
    };
    while !done.load(Ordering::Relaxed) {
        match events.recv_timeout(Duration::from_millis(20)) {
            Ok(event) => log(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
    events.try_iter().for_each(log);
}

/// Decides every line of `input`, in chunks.
fn decide_stream(
    host: &Host,
    mut input: impl BufRead + Send,
    stdout: impl Write,
    stderr: &Mutex<&mut (impl Write + Send)>,
    bar: Option<ProgressBar>,
    chunks: Chunks,
    format: Format,
) -> anyhow::Result<u8> {
    // Standard output flushes at every newline; a decision per write call
    // would cost a system call per record.
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, stdout);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut first_line = 1;
    let mut arrivals = Arrivals::default();
    std::thread::scope(|scope| {
        // Reading ahead: a whole file is read and split into lines by a
        // thread of its own while the chunk before is decided and written.
        // Lines that arrive under `--watch` are read as they come instead.
        let mut next_chunk: Box<dyn FnMut() -> std::io::Result<Vec<Line>> + '_> = match chunks {
            Chunks::Full => {
                let (sender, receiver) = std::sync::mpsc::sync_channel(1);
                let input = &mut input;
                scope.spawn(move || {
                    loop {
                        let chunk = read_chunk(input, CHUNK_LINES);
                        let last = !matches!(&chunk, Ok(lines) if !lines.is_empty());
                        if sender.send(chunk).is_err() || last {
                            break;
                        }
                    }
                });
                Box::new(move || receiver.recv().unwrap_or_else(|_| Ok(Vec::new())))
            }
            Chunks::Arrived => Box::new(|| arrivals.read(&mut input)),
        };
        loop {
            let chunk = next_chunk();
            let chunk = chunk.context("reading input")?;
            if chunk.is_empty() {
                break;
            }
            // Decisions whose receipts could not be written are not printed:
            // the error ends the run, after the decisions before them.
            let outcomes = decide_chunk(host, &chunk, workers, format);
            for (offset, outcome) in outcomes.into_iter().enumerate() {
                match outcome {
                    Outcome::Blank => {}
                    Outcome::Decided(json, effect) => {
                        writeln!(stdout, "{json}").context("writing decisions")?;
                        summary.count(effect);
                    }
                    Outcome::Invalid(reason) => {
                        let mut stderr = stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        writeln!(stderr, "line {}: {reason}", first_line + offset)?;
                        summary.invalid += 1;
                    }
                    Outcome::Unlogged(problem) => {
                        stdout.flush().context("writing decisions")?;
                        anyhow::bail!(
                            "line {}: {problem}; no decision from this line on was given",
                            first_line + offset
                        );
                    }
                }
            }
            if chunks == Chunks::Arrived {
                stdout.flush().context("writing decisions")?;
            }
            first_line += chunk.len();
            if let Some(bar) = &bar {
                bar.inc(chunk.iter().map(|line| line.len as u64 + 1).sum::<u64>());
            }
        }
        anyhow::Ok(())
    })?;
    stdout.flush().context("writing decisions")?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut stderr = stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    writeln!(stderr, "{}", summary.report(started.elapsed().as_secs_f64()))?;
    Ok(if summary.invalid > 0 { EXIT_INVALID } else { EXIT_OK })
}

/// Lines as they arrive: waits for one whole line, then takes every whole
/// line already read with it, never waiting for more.
#[derive(Default)]
struct Arrivals {
    pending: Vec<u8>,
    /// Bytes dropped from a line longer than `MAX_LINE_BYTES`.
    dropped: usize,
}

impl Arrivals {
    fn read(&mut self, input: &mut impl BufRead) -> std::io::Result<Vec<Line>> {
        loop {
            let mut lines = Vec::new();
            let mut start = 0;
            while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
                lines.push(self.line(start, start + end));
                start += end + 1;
            }
            self.pending.drain(..start);
            if !lines.is_empty() {
                return Ok(lines);
            }
            // Waits only when nothing is buffered.
            let available = input.fill_buf()?;
            if available.is_empty() {
                if !self.pending.is_empty() || self.dropped > 0 {
                    lines.push(self.line(0, self.pending.len()));
                    self.pending.clear();
                }
                return Ok(lines);
            }
            let used = available.len();
            self.pending.extend_from_slice(available);
            input.consume(used);
            if self.pending.len() > MAX_LINE_BYTES && !self.pending.contains(&b'\n') {
                self.dropped += self.pending.len();
                self.pending.clear();
            }
        }
    }

    fn line(&mut self, start: usize, end: usize) -> Line {
        let len = std::mem::take(&mut self.dropped) + end - start;
        let mut bytes = if len > MAX_LINE_BYTES { Vec::new() } else { self.pending[start..end].to_vec() };
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Line { bytes, len }
    }
}

/// Parses, evaluates and serialises a chunk, in parts of `PART_LINES`
/// (`LOGGED_PART_LINES` with a decision log) spread over `workers`
/// threads. The parts, and so the batches the host forms within them, are
/// the same whatever the number of threads: a decision never depends on
/// how many cores the machine has.
fn decide_chunk(host: &Host, chunk: &[Line], workers: usize, format: Format) -> Vec<Outcome> {
    let part_lines = if host.decision_log().is_some() { LOGGED_PART_LINES } else { PART_LINES };
    let parts: Vec<&[Line]> = chunk.chunks(part_lines).collect();
    // A thread costs more than a few lines do (watch mode decides one line at a time).
    if workers == 1 || parts.len() == 1 {
        return parts.into_iter().flat_map(|part| decide_lines(host, part, format, |_| {})).collect();
    }
    let threads = workers.min(parts.len());
    let mut by_thread: Vec<std::vec::IntoIter<Vec<Outcome>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let parts = &parts;
                scope.spawn(move || {
                    parts
                        .iter()
                        .skip(thread)
                        .step_by(threads)
                        .map(|part| decide_lines(host, part, format, |_| {}))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("workers do not panic").into_iter()).collect()
    });
    (0..parts.len()).flat_map(|part| by_thread[part % threads].next().expect("every part is decided")).collect()
}

fn progress_bar(size: Option<u64>) -> ProgressBar {
    match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .expect("valid template"),
        ),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{spinner} {bytes} read").expect("valid template")),
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
        let rate = if seconds > 0.0 { records as f64 / seconds } else { 0.0 };
        let counts: Vec<String> =
            Effect::ALL.iter().map(|effect| format!("{effect} {}", self.effects[usize::from(effect.code())])).collect();
        format!(
            "flowgate: {records} records in {seconds:.3} s ({rate:.0} records/s): {}; {} invalid lines",
            counts.join(", "),
            self.invalid
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input that arrives in the pieces given, as a pipe delivers it.
    struct Pieces(std::collections::VecDeque<Vec<u8>>);

    impl std::io::Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let Some(mut piece) = self.0.pop_front() else { return Ok(0) };
            let n = piece.len().min(out.len());
            out[..n].copy_from_slice(&piece[..n]);
            if n < piece.len() {
                self.0.push_front(piece.split_off(n));
            }
            Ok(n)
        }
    }

    fn arrivals(pieces: &[&str]) -> Vec<Vec<String>> {
        let mut input = std::io::BufReader::new(Pieces(pieces.iter().map(|p| p.as_bytes().to_vec()).collect()));
        let mut arrivals = Arrivals::default();
        let mut chunks = Vec::new();
        loop {
            let chunk = arrivals.read(&mut input).unwrap();
            if chunk.is_empty() {
                return chunks;
            }
            chunks.push(chunk.into_iter().map(|line| String::from_utf8(line.bytes).unwrap()).collect());
        }
    }

    #[test]
    fn lines_that_arrive_together_are_decided_together() {
        assert_eq!(arrivals(&["a\nb\nc\n", "d\n", "e\r\nf"]), [vec!["a", "b", "c"], vec!["d"], vec!["e"], vec!["f"]]);
        // A line split across arrivals waits for its end.
        assert_eq!(arrivals(&["a\nb", "c\nd\n"]), [vec!["a"], vec!["bc", "d"]]);
    }

    #[test]
    fn an_overlong_arriving_line_is_reported_not_kept() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let mut input = std::io::BufReader::new(Pieces([long.into_bytes(), b"\nok\n".to_vec()].into()));
        let mut arrivals = Arrivals::default();
        let chunk = arrivals.read(&mut input).unwrap();
        assert_eq!((chunk[0].len, chunk[0].bytes.len()), (MAX_LINE_BYTES + 10, 0));
        assert_eq!(chunk[1].bytes, b"ok");
    }
}
