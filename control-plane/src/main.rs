//! The `wasm-ingress` binary: parses the command line and runs one subcommand.

use clap::Parser;

/// mimalloc rather than the system allocator: a full translation at 10 000 Ingresses allocates and
/// frees hundreds of thousands of small objects, and with glibc's allocator that cost (allocation,
/// free-list consolidation, dropping the previous translation) was about a third of each rebuild
/// (BENCHMARKS.md, propagation notes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = wasm_ingress::cli::Cli::parse();
    wasm_ingress::commands::run(cli)
}
