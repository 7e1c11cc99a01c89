//! `wasm-ingress validate` (being written).

use std::process::ExitCode;

use crate::cli::ValidateArgs;

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`validate` is not implemented yet")
}
