//! The on-disk cache of compiled modules: used when sound, rebuilt when
//! corrupted, truncated or foreign, never trusted blindly.
//!
//! The host does not say whether a module came from the cache, so the tests
//! watch the entries: a hit leaves its file untouched (same inode, same
//! modification time, same bytes), while a miss writes a new file and renames
//! it into place (a new inode). A cache that never hit would rebuild every
//! entry identically, so comparing bytes alone would not tell.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flowgate::sdk::FlowRecord;

use crate::{reference_builder, repo_path, scratch_dir};

/// The compiled-module entries of the cache, in name order (other files,
/// such as the cache's key, are left out).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    entries.sort();
    entries
}

/// What tells a file left alone from a file written again.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    modified: (i64, i64),
    bytes: Vec<u8>,
}

fn stamp(file: &Path) -> Stamp {
    let metadata = std::fs::metadata(file).unwrap();
    Stamp {
        inode: metadata.ino(),
        modified: (metadata.mtime(), metadata.mtime_nsec()),
        bytes: std::fs::read(file).unwrap(),
    }
}

/// Starts a host on `cache`, and returns how long that took and the
/// decisions of the spec vectors.
fn start(cache: &Path) -> (Duration, Vec<String>) {
    let started = Instant::now();
    let host = reference_builder().cache_dir(cache).build().unwrap();
    let elapsed = started.elapsed();
    let decisions = std::fs::read_to_string(repo_path("examples/spec-vectors.jsonl"))
        .unwrap()
        .lines()
        .map(|line| host.evaluate(&FlowRecord::from_json(line.as_bytes()).unwrap()).to_json())
        .collect();
    (elapsed, decisions)
}

#[test]
fn a_warm_start_loads_every_module_from_the_cache() {
    let cache = scratch_dir("cache-warm");
    let (cold, cold_decisions) = start(&cache);
    let files = entries(&cache);
    // Two per reference policy: its module as checked, and the snapshot of
    // its configured instance that fresh instances start from.
    assert_eq!(files.len(), 20, "two entries per reference policy");
    let before: Vec<Stamp> = files.iter().map(|f| stamp(f)).collect();

    let (warm, warm_decisions) = start(&cache);
    assert_eq!(warm_decisions, cold_decisions);
    assert_eq!(entries(&cache), files, "no entry added or removed");
    for (file, before) in files.iter().zip(&before) {
        assert!(stamp(file) == *before, "`{}` was written again: the cache missed", file.display());
    }
    // Not a benchmark (BENCHMARKS.md measures 0.68 s against 10 ms): a warm
    // start that compiled anyway would take about as long as the cold one.
    assert!(warm * 4 < cold, "warm start {warm:?} is not much faster than cold {cold:?}");
}

#[test]
fn only_damaged_or_foreign_entries_are_rebuilt() {
    let cache = scratch_dir("cache-damaged");
    let (_, expected) = start(&cache);
    let files = entries(&cache);
    let pristine: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();

    // Corrupt one byte deep in the payload, truncate another, swap in a foreign entry.
    let mut corrupted = pristine[0].clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0xff;
    std::fs::write(&files[0], corrupted).unwrap();
    std::fs::write(&files[1], &pristine[1][..pristine[1].len() / 3]).unwrap();
    std::fs::write(&files[2], &pristine[3]).unwrap();
    std::fs::write(&files[3], b"not a cache entry").unwrap();
    let damaged = 4;
    let before: Vec<Stamp> = files.iter().map(|f| stamp(f)).collect();

    let (_, decisions) = start(&cache);
    assert_eq!(decisions, expected, "decisions are unaffected");
    for (n, ((file, pristine), before)) in files.iter().zip(&pristine).zip(&before).enumerate() {
        let after = stamp(file);
        assert_eq!(&after.bytes, pristine, "`{}` was not rebuilt as it was", file.display());
        if n < damaged {
            assert_ne!(after.inode, before.inode, "damaged `{}` was not written again", file.display());
        } else {
            assert!(after == *before, "sound `{}` was written again: the cache missed", file.display());
        }
    }
}
