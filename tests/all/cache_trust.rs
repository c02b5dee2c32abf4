//! The module cache as an attacker sees it: a directory whose entries are
//! native code. Entries forged or swapped by anyone without the cache's key
//! are never run, a directory others could write is refused, and a link
//! planted where an entry goes is replaced, never followed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flowgate::sdk::FlowRecord;
use flowgate::{Error, SandboxError};

use crate::{reference_builder, repo_path, scratch_dir};

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    entries.sort();
    entries
}

/// The spec vectors' decisions from a host built with the cache in `dir`.
fn decisions(dir: &Path) -> Result<Vec<String>, Error> {
    let host = reference_builder().cache_dir(dir).build()?;
    Ok(std::fs::read_to_string(repo_path("examples/spec-vectors.jsonl"))
        .unwrap()
        .lines()
        .map(|line| host.evaluate(&FlowRecord::from_json(line.as_bytes()).unwrap()).to_json())
        .collect())
}

#[test]
fn an_entry_from_another_cache_is_not_trusted_even_with_a_correct_checksum() {
    // Two caches, two keys. A forger who copies a sound entry of one cache
    // into the other, or rewrites an entry's header to claim another
    // module's key, has no key to sign it with.
    let (ours, theirs) = (scratch_dir("cache-trust-ours"), scratch_dir("cache-trust-theirs"));
    let expected = decisions(&ours).unwrap();
    decisions(&theirs).unwrap();
    let (our_entries, their_entries) = (entries(&ours), entries(&theirs));
    assert_eq!(our_entries.len(), 20, "a module and its configured snapshot per policy");

    // Entry 0: theirs, byte for byte. Entry 1: module 2's code under module 1's key.
    std::fs::copy(&their_entries[0], &our_entries[0]).unwrap();
    let mut swapped = std::fs::read(&our_entries[2]).unwrap();
    swapped[8..40].copy_from_slice(&std::fs::read(&our_entries[1]).unwrap()[8..40]);
    std::fs::write(&our_entries[1], &swapped).unwrap();
    let planted: Vec<Vec<u8>> = our_entries[..2].iter().map(|p| std::fs::read(p).unwrap()).collect();

    assert_eq!(decisions(&ours).unwrap(), expected, "every policy decides as its own module");
    for (path, planted) in our_entries[..2].iter().zip(&planted) {
        assert_ne!(&std::fs::read(path).unwrap(), planted, "`{}` was refused and rebuilt", path.display());
    }
}

#[test]
fn a_cache_directory_others_can_write_is_refused() {
    let dir = scratch_dir("cache-trust-mode");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = decisions(&dir).unwrap_err();
    assert!(
        matches!(&err, Error::Sandbox(SandboxError::UnsafeCache { problem, .. }) if problem.to_string().contains("mode 777")),
        "{err}"
    );

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    decisions(&dir).unwrap();
    let key = dir.join("key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "the key is private");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = decisions(&dir).unwrap_err();
    assert!(matches!(&err, Error::Sandbox(SandboxError::UnsafeCache { path, .. }) if *path == key), "{err}");
}

#[test]
fn a_link_is_not_a_cache_directory_and_a_planted_link_is_not_followed() {
    let root = scratch_dir("cache-trust-links");
    let real = root.join("real");
    decisions(&real).unwrap();
    let link = root.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = decisions(&link).unwrap_err();
    assert!(matches!(err, Error::Sandbox(SandboxError::UnsafeCache { .. })), "{err}");

    // A link where an entry goes, pointing at a file the attacker wants overwritten.
    let victim = root.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let entry = entries(&real)[0].clone();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&victim, &entry).unwrap();
    decisions(&real).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(&entry).unwrap().is_file(), "the entry was written in the link's place");
}
