//! The compile child the integration tests name in a
//! `flowgate::CompileSandbox`: it compiles one module, as the `flowgate`
//! binary does when run as `flowgate compile-child`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(flowgate::compile_child(std::io::stdin().lock(), std::io::stdout().lock()))
}
