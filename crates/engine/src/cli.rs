//! The command line: `rivet-engine start`, `config show`, `config validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rivet_config::Config;

const ENVIRONMENT_HELP: &str = "\
Configuration (later wins): built-in defaults, then config files, then environment variables.

Config files: --config PATH (a file, or a directory whose .json/.json5/.jsonc/.yaml/.yml files
are merged in name order); without it, /etc/rivet/config.{json,json5,jsonc,yaml,yml} if present.

Environment variables:
  RIVET__<section>__<key>=<value>   any config key; `__` separates levels, names are
                                    case-insensitive, values are parsed as the key's type
      RIVET__guard__port=6420               public API, gateway and actor-host socket
      RIVET__api_peer__port=6421            internal peer API
      RIVET__metrics__port=6430             Prometheus metrics
      RIVET__guard__host=0.0.0.0            listen on every interface (default 127.0.0.1)
      RIVET__file_system__path=/data        embedded storage directory (the default backend;
                                            default $XDG_DATA_HOME/rivet-engine/db or
                                            ~/.local/share/rivet-engine/db)
      RIVET__postgres__url=postgres://...   PostgreSQL storage instead (several nodes)
      RIVET__pubsub__nats__url=nats://...   NATS between nodes (default: in memory)
      RIVET__auth__admin_token=...          require this token on the REST API and host socket
  RIVET_LOG_LEVEL=info                      level or filter (e.g. info,rivet_store=debug)
  RIVET_LOG_FORMAT=text|json
  RIVET_OTEL_ENABLED=false  RIVET_OTEL_GRPC_ENDPOINT=http://localhost:4317
  RIVET_OTEL_SAMPLER_RATIO=0.001

Exactly one storage backend (file_system, postgres or memory) may be configured.";

/// The rivet-engine command line.
#[derive(Debug, Parser)]
#[command(
    name = "rivet-engine",
    version,
    about = "Self-hostable actor engine: stores actors' state, runs them on connected hosts and routes client traffic to them.",
    after_long_help = ENVIRONMENT_HELP,
    after_help = "Run `rivet-engine --help` for configuration and environment variables."
)]
pub struct Cli {
    /// Config file or directory of config files (may be repeated; later wins).
    #[arg(long = "config", value_name = "PATH", global = true)]
    pub config: Vec<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A top-level command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the engine and serve until SIGINT or SIGTERM.
    Start,
    /// Inspect or check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// A `config` subcommand.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as JSON, secrets redacted.
    Show,
    /// Check the configuration without starting; exits non-zero on the first problem.
    Validate,
}

/// Runs the parsed command line; the binary's `main` is this call.
pub fn run(cli: Cli) -> ExitCode {
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Our errors already carry their causes in their messages.
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Config(ConfigCommand::Show) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&config.to_redacted_json())?
            );
            Ok(())
        }
        Command::Config(ConfigCommand::Validate) => {
            println!("configuration is valid");
            Ok(())
        }
        Command::Start => {
            crate::logging::init(&config.logs)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(crate::run(&config, crate::shutdown_signal()))?;
            Ok(())
        }
    }
}
