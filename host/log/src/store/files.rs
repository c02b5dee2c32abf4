//! The names of a log directory's files, and how its `entries` file is
//! framed: each entry is its length (a uint, LEB128, shortest form, at
//! least 1) and then its bytes, so the file is read front to back with no
//! separator to escape, and a torn last entry is told from a whole one.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::entry::MAX_ENTRY_BYTES;
use crate::fs::{self, FileAction, FileError};
use crate::keys::PublicKey;
use crate::tiles::TILE_HEIGHT;

use super::error::{FrameProblem, StoreError};

/// Entries per chunk: a records file, and one worker's share when a log is
/// verified. A power of two, so a chunk is a perfect subtree.
pub const CHUNK: u64 = 1 << 16;

/// `entries.idx` holds the offset of every `INDEX_STRIDE`-th entry.
pub const INDEX_STRIDE: u64 = 256;

/// How many entries before the last checkpoint opening re-hashes.
pub const OPEN_WINDOW: u64 = 1 << 16;

pub(crate) const ENTRIES: &str = "entries";
pub(crate) const INDEX: &str = "entries.idx";
pub(crate) const TREE: &str = "tree";
pub(crate) const SLOTS: [&str; 2] = ["checkpoint.0", "checkpoint.1"];
pub(crate) const HISTORY: &str = "checkpoints";
pub(crate) const RECORDS: &str = "records";
pub(crate) const LOCK: &str = "lock";

/// The most of the history file read: about 200,000 checkpoints.
pub(crate) const MAX_HISTORY_BYTES: u64 = 64 << 20;

/// Stored levels, from the leaves up: 0, 8, …, 56.
pub(crate) const LEVELS: usize = 8;

/// The file of stored level `level` (a multiple of 8).
pub(crate) fn level_path(dir: &Path, level: u8) -> PathBuf {
    dir.join(TREE).join(format!("level-{level:02}"))
}

/// The stored level of slot `t` of [`LEVELS`].
pub(crate) const fn level_of(t: usize) -> u8 {
    (t as u8) * TILE_HEIGHT
}

/// The records file of chunk `chunk`.
pub(crate) fn records_path(dir: &Path, chunk: u64) -> PathBuf {
    dir.join(RECORDS).join(format!("records-{chunk}"))
}

/// The origin a log is given when none is asked for: derived from its key,
/// so it is the same at every start and differs between logs of different
/// keys (`flowgate.local/` and the first 16 hex digits of SHA-256 of the
/// public key). Two logs under one key need `--log-origin`.
///
/// ```
/// let key = flowgate_log::keys::SecretKey::from_seed(&[7; 32]).public();
/// let origin = flowgate_log::store::default_origin(&key);
/// assert!(origin.starts_with("flowgate.local/") && origin.len() == 31);
/// ```
pub fn default_origin(key: &PublicKey) -> String {
    let mut hex = Digest::of(key.as_bytes()).to_string();
    hex.truncate(16);
    format!("flowgate.local/{hex}")
}

/// Whether `dir` holds a log of Flowgate 0.1's format (hash-chain segments).
pub(crate) fn holds_old_format(dir: &Path) -> Result<bool, FileError> {
    if !fs::is_real_dir(dir) {
        return Ok(false);
    }
    Ok(fs::list(dir)?.iter().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        name.starts_with("segment-") && name.ends_with(".jsonl")
    }))
}

/// The length of `path`, 0 if it does not exist; a link or a non-file is refused.
pub(crate) fn file_len(path: &Path) -> Result<u64, FileError> {
    match fs::metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            Err(FileError::refused(path, crate::fs::FileProblem::Link))
        }
        Ok(metadata) if !metadata.is_file() => Err(FileError::refused(path, crate::fs::FileProblem::NotRegular)),
        Ok(metadata) => Ok(metadata.len()),
        Err(err) if err.is_not_found() => Ok(0),
        Err(err) => Err(err),
    }
}

/// Appends `entry` to `out`, framed.
///
/// ```
/// let mut out = Vec::new();
/// flowgate_log::store::push_frame(&mut out, &[0x02; 300]);
/// assert_eq!(&out[..3], &[0xac, 0x02, 0x02], "300 is `ac 02`, then the entry");
/// ```
pub fn push_frame(out: &mut Vec<u8>, entry: &[u8]) {
    crate::wire::put_uint(out, entry.len() as u64);
    out.extend_from_slice(entry);
}

/// The entries of a log file read in order from some offset, each within
/// [`MAX_ENTRY_BYTES`].
pub(crate) struct Frames {
    reader: BufReader<File>,
    path: PathBuf,
    offset: u64,
}

