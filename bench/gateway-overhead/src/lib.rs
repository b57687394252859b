//! How much latency the gateway adds: sequential round trips through `/gateway/{actor_id}/…` to
//! an in-repo actor host that answers at once, against plain loopback round trips on the same
//! kind of connection (docs/benchmarks.md, "Gateway").
//!
//! Everything runs in one process on one runtime: our engine (`Engine::start`, memory store), a
//! [`TestHost`] that answers every tunnelled `RequestStart` with a small `ResponseStart` and
//! echoes tunnelled WebSocket frames, a bare axum server (hello route and WebSocket echo) and
//! the client. Figures:
//! - HTTP: one keep-alive HTTP/1.1 connection each to the bare server, to the engine's
//!   `/health` and to `GET /gateway/{actor_id}/x`;
//! - WebSocket: one socket each to the bare echo and through the gateway to the host's echo;
//! - gateway phases: client write → host has the tunnel message ("inbound"), host answered →
//!   client has the reply ("outbound"), timed with `Instant`s shared in-process.
//!
//! The kinds are measured in interleaved blocks so that machine-load drift hits all alike.

#![warn(missing_docs)]

mod http;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
use futures::{SinkExt, StreamExt};
use rivet_config::{Config, Sources};
use rivet_engine::Engine;
use rivet_test_host::protocol::{self as proto, Headers, ToRivet};
use rivet_test_host::{HostOptions, TestHost};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

pub use http::KeepAlive;

/// How long any single setup step or round trip may take before the run fails.
const STEP: Duration = Duration::from_secs(30);

/// Counts for one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Measured round trips per kind.
    pub requests: usize,
    /// Unmeasured round trips per kind before measuring.
    pub warmup: usize,
    /// Interleaved blocks the measured round trips are split into.
    pub blocks: usize,
}

impl Options {
    /// The measured run.
    pub fn full() -> Self {
        Self {
            requests: 20_000,
            warmup: 2_000,
            blocks: 10,
        }
    }

    /// A run of a second or so, for CI.
    pub fn smoke() -> Self {
        Self {
            requests: 200,
            warmup: 20,
            blocks: 2,
        }
    }
}

/// Round-trip times of one kind.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Number of samples.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile in microseconds (0 when empty).
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let index = ((p / 100.0) * sorted.len() as f64) as usize;
        sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1e6
    }

    /// Median in microseconds.
    pub fn p50(&self) -> f64 {
        self.percentile_us(50.0)
    }

    /// 99th percentile in microseconds.
    pub fn p99(&self) -> f64 {
        self.percentile_us(99.0)
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// `GET /x` to a bare axum hello server.
    pub loopback_http: Samples,
    /// `GET /health` on the engine's guard port (routing, no actor).
    pub health_http: Samples,
    /// `GET /gateway/{actor_id}/x` answered by the host.
    pub gateway_http: Samples,
    /// Gateway HTTP phase: client write → host has the `RequestStart`.
    pub http_inbound: Samples,
    /// Gateway HTTP phase: host wrote the `ResponseStart` → client read the response.
    pub http_outbound: Samples,
    /// One text frame echoed by a bare axum WebSocket server.
    pub loopback_ws: Samples,
    /// One text frame echoed by the host through the gateway.
    pub gateway_ws: Samples,
    /// Gateway WebSocket phase: client sent the frame → host has it.
    pub ws_inbound: Samples,
    /// Gateway WebSocket phase: host sent the echo → client has it.
    pub ws_outbound: Samples,
    /// The actor meta+record read the gateway does per request (`actor::load` in a txn).
    pub store_load: Samples,
    /// The readiness check the gateway does per request (`Shell::wake`, running actor).
    pub shell_wake: Samples,
}

/// When the host got a tunnel message and when it had queued its answer.
type HostStamp = (Instant, Instant);

