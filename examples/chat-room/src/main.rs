//! `example-chat-room`: a chat room actor served by an actor host with an in-process engine,
//! and a web server for a browser page that talks to it with npm rivetkit's client.
//!
//! ```sh
//! (cd examples/chat-room/web && npm ci --ignore-scripts && npm run build)   # the page's client
//! cargo run -p example-chat-room      # engine on 127.0.0.1:6420, page on http://127.0.0.1:8080
//! ```

mod room;
mod web;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rivetkit::{EmbeddedOptions, Registry};

use crate::room::ChatRoom;

/// Name under which the actor type is registered. npm's client reaches it as
/// `client.chatRoom`, so it is spelled as a JavaScript property.
const ACTOR: &str = "chatRoom";

#[derive(Parser)]
#[command(
    name = "example-chat-room",
    about = "A chat room actor (connections, connection state, broadcasts) on an in-process \
        Rivet engine, with a browser page",
    long_about = "A chat room actor (connections, connection state, broadcasts) on an \
        in-process Rivet engine, with a browser page.\n\n\
        Serves the `chatRoom` actor (engine, gateway and actor host in one process, on \
        http://127.0.0.1:6420 unless told otherwise) and, on a second port, a page that joins \
        a room with npm rivetkit's browser client. The page needs that client built once: \
        `npm ci --ignore-scripts && npm run build` in the web directory (the program says so \
        when it is missing)."
)]
struct Cli {
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
    /// Port of the web page (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    web_port: u16,
    /// Directory of the page (index.html, app.js, dist/rivetkit-client.js).
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/web"))]
    web_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr (RUST_LOG=info for the engine's and host's); stdout is for the
    // instructions.
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
    // The page's port first: if it is taken, fail before the engine starts.
    let web_listener = tokio::net::TcpListener::bind(("127.0.0.1", cli.web_port))
        .await
        .with_context(|| format!("binding the web page's port 127.0.0.1:{}", cli.web_port))?;
    let web_addr = web_listener.local_addr()?;
    let running = Registry::new()
        .register::<ChatRoom>(ACTOR)
        .start_embedded_with(options)
        .await
        .with_context(|| format!("starting the engine on 127.0.0.1:{}", cli.port))?;
    let endpoint = running.endpoint().to_string();
    let site = web::Site::new(cli.web_dir, endpoint.clone());
    let bundle_missing = !site.bundle_path().is_file();
    let server = tokio::spawn(web::serve(web_listener, site.clone()));
    print_instructions(&endpoint, &data, &format!("http://{web_addr}"));
    if bundle_missing {
        println!("\n{}", site.missing_bundle_instructions());
    }
    let stopped = running.wait().await;
    server.abort();
    stopped?;
    println!("stopped: every room saved its state");
    Ok(())
}

fn print_instructions(endpoint: &str, data: &str, page: &str) {
    println!(
        r#"Chat room is ready on {endpoint}
  engine, gateway and actor host in this process; data: {data}
Web page: {page}
  (npm rivetkit's browser client; open it in two windows with two names)

Post a message with curl (HTTP actions pass the connect hooks too, so say who you are):
  curl -X POST '{endpoint}/gateway/{ACTOR}/action/sendMessage?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=lobby' \
    -H 'content-type: application/json' -H 'x-rivet-conn-params: {{"name":"curl"}}' -d '{{"args":["hello from curl"]}}'

With npm rivetkit@2.3.19 (rivetkit/client):
  const client = createClient({{ endpoint: "{endpoint}" }});
  const conn = client.{ACTOR}.getOrCreate(["lobby"], {{ params: {{ name: "alice" }} }}).connect();
  conn.on("message", (m) => console.log(`${{m.from}}: ${{m.text}}`));
  await conn.sendMessage("hi");

With rivetkit-client in Rust:
  let room = client.get_or_create("{ACTOR}", ["lobby"]).with_params(&json!({{ "name": "bob" }}))?;
  let conn = room.connect();
  let mut messages = conn.events("message");
  conn.action::<_, serde_json::Value>("sendMessage", ("hi",)).await?;

Ctrl-C (or SIGTERM) stops it; rooms save their state first."#
    );
}
