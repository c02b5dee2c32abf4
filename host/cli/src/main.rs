//! The `flowgate` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Run again by itself to compile one module, under a CPU-time limit
    // (`flowgate::CompileSandbox`): policy modules are compiled that way.
    if std::env::args_os().nth(1).is_some_and(|arg| arg == flowgate_cli::COMPILE_CHILD) {
        return ExitCode::from(flowgate::compile_child(std::io::stdin().lock(), std::io::stdout().lock()));
    }
    if let Ok(program) = std::env::current_exe() {
        flowgate_cli::compile_in_child(flowgate::CompileSandbox::new(program).arg(flowgate_cli::COMPILE_CHILD));
    }
    let cli = flowgate_cli::Cli::parse();
    // Not a lock: `check` reads ahead on a thread of its own.
    let stdin = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
    let stdout = std::io::stdout().lock();
    let stderr = std::io::stderr();
    let is_terminal = std::io::IsTerminal::is_terminal(&stderr);
    ExitCode::from(flowgate_cli::run(cli, stdin, stdout, stderr, is_terminal))
}
