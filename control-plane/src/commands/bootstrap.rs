//! `wasm-ingress bootstrap` (being written).

use std::process::ExitCode;

use crate::cli::BootstrapArgs;

pub fn run(args: BootstrapArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`bootstrap` is not implemented yet")
}
