//! The `flowgate` command, as a library so tests can run it in-process.
//!
//! - `flowgate check [--policies DIR] FILE`: one decision per JSON line;
//! - `flowgate build [--out DIR] CRATE...`: policy crates to tested bundles;
//! - `flowgate test [BUNDLE...]`: a bundle's own test vectors against its Wasm.
//!
//! Exit status: 0 success, 1 some input lines invalid (or vectors failing),
//! 2 usage, input or policy loading error.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod build;
mod check;
mod policies;
mod test;

/// Exit status: everything worked.
pub const EXIT_OK: u8 = 0;
/// Exit status: some lines were invalid, or some test vectors failed.
pub const EXIT_INVALID: u8 = 1;
/// Exit status: usage, input or policy loading error.
pub const EXIT_ERROR: u8 = 2;

/// Checks proposed data flows against data-handling policies.
#[derive(Debug, Parser)]
#[command(name = "flowgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decide every flow of a JSON Lines file, one decision per line on stdout.
    Check {
        /// Directory of policy bundles; without it, the embedded reference set.
        #[arg(long, value_name = "DIR")]
        policies: Option<PathBuf>,
        /// Never draw a progress bar, even on a terminal.
        #[arg(long)]
        no_progress: bool,
        /// Keep reading and answering while the policies in DIR change:
        /// new versions are loaded after they pass their checks.
        #[arg(long, requires = "policies")]
        watch: bool,
        /// Cache compiled modules in DIR, so the next start does not compile again.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// JSON Lines file of flow records, or `-` for stdin.
        file: PathBuf,
    },
    /// Build policy crates into bundles (manifest + Wasm), after their test vectors pass.
    Build {
        /// Where to write the bundles, one subdirectory each.
        #[arg(long, short, default_value = "bundles")]
        out: PathBuf,
        /// Cargo's target directory for the Wasm build (default: the crate's own).
        #[arg(long, value_name = "DIR")]
        target_dir: Option<PathBuf>,
        /// Policy crate directories (each with Cargo.toml and manifest.toml).
        #[arg(required = true)]
        crates: Vec<PathBuf>,
    },
    /// Run bundles' own test vectors against their Wasm builds.
    Test {
        /// Bundle directories; without any, the embedded reference set.
        bundles: Vec<PathBuf>,
    },
}

/// Runs the command with the given streams; returns the exit status.
pub fn run(cli: Cli, stdin: impl BufRead, stdout: impl Write, mut stderr: impl Write + Send, is_terminal: bool) -> u8 {
    let result = match cli.command {
        Command::Check { policies, no_progress, watch, cache_dir, file } => {
            let check = check::Check {
                policies: policies.as_deref(),
                file: &file,
                progress: is_terminal && !no_progress,
                watch,
                cache_dir: cache_dir.as_deref(),
            };
            check::run(check, stdin, stdout, &mut stderr)
        }
        Command::Build { out, target_dir, crates } => build::run(&out, target_dir.as_deref(), &crates, &mut stderr),
        Command::Test { bundles } => test::run(&bundles, stdout, &mut stderr),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            let _ = writeln!(stderr, "error: {err:#}");
            EXIT_ERROR
        }
    }
}
