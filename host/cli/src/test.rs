//! `flowgate test`: run bundles' own test vectors against their Wasm builds.

use std::io::Write;
use std::path::PathBuf;

use flowgate::{Bundle, Error};

use crate::{EXIT_INVALID, EXIT_OK, policies};

pub fn run(dirs: &[PathBuf], mut stdout: impl Write, stderr: &mut impl Write) -> anyhow::Result<u8> {
    let bundles = if dirs.is_empty() {
        policies::reference_bundles()?
    } else {
        dirs.iter().map(Bundle::from_dir).collect::<Result<Vec<_>, _>>()?
    };
    let mut failed = 0;
    for bundle in &bundles {
        let manifest = &bundle.manifest;
        match flowgate::check_vectors(bundle) {
            Ok(passed) => writeln!(stdout, "ok   {} {}: {passed} vectors", manifest.name, manifest.version)?,
            Err(Error::VectorsFailed { failures, .. }) => {
                failed += 1;
                writeln!(stdout, "FAIL {} {}", manifest.name, manifest.version)?;
                for failure in failures {
                    writeln!(stderr, "  {failure}")?;
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    writeln!(stdout, "{} passed, {failed} failed", bundles.len() - failed)?;
    Ok(if failed == 0 { EXIT_OK } else { EXIT_INVALID })
}
