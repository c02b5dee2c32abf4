//! Kept records: the records behind receipts, when a platform keeps them
//! for replay (`--log-records`).
//!
//! A receipt holds only its record's digest, so the log is not a second
//! copy of personal data; a kept record is that copy, and is treated as
//! one: its files are readable by their owner only (0600, in a 0700
//! directory), created so and refused otherwise, and a record is erased by
//! deleting its line, which no check counts against the log.
//!
//! A record is bound to its receipt twice: by the receipt's index at the
//! head of its line, and by the receipt's digest of the record, which a
//! verifier recomputes. Lines come in strictly ascending index order, one
//! file per chunk of [`CHUNK`](super::CHUNK) entries, so a duplicate (a
//! forged record placed before the genuine one) is an error whichever
//! comes first, and each chunk's records are read beside its entries.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::fs::{self, FileAction, FileError};

/// The problem of a last line cut short by a crash.
pub(crate) const TORN: &str = "the line is torn (no newline)";

/// The longest record line read: a record is at most 1 MiB of JSON.
pub(crate) const MAX_LINE_BYTES: u64 = (1 << 20) + 64;

/// One kept record, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRecord {
    /// The index of its receipt.
    pub index: u64,
    /// The record's JSON, as written.
    pub record: Vec<u8>,
}

/// A line of a records file that is not a kept record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The line (1-based).
    pub line: u64,
    /// What is wrong.
    pub problem: &'static str,
}

/// The kept records of one file, in order.
pub struct RecordLines {
    reader: BufReader<File>,
    path: PathBuf,
    line: u64,
    offset: u64,
}

impl RecordLines {
    /// Opens `path`, a regular file (owner-only: see `exposed` in this
    /// module for how its mode is checked).
    pub fn open(path: &Path) -> Result<RecordLines, FileError> {
        let file = fs::open_regular(path)?;
        Ok(RecordLines { reader: BufReader::with_capacity(1 << 16, file), path: path.to_owned(), line: 0, offset: 0 })
    }

    /// Where the next line starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, or why its line is not one; `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Result<KeptRecord, BadLine>>, FileError> {
        let mut bytes = Vec::new();
        let read = (&mut self.reader).take(MAX_LINE_BYTES + 1).read_until(b'\n', &mut bytes);
        read.map_err(|e| FileError::io(FileAction::Read, &self.path, e))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        self.offset += bytes.len() as u64;
        self.line += 1;
        let line = self.line;
        let bad = |problem| Ok(Some(Err(BadLine { line, problem })));
        if bytes.pop() != Some(b'\n') {
            if bytes.len() as u64 >= MAX_LINE_BYTES {
                // Skip the rest of the overlong line.
                let mut rest = Vec::new();
                let skipped = self.reader.read_until(b'\n', &mut rest);
                skipped.map_err(|e| FileError::io(FileAction::Read, &self.path, e))?;
                self.offset += rest.len() as u64;
                return bad("the line is longer than any record");
            }
            return bad(TORN);
        }
        match parse_line(&bytes) {
            Some((index, record)) => Ok(Some(Ok(KeptRecord { index, record: record.to_vec() }))),
            None => bad("the line is not `{\"index\":N,\"record\":{...}}`"),
        }
    }
}

/// The permission bits of `path` when group or others may read, write or
/// enter it: kept records are their owner's only. (Whose they are is the
/// writer's check, [`fs::check_private`]; an auditor reading a copy as
/// another user is no exposure.)
pub fn exposed(path: &Path) -> Result<Option<u32>, FileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        fs::metadata(path)?;
        Ok(None)
    }
}

/// The line of a kept record (without its newline).
pub(crate) fn line(index: u64, record: &str) -> String {
    format!("{{\"index\":{index},\"record\":{record}}}\n")
}

/// A line's index and record bytes: `{"index":N,"record":` then the record
/// then `}`, `N` in canonical decimal.
fn parse_line(line: &[u8]) -> Option<(u64, &[u8])> {
    let rest = line.strip_prefix(b"{\"index\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let number = std::str::from_utf8(&rest[..digits]).ok()?;
    if digits == 0 || (digits > 1 && number.starts_with('0')) {
        return None;
    }
    let index = number.parse().ok()?;
    let record = rest[digits..].strip_prefix(b",\"record\":")?.strip_suffix(b"}")?;
    (!record.is_empty()).then_some((index, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_their_receipt_in_one_spelling() {
        assert_eq!(parse_line(line(12, "{\"id\":\"f\"}").trim_end().as_bytes()), Some((12, &b"{\"id\":\"f\"}"[..])));
        for bad in [
            "{\"index\":012,\"record\":{}}",
            "{\"index\":,\"record\":{}}",
            "{\"seq\":1,\"record\":{}}",
            "{\"index\":1,\"record\":}",
        ] {
            assert_eq!(parse_line(bad.as_bytes()), None, "{bad}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn records_read_in_order_and_others_reading_them_is_seen() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records-0");
        fs::write_new(&path, 0o600, format!("{}torn", line(3, "{}")).as_bytes()).unwrap();
        let mut lines = RecordLines::open(&path).unwrap();
        assert_eq!(lines.next_record().unwrap(), Some(Ok(KeptRecord { index: 3, record: b"{}".to_vec() })));
        assert_eq!(
            lines.next_record().unwrap(),
            Some(Err(BadLine { line: 2, problem: "the line is torn (no newline)" }))
        );
        assert_eq!(lines.next_record().unwrap(), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(exposed(&path).unwrap(), Some(0o640));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(exposed(&path).unwrap(), None);
    }
}
