//! The `flowgate` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = flowgate_cli::Cli::parse();
    // Not a lock: `check` reads ahead on a thread of its own.
    let stdin = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
    let stdout = std::io::stdout().lock();
    let stderr = std::io::stderr();
    let is_terminal = std::io::IsTerminal::is_terminal(&stderr);
    ExitCode::from(flowgate_cli::run(cli, stdin, stdout, stderr, is_terminal))
}
