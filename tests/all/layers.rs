//! The host crate's layers run one way. `host/src/lib.rs` lists its
//! folders in order, and each folder's `mod.rs` lists its files in order:
//! a folder uses only the folders listed before it (`crate::name`), and a
//! file uses only the files of its folder listed before it (`super::name`).
//! So the load path reads top to bottom, and a change has one obvious
//! place to go.

use std::path::{Path, PathBuf};

use crate::repo_path;

/// The `mod` declarations of a `lib.rs` or `mod.rs`, in order.
fn modules(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|line| {
            // `mod x;`, `pub mod x;`, `pub(crate) mod x;`...
            let line = line.trim();
            let rest = if line.starts_with("mod ") { line } else { &line[line.find(" mod ")? + 1..] };
            rest.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

/// The source files of module `name` in `dir`: `name.rs`, or every file of the folder `name/`.
fn sources(dir: &Path, name: &str) -> Vec<PathBuf> {
    let file = dir.join(format!("{name}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(name))
        .unwrap_or_else(|err| panic!("module `{name}` has neither `{name}.rs` nor a folder: {err}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

/// The names after `prefix` in `file`, outside its unit tests.
fn used(file: &Path, prefix: &str) -> Vec<String> {
    let source = std::fs::read_to_string(file).unwrap();
    let code = source.split("#[cfg(test)]").next().unwrap();
    let mut names: Vec<String> = code
        .match_indices(prefix)
        .map(|(at, _)| {
            code[at + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Checks that every module of the list in `root` uses only those before it,
/// through `prefix`; returns how many uses it saw.
fn check_order(listed: &[String], uses: impl Fn(&str) -> Vec<String>, place: &str) -> usize {
    let mut edges = 0;
    for (position, module) in listed.iter().enumerate() {
        for name in uses(module) {
            let Some(at) = listed.iter().position(|m| *m == name) else { continue };
            if at == position {
                continue;
            }
            assert!(at < position, "`{place}{module}` uses `{name}`, which is listed after it");
            edges += 1;
        }
    }
    edges
}

#[test]
fn every_folder_and_file_uses_only_the_layers_listed_before_it() {
    let src = repo_path("host/src");
    let folders = modules(&src.join("lib.rs"));
    assert!(folders.len() >= 8, "{folders:?}");
    let between_folders = check_order(
        &folders,
        |folder| sources(&src, folder).iter().flat_map(|file| used(file, "crate::")).collect(),
        "",
    );
    assert!(between_folders > 25, "the check must see the imports between folders ({between_folders} found)");

    let mut within_folders = 0;
    for folder in folders.iter().filter(|folder| src.join(folder).is_dir()) {
        let dir = src.join(folder);
        let files = modules(&dir.join("mod.rs"));
        assert!(!files.is_empty(), "`{folder}/mod.rs` lists no files");
        within_folders +=
            check_order(&files, |file| used(&dir.join(format!("{file}.rs")), "super::"), &format!("{folder}/"));
    }
    assert!(within_folders > 25, "the check must see the imports within folders ({within_folders} found)");
}

#[test]
fn every_folder_says_what_it_holds() {
    let src = repo_path("host/src");
    for folder in modules(&src.join("lib.rs")).iter().filter(|folder| src.join(folder).is_dir()) {
        let doc = std::fs::read_to_string(src.join(folder).join("mod.rs")).unwrap();
        let lines = doc.lines().take_while(|line| line.starts_with("//!")).count();
        assert!(lines >= 2, "`{folder}/mod.rs` must open with a module doc saying what the folder holds");
    }
}
