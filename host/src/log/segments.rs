//! The decision log's files: numbered segments of receipts, the records
//! kept beside them, and reading their lines within bounds.
//!
//! ```text
//! DIR/segment-00000001.jsonl   receipts and checkpoints, one per line
//! DIR/records-00000001.jsonl   with --log-records: {"seq":N,"record":{...}}
//! DIR/lock                     held by the one process that writes
//! ```
//!
//! A log directory comes from outside: its segments must be regular files
//! (a link is refused, never followed), and a line longer than
//! [`MAX_LINE_BYTES`] is reported, not held in memory.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::fs::{self, FileAction, FileError, FileProblem};

/// The longest line read from a log: a receipt names each applied policy
/// once, so even a thousand of them stay far below this.
pub(crate) const MAX_LINE_BYTES: usize = 4 << 20;

/// The file of segment `n`.
pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("segment-{n:08}.jsonl"))
}

/// The records file beside segment `n`.
pub(crate) fn records_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("records-{n:08}.jsonl"))
}

/// The segments in `dir`, by number. Anything named like a segment that is
/// not a regular file is an error.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, FileError> {
    let mut segments = Vec::new();
    for entry in fs::list(dir)? {
        let name = entry.file_name();
        let Some(number) = name.to_str().and_then(segment_number) else { continue };
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| FileError::io(FileAction::Read, &path, e))?;
        if kind.is_symlink() {
            return Err(FileError::refused(&path, FileProblem::Link));
        }
        if !kind.is_file() {
            return Err(FileError::refused(&path, FileProblem::NotRegular));
        }
        segments.push((number, path));
    }
    segments.sort();
    Ok(segments)
}

fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".jsonl")?;
    (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// One line of a log file.
pub(crate) struct Line {
    /// Its bytes, without the newline (empty if it was too long).
    pub(crate) bytes: Vec<u8>,
    /// Where it starts in the file.
    pub(crate) offset: u64,
    /// Its length without the newline.
    pub(crate) len: u64,
    /// Whether it ends with a newline (only a torn last line does not).
    pub(crate) complete: bool,
}

impl Line {
    /// Where the next line starts.
    pub(crate) fn end(&self) -> u64 {
        self.offset + self.len + u64::from(self.complete)
    }

    /// Whether it was longer than [`MAX_LINE_BYTES`].
    pub(crate) fn too_long(&self) -> bool {
        self.len > MAX_LINE_BYTES as u64
    }
}

/// The lines of a log file, each within [`MAX_LINE_BYTES`].
pub(crate) struct Lines {
    reader: BufReader<File>,
    offset: u64,
    path: PathBuf,
}

impl Lines {
    pub(crate) fn open(path: &Path) -> Result<Lines, FileError> {
        Ok(Lines {
            reader: BufReader::with_capacity(1 << 16, fs::open_regular(path)?),
            offset: 0,
            path: path.to_owned(),
        })
    }

    /// The next line, or `None` at the end of the file.
    pub(crate) fn next_line(&mut self) -> Result<Option<Line>, FileError> {
        let mut bytes = Vec::new();
        let mut len = 0u64;
        loop {
            let available = self.reader.fill_buf().map_err(|e| FileError::io(FileAction::Read, &self.path, e))?;
            if available.is_empty() {
                let line = (len > 0).then_some(Line { bytes, offset: self.offset, len, complete: false });
                self.offset += len;
                return Ok(line);
            }
            let (part, done) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (&available[..end], true),
                None => (available, false),
            };
            if len + part.len() as u64 <= MAX_LINE_BYTES as u64 {
                bytes.extend_from_slice(part);
            } else {
                bytes = Vec::new();
            }
            len += part.len() as u64;
            let used = part.len() + usize::from(done);
            self.reader.consume(used);
            if done {
                let line = Line { bytes, offset: self.offset, len, complete: true };
                self.offset += len + 1;
                return Ok(Some(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_segment_names_count() {
        assert_eq!(segment_number("segment-00000012.jsonl"), Some(12));
        for name in ["segment-12.jsonl", "segment-0000001x.jsonl", "records-00000001.jsonl", "segment-00000001.json"] {
            assert_eq!(segment_number(name), None, "{name}");
        }
    }
}
