//! `example-reminders`: a reminders actor (durable schedules) served by an actor host with an
//! in-process engine.
//!
//! ```sh
//! cargo run -p example-reminders          # serve on 127.0.0.1:6420
//! ```

mod reminders;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rivetkit::{EmbeddedOptions, Registry};

use crate::reminders::Reminders;

/// Name under which the actor type is registered; clients use it in `get`/`getOrCreate`.
const ACTOR: &str = "reminders";

#[derive(Parser)]
#[command(
    name = "example-reminders",
    about = "A reminders actor (durable schedules) on an in-process Rivet engine",
    long_about = "A reminders actor (durable schedules) on an in-process Rivet engine.\n\n\
        Serves the `reminders` actor: engine, gateway and actor host in one process, on \
        http://127.0.0.1:6420 unless told otherwise, and prints how to call it. Reminders are \
        kept in the engine's data directory and fire after a restart of the process, or when \
        it comes back after being down at the time (prints `reminder fired: …`)."
)]
struct Cli {
    /// Port of the engine's gateway and API (0 picks a free one).
    #[arg(long, default_value_t = 6420)]
    port: u16,
    /// Where the engine keeps its data [default: $RIVET_DATA_DIR, else
    /// ~/.local/share/rivet-engine/db].
    #[arg(long, value_name = "DIR", conflicts_with = "memory")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory: nothing, not even a pending reminder, survives a restart.
    #[arg(long)]
    memory: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr (RUST_LOG=info for the engine's and host's); stdout is for the
    // instructions and the fired reminders.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let mut options = EmbeddedOptions {
        port: cli.port,
        ..EmbeddedOptions::default()
    };
    if cli.memory {
        options.data_dir = None;
    } else if let Some(dir) = cli.data_dir {
        options.data_dir = Some(dir);
    }
    let data = match &options.data_dir {
        Some(dir) => dir.display().to_string(),
        None => "in memory (nothing survives a restart)".to_string(),
    };
    let running = Registry::new()
        .register::<Reminders>(ACTOR)
        .start_embedded_with(options)
        .await
        .with_context(|| format!("starting the engine on 127.0.0.1:{}", cli.port))?;
    print_instructions(running.endpoint(), &data);
    running.wait().await?;
    println!("stopped: pending reminders are saved and fire after the next start");
    Ok(())
}

fn print_instructions(endpoint: &str, data: &str) {
    let url = |action: &str| {
        format!(
            "{endpoint}/gateway/{ACTOR}/action/{action}?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=me"
        )
    };
    println!(
        r#"Reminders is ready on {endpoint}
  engine, gateway and actor host in this process; data: {data}

Set reminders (the reminders of key "me"), list them, cancel one, see what fired:
  curl -X POST '{remind_in}' -H 'content-type: application/json' -d '{{"args":[10000,"stretch your legs"]}}'
  curl -X POST '{remind_at}' -H 'content-type: application/json' -d '{{"args":[1900000000000,"far away"]}}'
  curl -X POST '{pending}' -H 'content-type: application/json' -d '{{"args":[]}}'
  curl -X POST '{cancel}' -H 'content-type: application/json' -d '{{"args":["r2"]}}'
  curl -X POST '{fired}' -H 'content-type: application/json' -d '{{"args":[]}}'
Stop this process before one is due and start it again: it still fires.

With npm rivetkit@2.3.19 (rivetkit/client):
  const client = createClient({{ endpoint: "{endpoint}" }});
  const conn = client.{ACTOR}.getOrCreate(["me"]).connect();
  conn.on("reminder", (r) => console.log("reminder:", r.text));
  await conn.remindIn(5000, "tea is ready");

Ctrl-C (or SIGTERM) stops it; actors save their state and schedules first."#,
        remind_in = url("remindIn"),
        remind_at = url("remindAt"),
        pending = url("pending"),
        cancel = url("cancel"),
        fired = url("fired"),
    );
}