impl Frames {
    /// Reads `path` from byte `offset`.
    pub(crate) fn open(path: &Path, offset: u64) -> Result<Frames, FileError> {
        let mut file = fs::open_regular(path)?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| FileError::io(FileAction::Read, path, e))?;
        Ok(Frames { reader: BufReader::with_capacity(1 << 18, file), path: path.to_owned(), offset })
    }

    /// Where the next entry starts.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The next entry into `entry`; `false` at the end of the file.
    pub(crate) fn next_into(&mut self, entry: &mut Vec<u8>) -> Result<bool, StoreError> {
        let start = self.offset;
        let frame = |problem| StoreError::Frame { offset: start, problem };
        let read = |e| FileError::io(FileAction::Read, &self.path, e);
        let mut len = 0u64;
        let mut bytes = 0u32;
        loop {
            let available = self.reader.fill_buf().map_err(read)?;
            let Some(&byte) = available.first() else {
                return if bytes == 0 { Ok(false) } else { Err(frame(FrameProblem::Torn)) };
            };
            self.reader.consume(1);
            if bytes == 9 && byte > 1 {
                return Err(frame(FrameProblem::TooLarge(u64::MAX)));
            }
            len |= u64::from(byte & 0x7f) << (7 * bytes);
            bytes += 1;
            if byte & 0x80 == 0 {
                if (byte == 0 && bytes > 1) || len == 0 {
                    return Err(frame(FrameProblem::BadLength));
                }
                break;
            }
        }
        if len > MAX_ENTRY_BYTES as u64 {
            return Err(frame(FrameProblem::TooLarge(len)));
        }
        entry.clear();
        entry.resize(len as usize, 0);
        match self.reader.read_exact(entry) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Err(frame(FrameProblem::Torn)),
            Err(err) => return Err(read(err).into()),
        }
        self.offset += u64::from(bytes) + len;
        Ok(true)
    }
}

/// Reads big-endian u64s from `path`: entries `from..from + count` of the index.
pub(crate) fn read_offsets(path: &Path, from: u64, count: u64) -> Result<Vec<u64>, FileError> {
    let file = fs::open_regular(path)?;
    let mut bytes = vec![0u8; count as usize * 8];
    fs::read_exact_at(&file, path, from * 8, &mut bytes)?;
    Ok(bytes.chunks_exact(8).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes"))).collect())
}

/// The hashes `start..start + count` of the stored level file `path`.
pub(crate) fn read_hashes(file: &File, path: &Path, start: u64, count: u64) -> Result<Vec<Digest>, FileError> {
    let mut bytes = vec![0u8; count as usize * 32];
    fs::read_exact_at(file, path, start * 32, &mut bytes)?;
    Ok(bytes.chunks_exact(32).map(|b| Digest::from_bytes(b.try_into().expect("32 bytes"))).collect())
}

/// The lengths, in hashes, of the stored level files.
pub(crate) fn level_lens(dir: &Path) -> Result<[u64; LEVELS], FileError> {
    let mut lens = [0; LEVELS];
    for (t, len) in lens.iter_mut().enumerate() {
        *len = file_len(&level_path(dir, level_of(t)))? / 32;
    }
    Ok(lens)
}

/// The largest tree size the stored levels hold consistently: level `8·t`
/// must hold `size >> 8t` hashes for every `t`.
pub(crate) fn consistent_tree_size(lens: &[u64; LEVELS]) -> u64 {
    let mut size = lens[0];
    for (t, &len) in lens.iter().enumerate().skip(1) {
        let shift = 8 * t as u32;
        let most = len.checked_add(1).and_then(|n| n.checked_shl(shift)).map_or(u64::MAX, |n| n - 1);
        size = size.min(most);
    }
    size
}

/// How many hashes level slot `t` holds in a tree of `size` leaves.
pub(crate) const fn level_count(size: u64, t: usize) -> u64 {
    size >> (8 * t as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_and_damage_is_named_by_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entries");
        let mut bytes = Vec::new();
        push_frame(&mut bytes, b"one");
        push_frame(&mut bytes, &[7; 200]);
        std::fs::write(&path, &bytes).unwrap();
        let mut frames = Frames::open(&path, 0).unwrap();
        let mut entry = Vec::new();
        assert!(frames.next_into(&mut entry).unwrap());
        assert_eq!((entry.as_slice(), frames.offset()), (&b"one"[..], 4));
        assert!(frames.next_into(&mut entry).unwrap());
        assert_eq!(entry.len(), 200);
        assert!(!frames.next_into(&mut entry).unwrap());
        // Torn, zero, non-minimal and huge lengths.
        for (tail, problem) in [
            (&[5u8, 1, 2][..], FrameProblem::Torn),
            (&[0x80][..], FrameProblem::Torn),
            (&[0][..], FrameProblem::BadLength),
            (&[0x81, 0][..], FrameProblem::BadLength),
            (&[0xff, 0xff, 0xff, 0x7f][..], FrameProblem::TooLarge(0x0fff_ffff)),
        ] {
            let mut damaged = bytes.clone();
            damaged.extend_from_slice(tail);
            std::fs::write(&path, &damaged).unwrap();
            let mut frames = Frames::open(&path, 4).unwrap();
            assert!(frames.next_into(&mut entry).unwrap());
            let err = frames.next_into(&mut entry).unwrap_err();
            assert!(
                matches!(err, StoreError::Frame { offset, problem: p } if offset == bytes.len() as u64 && p == problem),
                "{err}"
            );
        }
    }

    #[test]
    fn the_stored_tree_is_as_large_as_every_level_allows() {
        let mut lens = [0; LEVELS];
        lens[0] = 1000;
        lens[1] = 3;
        assert_eq!(consistent_tree_size(&lens), 1000);
        lens[1] = 2;
        assert_eq!(consistent_tree_size(&lens), 767, "level 8 holds two subtrees of 256");
        lens[0] = 70_000;
        lens[1] = 273;
        assert_eq!(consistent_tree_size(&lens), 65_535, "level 16 misses its first hash");
        lens[2] = 1;
        assert_eq!(consistent_tree_size(&lens), 70_000);
        assert_eq!(level_count(70_000, 1), 273);
    }
}
