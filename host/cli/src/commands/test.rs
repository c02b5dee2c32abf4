//! `flowgate test`: run bundles' own test vectors against their Wasm builds.
//!
//! Everything goes to one stream (stdout), in order: each bundle's verdict,
//! then its failing vectors (every vector with `-v`), then the rules no
//! vector fires.

use std::io::Write;
use std::path::PathBuf;

use flowgate::{Bundle, VectorReport};

use crate::options;
use crate::{EXIT_INVALID, EXIT_OK};

pub fn run(dirs: &[PathBuf], verbose: bool, mut stdout: impl Write) -> anyhow::Result<u8> {
    let bundles = if dirs.is_empty() {
        options::reference_bundles()?
    } else {
        dirs.iter().map(Bundle::from_dir).collect::<Result<Vec<_>, _>>()?
    };
    let mut failed = 0;
    for bundle in &bundles {
        let report = flowgate::run_vectors(bundle)?;
        if !write_report(&mut stdout, bundle, &report, verbose)? {
            failed += 1;
        }
    }
    writeln!(stdout, "{} passed, {failed} failed", bundles.len() - failed)?;
    Ok(if failed == 0 { EXIT_OK } else { EXIT_INVALID })
}

/// Writes one bundle's verdict and vectors; returns whether all passed.
/// `build` reports the same way.
pub fn write_report(
    out: &mut impl Write,
    bundle: &Bundle,
    report: &VectorReport,
    verbose: bool,
) -> anyhow::Result<bool> {
    let manifest = &bundle.manifest;
    let total = report.results.len();
    let failing = report.results.iter().filter(|result| result.problem.is_some()).count();
    if failing == 0 {
        writeln!(out, "ok   {} {}: {total} vectors", manifest.name, manifest.version)?;
    } else {
        writeln!(out, "FAIL {} {}: {failing} of {total} vectors fail", manifest.name, manifest.version)?;
    }
    for result in &report.results {
        let at = if result.line == 0 { String::new() } else { format!(" (manifest line {})", result.line) };
        match &result.problem {
            None if verbose => writeln!(out, "  ok   `{}`{at}", result.name)?,
            None => {}
            Some(problem) => {
                let problem = problem.to_string().replace('\n', "\n  ");
                writeln!(out, "  FAIL `{}`{at}: {problem}", flowgate::escape(&result.name, 256))?;
            }
        }
    }
    if total == 0 {
        writeln!(out, "  note: the manifest has no [[test]] vectors; nothing checks what the policy answers")?;
    }
    if !report.unfired.is_empty() {
        let rules: Vec<String> = report.unfired.iter().map(|rule| format!("`{rule}`")).collect();
        writeln!(out, "  note: no vector makes these rules fire: {}", rules.join(", "))?;
    }
    Ok(failing == 0)
}