/// Answers tunnelled requests with `200 ok` and echoes tunnelled WebSocket frames, stamping each.
fn serve(host: Arc<TestHost>, stamps: mpsc::UnboundedSender<HostStamp>) {
    tokio::spawn(async move {
        // Per tunnelled request/socket: the next message index in the host → gateway direction.
        let mut next_index: std::collections::HashMap<[u8; 4], u16> = Default::default();
        while let Some(message) = host.next_tunnel_message(Duration::from_secs(3600)).await {
            let received = Instant::now();
            let kind = match message.message_kind {
                proto::ToEnvoyTunnelMessageKind::RequestStart(_) => {
                    let mut headers = Headers::new();
                    headers.insert("content-type".into(), "text/plain".into());
                    proto::ToRivetTunnelMessageKind::ResponseStart(proto::ToRivetResponseStart {
                        status: 200,
                        headers,
                        body: Some(b"ok".to_vec()),
                        stream: false,
                    })
                }
                proto::ToEnvoyTunnelMessageKind::WebSocketOpen(_) => {
                    proto::ToRivetTunnelMessageKind::WebSocketOpen(proto::ToRivetWebSocketOpen {
                        can_hibernate: false,
                    })
                }
                proto::ToEnvoyTunnelMessageKind::WebSocketMessage(m) => {
                    proto::ToRivetTunnelMessageKind::WebSocketMessage(m)
                }
                _ => continue,
            };
            let index = next_index.entry(message.message_id.request_id).or_insert(0);
            let answer = ToRivet::TunnelMessage(proto::ToRivetTunnelMessage {
                message_id: proto::MessageId {
                    message_index: *index,
                    ..message.message_id
                },
                message_kind: kind,
            });
            *index = index.wrapping_add(1);
            if host.send_raw(answer).await.is_err() {
                return;
            }
            if stamps.send((received, Instant::now())).is_err() {
                return;
            }
        }
    });
}

/// A bare axum server: `GET /x` → `ok`, `/ws` → WebSocket echo.
async fn bare_server() -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new()
        .route("/x", axum::routing::get(|| async { "ok" }))
        .route(
            "/ws",
            axum::routing::get(|ws: WebSocketUpgrade| async move {
                ws.protocols(["rivet"]).on_upgrade(|mut socket| async move {
                    while let Some(Ok(message)) = socket.recv().await {
                        if let AxumMessage::Text(_) | AxumMessage::Binary(_) = message {
                            if socket.send(message).await.is_err() {
                                return;
                            }
                        }
                    }
                })
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "bare server stopped");
        }
    });
    Ok(addr)
}

/// Our engine in-process with the memory store, its home in `home`.
async fn start_engine(home: &std::path::Path) -> anyhow::Result<Engine> {
    let env = [
        ("HOME", home.display().to_string()),
        ("RIVET__guard__host", "127.0.0.1".into()),
        ("RIVET__guard__port", "0".into()),
        ("RIVET__api_peer__host", "127.0.0.1".into()),
        ("RIVET__api_peer__port", "0".into()),
        ("RIVET__metrics__host", "127.0.0.1".into()),
        ("RIVET__metrics__port", "0".into()),
        ("RIVET__memory", "{}".into()),
    ];
    let config = Config::load_from(&Sources {
        config_paths: vec![],
        default_dir: None,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    })?;
    Ok(Engine::start(&config).await?)
}

/// Declares pool `default` (a host may only connect to a configured pool).
async fn runner_config(conn: &mut KeepAlive) -> anyhow::Result<()> {
    let status = conn
        .request(
            "PUT",
            "/runner-configs/default?namespace=default",
            r#"{"datacenters":{"default":{"normal":{}}}}"#,
        )
        .await?;
    if status != 200 {
        bail!(
            "PUT /runner-configs → {status} {}",
            String::from_utf8_lossy(conn.body())
        );
    }
    Ok(())
}

