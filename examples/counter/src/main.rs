//! `example-counter`: a counter actor served by an actor host with an in-process engine, and a
//! small client that connects to it.
//!
//! ```sh
//! cargo run -p example-counter                                   # serve on 127.0.0.1:6420
//! cargo run -p example-counter -- client --endpoint http://127.0.0.1:6420
//! ```

mod counter;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use rivetkit::{EmbeddedOptions, Registry};
use rivetkit_client::Client;

use crate::counter::Counter;

/// Name under which the actor type is registered; clients use it in `get`/`getOrCreate`.
const ACTOR: &str = "counter";

#[derive(Parser)]
#[command(
    name = "example-counter",
    about = "A counter actor (actions and events) on an in-process Rivet engine",
    long_about = "A counter actor (actions and events) on an in-process Rivet engine.\n\n\
        Without a command, serves the `counter` actor: engine, gateway and actor host in one \
        process, on http://127.0.0.1:6420 unless told otherwise. It prints how to call the \
        actor with curl, with npm rivetkit and with this program's `client` command.\n\n\
        `client` connects to a running counter, listens to its `newCount` event and \
        increments it.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the counter actor (the default).
    Serve(ServeArgs),
    /// Connect to a running counter, print its `newCount` events and increment it.
    Client(ClientArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Port of the engine's gateway and API (0 picks a free one).
    #[arg(long, default_value_t = 6420)]
    port: u16,
    /// Where the engine keeps its data [default: $RIVET_DATA_DIR, else
    /// ~/.local/share/rivet-engine/db].
    #[arg(long, value_name = "DIR", conflicts_with = "memory")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory: nothing survives a restart.
    #[arg(long)]
    memory: bool,
}

#[derive(Args)]
struct ClientArgs {
    /// The engine's URL.
    #[arg(long, default_value = "http://127.0.0.1:6420")]
    endpoint: String,
    /// Which counter (the actor's key).
    #[arg(long, default_value = "my-counter")]
    key: String,
    /// How many increments to make.
    #[arg(long, default_value_t = 3)]
    times: u32,
    /// How much each increment adds.
    #[arg(long, default_value_t = 1)]
    by: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr (RUST_LOG=info for the engine's and host's); stdout is for the
    // instructions and the client's output.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Client(args)) => client(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut options = EmbeddedOptions {
        port: args.port,
        ..EmbeddedOptions::default()
    };
    if args.memory {
        options.data_dir = None;
    } else if let Some(dir) = args.data_dir {
        options.data_dir = Some(dir);
    }
    let data = match &options.data_dir {
        Some(dir) => dir.display().to_string(),
        None => "in memory (nothing survives a restart)".to_string(),
    };
    let running = Registry::new()
        .register::<Counter>(ACTOR)
        .start_embedded_with(options)
        .await
        .with_context(|| format!("starting the engine on 127.0.0.1:{}", args.port))?;
    print_instructions(running.endpoint(), &data);
    running.wait().await?;
    println!("stopped: every actor saved its state");
    Ok(())
}

fn print_instructions(endpoint: &str, data: &str) {
    println!(
        r#"Counter is ready on {endpoint}
  engine, gateway and actor host in this process; data: {data}

Call an action through the gateway (getOrCreate the counter with key "my-counter"):
  curl -X POST '{endpoint}/gateway/{ACTOR}/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=my-counter' \
    -H 'content-type: application/json' -d '{{"args":[5]}}'

Connect, listen to newCount and increment, in Rust:
  cargo run -p example-counter -- client --endpoint {endpoint}

Or with npm rivetkit@2.3.19 (rivetkit/client):
  import {{ createClient }} from "rivetkit/client";
  const client = createClient({{ endpoint: "{endpoint}" }});
  const conn = client.{ACTOR}.getOrCreate(["my-counter"]).connect();
  conn.on("newCount", (count) => console.log("newCount", count));
  console.log(await conn.increment(1));

Ctrl-C (or SIGTERM) stops it; actors save their state first."#
    );
}

/// Longest the client waits for the connection or for an event.
const CLIENT_WAIT: Duration = Duration::from_secs(30);

async fn client(args: ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args.endpoint.as_str())
        .with_context(|| format!("invalid endpoint {:?}", args.endpoint))?;
    let counter = client.get_or_create(ACTOR, [args.key.as_str()]);
    let conn = counter.connect();
    // Subscribed before the first increment, so its own event is not missed.
    let mut counts = conn.events("newCount");
    tokio::time::timeout(CLIENT_WAIT, conn.wait_connected())
        .await
        .with_context(|| format!("no connection to {} within {CLIENT_WAIT:?}", args.endpoint))?
        .with_context(|| format!("connecting to the counter at {}", args.endpoint))?;
    println!(
        "connected to counter {:?} (actor {})",
        args.key,
        conn.actor_id().unwrap_or_default()
    );
    for _ in 0..args.times {
        let count: i64 = conn
            .action("increment", (args.by,))
            .await
            .context("increment")?;
        println!("increment({}) -> {count}", args.by);
        // Other clients' increments arrive too; wait for the event of this one.
        loop {
            let event = tokio::time::timeout(CLIENT_WAIT, counts.recv_as::<(i64,)>())
                .await
                .with_context(|| format!("no newCount event within {CLIENT_WAIT:?}"))?;
            let Some(event) = event else {
                bail!("the connection closed");
            };
            let (seen,) = event.context("decoding the newCount event")?;
            println!("event newCount: {seen}");
            if seen >= count {
                break;
            }
        }
    }
    let total: i64 = counter.action("getCount", ()).await.context("getCount")?;
    println!("getCount over HTTP -> {total}");
    conn.close().await;
    Ok(())
}
