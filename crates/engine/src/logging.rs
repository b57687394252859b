//! Log output for the binary: a tracing subscriber from the `logs` config section.

use std::io::IsTerminal;

use rivet_config::{LogFormat, Logs};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Fails on an invalid level or filter directive.
pub fn init(logs: &Logs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&logs.level).map_err(|error| {
        anyhow::anyhow!(
            "invalid log level {:?} (logs.level / RIVET_LOG_LEVEL): {error}",
            logs.level
        )
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match logs.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}
