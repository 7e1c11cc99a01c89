//! `wasm-ingress explain` (being written).

use std::process::ExitCode;

use crate::cli::ExplainArgs;

pub fn run(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`explain` is not implemented yet")
}
