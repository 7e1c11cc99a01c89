//! `wasm-ingress serve` (being written).

use std::process::ExitCode;

use crate::cli::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`serve` is not implemented yet")
}
