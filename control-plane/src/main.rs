//! The `wasm-ingress` binary: parses the command line and runs one subcommand.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wasm_ingress::cli::Cli::parse();
    wasm_ingress::commands::run(cli)
}
