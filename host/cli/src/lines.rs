//! JSON Lines of flow records in, decisions out: what `check` and `serve`
//! share, so a file and a request body are read, decided and written alike
//! (the same field-level errors, the same blank-line rule, the same JSON).

use std::io::BufRead;

use flowgate::sdk::{Effect, FlowRecord, RecordError};
use flowgate::{Decision, Host, PolicyVerdict};

/// Longest line accepted. A valid record is far shorter (strings are capped
/// at 1 KiB); a longer line is reported without being held in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One input line: its bytes, or only its length if it was too long to keep.
pub struct Line {
    pub bytes: Vec<u8>,
    pub len: usize,
}

/// What became of one line.
pub enum Outcome {
    /// Only whitespace: skipped, as JSON Lines tools commonly do.
    Blank,
    /// The decision's JSON, and its effect.
    Decided(String, Effect),
    /// Not a valid record: the field-level reason.
    Invalid(String),
    /// Decided, but its receipt could not be written to the decision log:
    /// the decision must not be given (the reason says why).
    Unlogged(String),
}

/// Reads up to `lines` lines.
pub fn read_chunk(input: &mut impl BufRead, lines: usize) -> std::io::Result<Vec<Line>> {
    let mut chunk = Vec::with_capacity(lines.min(1 << 16));
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

/// Parses `lines`, decides their records in one [`Host::try_evaluate_batch`]
/// call (or, to explain them, one [`Host::explain_batch`] call), and renders each
/// decision; `observe` sees every decision (for metrics) before it is
/// rendered. If the receipts cannot be written, every line is
/// [`Outcome::Unlogged`]: no decision of them may be given.
pub fn decide_lines(host: &Host, lines: &[Line], format: Format, mut observe: impl FnMut(&Decision)) -> Vec<Outcome> {
    let parsed: Vec<Result<Option<FlowRecord>, String>> = lines.iter().map(parse_line).collect();
    let records: Vec<FlowRecord> = parsed.iter().filter_map(|p| p.as_ref().ok()?.clone()).collect();
    let decided = if format.explain {
        host.explain_batch(&records).map(|explained| explained.into_iter().map(|(d, v)| (d, Some(v))).collect())
    } else {
        host.try_evaluate_batch(&records).map(|decisions| decisions.into_iter().map(|d| (d, None)).collect::<Vec<_>>())
    };
    let mut decisions = match decided {
        Ok(decisions) => decisions.into_iter(),
        Err(err) => {
            let message = format!("{:#}", anyhow::Error::from(err));
            return lines.iter().map(|_| Outcome::Unlogged(message.clone())).collect();
        }
    };
    parsed
        .into_iter()
        .map(|line| match line {
            Ok(None) => Outcome::Blank,
            Ok(Some(_)) => {
                let (decision, verdicts) = decisions.next().expect("one decision per record");
                observe(&decision);
                Outcome::Decided(format.render(&decision, verdicts.as_deref()), decision.effect)
            }
            Err(reason) => Outcome::Invalid(reason),
        })
        .collect()
}

/// How a decision is written: the decision's JSON, as
/// `docs/flow-record.md` defines it, with optional additions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Format {
    /// A `provenance` object: the policy set's content id and each applied
    /// policy's name, version and digest.
    pub provenance: bool,
    /// An `explain` array: what each loaded policy did, in name order.
    pub explain: bool,
}

impl Format {
    /// `--provenance` or not, without `explain`.
    pub fn new(provenance: bool) -> Format {
        Format { provenance, explain: false }
    }

    /// The decision as one line of JSON, with what each policy did when
    /// `verdicts` are given.
    pub fn render(self, decision: &Decision, verdicts: Option<&[PolicyVerdict]>) -> String {
        let mut json = decision.to_json();
        if let Some(verdicts) = verdicts {
            let explained: Vec<serde_json::Value> = verdicts.iter().map(PolicyVerdict::to_json_value).collect();
            json.pop(); // the closing brace
            json.push_str(",\"explain\":");
            json.push_str(&serde_json::Value::Array(explained).to_string());
            json.push('}');
        }
        if self.provenance {
            let policies: Vec<serde_json::Value> = decision
                .answers
                .iter()
                .map(|answer| {
                    let info = &answer.policy;
                    serde_json::json!({"name": info.name, "version": info.version, "digest": info.digest.to_string()})
                })
                .collect();
            let provenance = serde_json::json!({"policy_set": decision.policy_set.to_string(), "policies": policies});
            json.pop(); // the closing brace
            json.push_str(",\"provenance\":");
            json.push_str(&provenance.to_string());
            json.push('}');
        }
        // Fault messages and names in the additions are outside text too.
        flowgate::escape_json(json)
    }
}