/// Creates actor `bench` in pool `default` and waits until the host runs it; returns its id.
async fn create_actor(conn: &mut KeepAlive, host: &TestHost) -> anyhow::Result<String> {
    let status = conn
        .request(
            "POST",
            "/actors?namespace=default",
            r#"{"name":"bench","key":"bench","runner_name_selector":"default","crash_policy":"sleep"}"#,
        )
        .await?;
    let body: serde_json::Value =
        serde_json::from_slice(conn.body()).with_context(|| format!("POST /actors → {status}"))?;
    let id = body["actor"]["actor_id"]
        .as_str()
        .with_context(|| format!("POST /actors → {status} {body}"))?
        .to_string();
    host.wait_running(&id, STEP)
        .await
        .context("the host never ran the actor")?;
    Ok(id)
}

async fn ws_connect(
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    // Offered like the npm client does; the gateway answers `rivet` on every upgrade.
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("rivet"));
    let (socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .with_context(|| format!("WebSocket {path}"))?;
    Ok(socket)
}

/// One text frame out and its echo back.
async fn ws_echo(socket: &mut tokio_tungstenite::WebSocketStream<TcpStream>) -> anyhow::Result<()> {
    socket.send(Message::text("ping")).await?;
    loop {
        match tokio::time::timeout(STEP, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "ping" => return Ok(()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(Some(Ok(other))) => bail!("unexpected frame {other:?}"),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("socket closed"),
            Err(_) => bail!("no echo within {STEP:?}"),
        }
    }
}

/// Times one HTTP GET; fails on a non-200.
async fn timed_get(conn: &mut KeepAlive, path: &str) -> anyhow::Result<(Instant, Instant)> {
    let start = Instant::now();
    let status = tokio::time::timeout(STEP, conn.request("GET", path, ""))
        .await
        .with_context(|| format!("GET {path}: no answer within {STEP:?}"))??;
    let end = Instant::now();
    if status != 200 {
        bail!(
            "GET {path} → {status} {}",
            String::from_utf8_lossy(conn.body())
        );
    }
    Ok((start, end))
}

/// Takes the host's stamp for the round trip that just ended and splits it into phases.
fn phases(
    stamps: &mut mpsc::UnboundedReceiver<HostStamp>,
    (start, end): (Instant, Instant),
    inbound: &mut Samples,
    outbound: &mut Samples,
) -> anyhow::Result<()> {
    let (received, answered) = stamps
        .try_recv()
        .context("the host did not stamp the round trip")?;
    inbound.0.push(received.saturating_duration_since(start));
    outbound.0.push(end.saturating_duration_since(answered));
    Ok(())
}

/// Runs the benchmark.
pub async fn run(opts: &Options) -> anyhow::Result<Figures> {
    let home = tempfile::tempdir()?;
    let engine = start_engine(home.path()).await?;
    let guard = engine.guard_addr();
    let mut rest = KeepAlive::connect(guard).await?;
    runner_config(&mut rest).await?;
    let host =
        Arc::new(TestHost::connect(HostOptions::new(format!("http://{guard}"), "default")).await?);
    let (stamp_tx, mut stamps) = mpsc::unbounded_channel();
    serve(host.clone(), stamp_tx);
    let bare = bare_server().await?;
    let actor = create_actor(&mut rest, &host).await?;
    let gateway_path = format!("/gateway/{actor}/x");
    let ws_path = format!("/gateway/{actor}/ws");

    let mut loopback = KeepAlive::connect(bare).await?;
    let mut health = KeepAlive::connect(guard).await?;
    let mut gateway = KeepAlive::connect(guard).await?;
    let mut bare_ws = ws_connect(bare, "/ws").await?;
    let mut gateway_ws = ws_connect(guard, &ws_path).await?;
    // The host's stamp for the WebSocketOpen.
    tokio::time::timeout(STEP, stamps.recv())
        .await
        .context("the host never saw the WebSocket open")?;

    let mut f = Figures::default();
    for _ in 0..opts.warmup {
        timed_get(&mut loopback, "/x").await?;
        timed_get(&mut health, "/health").await?;
        timed_get(&mut gateway, &gateway_path).await?;
        stamps.try_recv().context("no host stamp")?;
        ws_echo(&mut bare_ws).await?;
        ws_echo(&mut gateway_ws).await?;
        stamps.try_recv().context("no host stamp")?;
    }
    let per_block = opts.requests.div_ceil(opts.blocks.max(1));
    let mut left = opts.requests;
    while left > 0 {
        let n = per_block.min(left);
        left -= n;
        for _ in 0..n {
            let (s, e) = timed_get(&mut loopback, "/x").await?;
            f.loopback_http.0.push(e - s);
        }
        for _ in 0..n {
            let (s, e) = timed_get(&mut health, "/health").await?;
            f.health_http.0.push(e - s);
        }
        for _ in 0..n {
            let t = timed_get(&mut gateway, &gateway_path).await?;
            f.gateway_http.0.push(t.1 - t.0);
            phases(&mut stamps, t, &mut f.http_inbound, &mut f.http_outbound)?;
        }
        for _ in 0..n {
            let s = Instant::now();
            ws_echo(&mut bare_ws).await?;
            f.loopback_ws.0.push(s.elapsed());
        }
        for _ in 0..n {
            let s = Instant::now();
            ws_echo(&mut gateway_ws).await?;
            let e = Instant::now();
            f.gateway_ws.0.push(e - s);
            phases(&mut stamps, (s, e), &mut f.ws_inbound, &mut f.ws_outbound)?;
        }
    }
    // The gateway's two store reads per request, timed on their own.
    let id: rivet_orchestrator::id::Id = actor.parse().context("actor id")?;
    for _ in 0..opts.requests {
        let s = Instant::now();
        engine
            .db()
            .txn(|tx| async move { rivet_orchestrator::actor::load(&tx, id).await })
            .await?
            .context("actor vanished")?;
        f.store_load.0.push(s.elapsed());
        let s = Instant::now();
        engine.shell().wake(id, STEP).await?;
        f.shell_wake.0.push(s.elapsed());
    }
    let _ = gateway_ws.close(None).await;
    let _ = bare_ws.close(None).await;
    drop((loopback, health, gateway, rest));
    if let Ok(host) = Arc::try_unwrap(host) {
        host.close().await;
    }
    engine.shutdown().await?;
    Ok(f)
}

/// The results as a Markdown table (µs), with the gateway's added latency and ratios.
pub fn table(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| round trip | n | p50 µs | p99 µs |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (name, s) in [
        ("HTTP, bare axum `GET /x` (loopback)", &f.loopback_http),
        ("HTTP, engine `GET /health`", &f.health_http),
        ("HTTP, `GET /gateway/{actor_id}/x`", &f.gateway_http),
        ("  phase: client → host has RequestStart", &f.http_inbound),
        (
            "  phase: host answered → client has response",
            &f.http_outbound,
        ),
        ("WebSocket echo, bare axum (loopback)", &f.loopback_ws),
        ("WebSocket echo through the gateway", &f.gateway_ws),
        ("  phase: client → host has the frame", &f.ws_inbound),
        ("  phase: host echoed → client has it", &f.ws_outbound),
        ("gateway step: store `actor::load` txn", &f.store_load),
        ("gateway step: `Shell::wake` (running actor)", &f.shell_wake),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} | {:.1} |",
            s.count(),
            s.p50(),
            s.p99()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| gateway added latency (p50) | added µs | added / loopback RTT | gateway RTT / loopback RTT |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (name, gw, base) in [
        ("HTTP vs bare axum", &f.gateway_http, &f.loopback_http),
        ("HTTP vs engine /health", &f.gateway_http, &f.health_http),
        ("WebSocket vs bare axum echo", &f.gateway_ws, &f.loopback_ws),
    ] {
        let added = gw.p50() - base.p50();
        let _ = writeln!(
            out,
            "| {name} | {added:.1} | {:.2} | {:.2} |",
            added / base.p50(),
            gw.p50() / base.p50()
        );
    }
    out
}
