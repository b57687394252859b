//! The `rivet-engine` binary: parses the command line and hands it to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    rivet_engine::cli::run(rivet_engine::cli::Cli::parse())
}
