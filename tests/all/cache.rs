//! The on-disk cache of compiled modules: used when sound, rebuilt when
//! corrupted, truncated or foreign, never trusted blindly.

use std::path::{Path, PathBuf};

use flowgate::sdk::FlowRecord;

use crate::{reference_builder, repo_path, scratch_dir};

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    entries
}

/// The decisions of the spec vectors, from a host built with `cache`.
fn decisions(cache: &Path) -> Vec<String> {
    let host = reference_builder().cache_dir(cache).build().unwrap();
    std::fs::read_to_string(repo_path("examples/spec-vectors.jsonl"))
        .unwrap()
        .lines()
        .map(|line| host.evaluate(&FlowRecord::from_json(line.as_bytes()).unwrap()).to_json())
        .collect()
}

#[test]
fn a_warm_cache_gives_the_same_decisions() {
    let cache = scratch_dir("cache-warm");
    let cold = decisions(&cache);
    let files = entries(&cache);
    assert_eq!(files.len(), 10, "one entry per reference module");
    assert!(files.iter().all(|f| f.extension().is_some_and(|e| e == "cwasm")));
    assert_eq!(decisions(&cache), cold);
}

#[test]
fn damaged_or_foreign_entries_are_rebuilt() {
    let cache = scratch_dir("cache-damaged");
    let expected = decisions(&cache);
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

    assert_eq!(decisions(&cache), expected, "decisions are unaffected");
    for (file, pristine) in files.iter().zip(&pristine) {
        assert_eq!(&std::fs::read(file).unwrap(), pristine, "`{}` was rebuilt", file.display());
    }
}
