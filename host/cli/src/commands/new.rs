//! `flowgate new NAME`: a standalone policy crate that builds and passes
//! `flowgate test` as generated, for an author to start from.
//!
//! The crate depends on the SDK by path (an absolute one, so it can live
//! anywhere), is its own workspace (so it builds even inside another
//! one's directory), and declares the `library` feature that
//! `export_policy!` looks for. The templates are the files in `new/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::EXIT_OK;

const CARGO_TOML: &str = include_str!("new/Cargo.toml.txt");
const LIB_RS: &str = include_str!("new/lib.rs.txt");
const MANIFEST_TOML: &str = include_str!("new/manifest.toml.txt");
const GITIGNORE: &str = "/target\n/bundles\n";

/// The SDK this `flowgate` was built with, if its sources are still there.
fn default_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    sdk.join("Cargo.toml").is_file().then(|| sdk.canonicalize().ok()).flatten()
}

/// Writes the crate `name` into `parent/name`.
pub fn run(name: &str, parent: &Path, sdk: Option<&Path>, stderr: &mut impl Write) -> anyhow::Result<u8> {
    check_name(name)?;
    let sdk = match sdk {
        Some(sdk) => {
            anyhow::ensure!(
                sdk.join("Cargo.toml").is_file(),
                "`--sdk {}` is not the SDK: it holds no Cargo.toml (pass the `sdk/` directory of a Flowgate checkout)",
                sdk.display()
            );
            sdk.canonicalize().with_context(|| format!("cannot resolve `{}`", sdk.display()))?
        }
        None => default_sdk().context(
            "cannot find the Flowgate SDK this command was built from; pass `--sdk DIR` (the `sdk/` directory of a Flowgate checkout)",
        )?,
    };
    let sdk_text = sdk.to_str().context("the SDK's path is not UTF-8")?;
    anyhow::ensure!(
        !sdk_text.contains(['"', '\\', '\n']),
        "the SDK's path `{sdk_text}` cannot be written into Cargo.toml"
    );
    let dir = parent.join(name);
    anyhow::ensure!(
        !dir.exists(),
        "`{}` already exists; `flowgate new` writes only into a new directory",
        dir.display()
    );
    let type_name = type_name(name);
    // The contract's pages live beside the SDK, in the checkout's `docs/`.
    let docs = sdk.parent().map(|checkout| checkout.join("docs")).filter(|docs| docs.join("vocabulary.md").is_file());
    let docs = docs.as_deref().and_then(Path::to_str).unwrap_or("docs (in the Flowgate repository)").to_owned();
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name)
            .replace("{{sdk}}", sdk_text)
            .replace("{{docs}}", &docs)
    };
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("manifest.toml", fill(MANIFEST_TOML)),
        (".gitignore", GITIGNORE.to_owned()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    // The versions the SDK is tested with, so the first build needs no
    // dependency resolution (and works offline once they are downloaded).
    let lock = sdk.join("../Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, dir.join("Cargo.lock")).with_context(|| format!("cannot copy `{}`", lock.display()))?;
    }
    writeln!(stderr, "created policy crate `{name}` in `{}`", dir.display())?;
    writeln!(stderr, "next: flowgate build --out bundles {0} && flowgate test bundles/{name}", dir.display())?;
    Ok(EXIT_OK)
}

/// A policy name is also a crate name and a type name: a lower-case
/// letter, then lower-case letters, digits and single hyphens.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    anyhow::ensure!(
        valid,
        "`{}` cannot name a policy: use a lower-case letter, then lower-case letters, digits and single hyphens (such as `minors-data`), at most 64",
        flowgate::escape(name, 64)
    );
    anyhow::ensure!(
        name != "flowgate" && !name.starts_with("flowgate-"),
        "`{name}` is reserved for Flowgate's own crates"
    );
    Ok(())
}

/// `minors-data` → `MinorsData`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_crate_and_type_names() {
        assert_eq!(type_name("minors-data"), "MinorsData");
        assert_eq!(type_name("pipl31"), "Pipl31");
        for bad in ["", "Minors", "1st", "a_b", "a--b", "a-", "flowgate", "flowgate-sdk"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("minors-data").is_ok());
    }
}
