//! Subcommands: thin shells that wire sources, translation and servers together. `anyhow` lives here.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub mod bootstrap;
pub mod certgen;
pub mod drain;
pub mod explain;
pub mod migrate;
pub mod serve;
pub mod validate;

/// Run one subcommand; errors are printed to stderr and give exit status 2 (validate uses 1 for
/// "problems found", migrate 1 for "something differs").
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bootstrap(args) => bootstrap::run(args),
        Command::Certgen(args) => certgen::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::DrainOnStop(args) => drain::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