/// A line's record, `None` for a blank line, or the field-level error.
pub fn parse_line(line: &Line) -> Result<Option<FlowRecord>, String> {
    parse_bytes(&line.bytes, line.len)
}

/// The record of a line of `len` bytes (of which `bytes` were kept),
/// `None` for a blank line, or the field-level error.
pub fn parse_bytes(bytes: &[u8], len: usize) -> Result<Option<FlowRecord>, String> {
    if len > MAX_LINE_BYTES {
        return Err(format!("line of {len} bytes is longer than the {MAX_LINE_BYTES} allowed"));
    }
    if is_blank(bytes) {
        return Ok(None);
    }
    // A record error can quote the line (a field name, a word): escaped.
    FlowRecord::from_json(bytes).map(Some).map_err(|err: RecordError| flowgate::escape(&err.to_string(), 4096))
}

/// Whether a line is only whitespace: skipped, as JSON Lines tools commonly do.
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// The lines of a text held in memory, as [`read_chunk`] splits a stream:
/// on `\n`, without it or a `\r` before it, the last one with or without a
/// final `\n`. Each line is its byte offset in the text, the line, and its
/// length as [`Line::len`] counts it (a `\r` before `\n` included).
pub fn split(text: &[u8]) -> impl Iterator<Item = (usize, &[u8], usize)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= text.len() {
            return None;
        }
        let start = at;
        match text[start..].iter().position(|&b| b == b'\n') {
            Some(n) => {
                at = start + n + 1;
                let line = &text[start..start + n];
                Some((start, line.strip_suffix(b"\r").unwrap_or(line), n))
            }
            None => {
                at = text.len();
                Some((start, &text[start..], text.len() - start))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_as_check_reads_them() {
        let mut input: &[u8] = b"a\r\n\nb\nc";
        let lines = read_chunk(&mut input, usize::MAX).unwrap();
        let texts: Vec<&[u8]> = lines.iter().map(|line| line.bytes.as_slice()).collect();
        assert_eq!(texts, [&b"a"[..], b"", b"b", b"c"]);
    }

    #[test]
    fn text_in_memory_splits_as_a_stream_does() {
        for text in [&b"a\r\n\nb\nc"[..], b"a\n", b"", b"\n\n", b"x\r\r\n", b"\r"] {
            let streamed: Vec<Vec<u8>> =
                read_chunk(&mut &text[..], usize::MAX).unwrap().into_iter().map(|line| line.bytes).collect();
            let lengths: Vec<usize> =
                read_chunk(&mut &text[..], usize::MAX).unwrap().into_iter().map(|line| line.len).collect();
            let split_lengths: Vec<usize> = split(text).map(|(_, _, len)| len).collect();
            let split: Vec<Vec<u8>> = split(text).map(|(_, line, _)| line.to_vec()).collect();
            assert_eq!(split, streamed, "{text:?}");
            assert_eq!(split_lengths, lengths, "{text:?}");
        }
        let offsets: Vec<usize> = split(b"ab\ncd\n\ne").map(|(at, _, _)| at).collect();
        assert_eq!(offsets, [0, 3, 6, 7]);
    }

    #[test]
    fn an_overlong_line_is_an_error_not_a_record() {
        let long = vec![b' '; MAX_LINE_BYTES + 1];
        let line = Line { bytes: Vec::new(), len: long.len() };
        assert!(parse_line(&line).unwrap_err().contains("longer than"));
        let blank = Line { bytes: b"  \t".to_vec(), len: 3 };
        assert!(parse_line(&blank).unwrap().is_none());
    }
}
