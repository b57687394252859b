//! `/envoys/connect`: the socket actor hosts open (envoy-protocol.md §2, §8).
//!
//! One task per socket owns the WebSocket. It validates the query after the upgrade (refusals
//! are close frames `1011 <group>.<code>#<ray>`, as the reference does), registers the host with
//! the orchestrator, sends Init, a ping every 3 s and the replayed commands, and then multiplexes:
//! - frames from the host: events (batched into one transaction per burst by the event worker),
//!   command acks, pongs, metadata, `Stopping`, KV requests (in order, one transaction per
//!   burst) and SQLite requests (ordered per actor);
//! - signals from the bus: commands for this host, eviction by a newer socket with the same key;
//! - answers produced by the workers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use rivet_api::auth::constant_time_eq;
use rivet_api::input::Query;
use rivet_envoy_protocol::{self as proto, ProtocolVersion, ToEnvoy, ToRivet};
use rivet_orchestrator::id::Id;
use rivet_orchestrator::shell::{
    gateway_subject, host_subject, now_ms, HostConnect, HostSignal, Requester, Shell,
};
use rivet_orchestrator::{namespace, runner_config};
use tokio::sync::{mpsc, watch};

use super::ray_id::RayId;

/// `envoyLostThreshold` sent in Init (ms).
const LOST_THRESHOLD_MS: i64 = 15_000;
/// `actorStopThreshold` sent in Init (ms).
const STOP_THRESHOLD_MS: i64 = 1_800_000;
/// `maxResponsePayloadSize` sent in Init.
const MAX_RESPONSE_PAYLOAD: u64 = 20 * 1024 * 1024;
/// tungstenite zero-fills its whole read buffer before each read (128 KiB by default, measured
/// at ~10% of the CPU of small-message traffic); frames larger than this take several reads.
const READ_BUFFER: usize = 16 * 1024;
/// Largest frame a host may send.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;
/// Most events and acks applied in one transaction.
const MAX_BURST: usize = 256;
/// Ping interval.
const PING_EVERY: Duration = Duration::from_secs(3);
/// No pong for this long closes the socket.
const PONG_TIMEOUT: Duration = Duration::from_secs(15);
/// Most KV requests applied in one transaction.
const MAX_KV_BURST: usize = 128;
/// A KV burst stops growing past this many key and value bytes (one put may carry 16 MiB).
const MAX_KV_BURST_BYTES: usize = 4 * 1024 * 1024;
/// Most messages written to the host before one flush.
const MAX_WRITE_BURST: usize = 64;
/// How long an actor's storage worker waits for its next request before it ends.
const STORAGE_WORKER_IDLE: Duration = Duration::from_millis(500);

/// Key and value bytes a KV request carries.
fn kv_request_bytes(request: &proto::ToRivetKvRequest) -> usize {
    use proto::KvRequestData as D;
    let keys = |keys: &[Vec<u8>]| keys.iter().map(Vec::len).sum::<usize>();
    match &request.data {
        D::Put(put) => keys(&put.keys) + put.values.iter().map(Vec::len).sum::<usize>(),
        D::Get(get) => keys(&get.keys),
        D::Delete(delete) => keys(&delete.keys),
        _ => 0,
    }
}

/// What the socket handler needs.
#[derive(Clone)]
pub struct EnvoyState {
    /// The orchestrator.
    pub shell: Shell,
    /// Required `rivet_token.` subprotocol value, when configured.
    pub admin_token: Option<Arc<str>>,
    /// Engine shutdown.
    pub sockets: Sockets,
}

/// How host sockets learn of and report on the engine's shutdown.
#[derive(Clone)]
pub struct Sockets {
    /// Turns true when the engine stops: sockets close and record their disconnect.
    pub stopping: watch::Receiver<bool>,
    /// Held by every socket until it has finished; the engine waits for all to drop.
    pub live: mpsc::Sender<()>,
}

/// The upgrade handler.
pub async fn connect(
    State(state): State<EnvoyState>,
    Extension(RayId(ray)): Extension<RayId>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let offered = rivet_gateway::proxy::subprotocols(&headers);
    rivet_gateway::proxy::answer_rivet(
        upgrade
            .protocols(["rivet"])
            .max_message_size(MAX_MESSAGE)
            .read_buffer_size(READ_BUFFER)
            .on_upgrade(move |socket| async move {
                // Held until this socket is finished: the engine's shutdown waits for it.
                let _live = state.sockets.live.clone();
                match validate(&state, raw.as_deref(), &offered).await {
                    Ok(params) => Session::run(state, params, ray, socket).await,
                    Err(code) => close(socket, 1011, &format!("{code}#{ray}")).await,
                }
            }),
    )
}

/// Resolves once the engine stops (the guard `wait_for` returns is not `Send`).
async fn engine_stopping(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    // A close reason is at most 123 bytes.
    let mut reason = reason.to_string();
    while reason.len() > 123 {
        reason.pop();
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// A validated connection request.
struct Params {
    protocol: ProtocolVersion,
    namespace: Id,
    envoy_key: String,
    version: u32,
    pool: String,
}

/// Checks the token and query (§2.1–2.2); the error is the `group.code` of the close reason.
async fn validate(
    state: &EnvoyState,
    raw: Option<&str>,
    offered: &[String],
) -> Result<Params, &'static str> {
    if let Some(expected) = state.admin_token.as_deref() {
        let token = offered.iter().find_map(|p| p.strip_prefix("rivet_token."));
        match token {
            None => return Err("guard.missing_header"),
            Some(t) if !constant_time_eq(t.as_bytes(), expected.as_bytes()) => {
                return Err("api.forbidden")
            }
            Some(_) => {}
        }
    }
    const FIELDS: &[&str] = &[
        "protocol_version",
        "namespace",
        "envoy_key",
        "version",
        "pool_name",
    ];
    // Unknown extra parameters are ignored (§2.1).
    let query = Query::parse(raw, FIELDS, &[], false).map_err(|_| "ws.invalid_request")?;
    let protocol = query
        .one("protocol_version")
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|v| ProtocolVersion::try_from(v).ok())
        .filter(|v| matches!(v, ProtocolVersion::V6 | ProtocolVersion::V8))
        .ok_or("ws.invalid_request")?;
    let ns_name = query.one("namespace").ok_or("ws.invalid_request")?;
    let shell = &state.shell;
    let ns = match namespace::get_by_name(shell.db(), ns_name).await {
        Ok(Some(ns)) => ns,
        Ok(None) => return Err("namespace.not_found"),
        Err(error) => {
            tracing::error!(%error, "cannot read the namespace");
            return Err("core.internal_error");
        }
    };
    let namespace = ns.id().map_err(|_| "core.internal_error")?;
    let envoy_key = query.one("envoy_key").ok_or("ws.invalid_request")?;
    let key_ok = (3..=128).contains(&envoy_key.len())
        && envoy_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !key_ok {
        return Err("ws.invalid_request");
    }
    let version = query.one("version").ok_or("ws.invalid_request")?;
    let version: u32 = version.parse().map_err(|_| "core.internal_error")?;
    let pool = query.one("pool_name").ok_or("ws.invalid_request")?;
    if pool.len() > 128 {
        return Err("ws.invalid_request");
    }
    let datacenter = shell.config().datacenter.clone();
    let pool_owned = pool.to_string();
    let config = shell
        .db()
        .txn(|tx| {
            let (pool, datacenter) = (pool_owned.clone(), datacenter.clone());
            async move { runner_config::get_tx(&tx, namespace, &pool, &datacenter).await }
        })
        .await;
    match config {
        Ok(Some(_)) => {}
        Ok(None) => return Err("ws.no_runner_config"),
        Err(error) => {
            tracing::error!(%error, "cannot read the runner config");
            return Err("core.internal_error");
        }
    }
    Ok(Params {
        protocol,
        namespace,
        envoy_key: envoy_key.to_string(),
        version,
        pool: pool.to_string(),
    })
}

/// Gateway requests and WebSockets forwarded to the host and not finished yet, by (gateway id,
/// request id); `true` for WebSockets.
#[derive(Default)]
struct Inflight(HashMap<([u8; 4], [u8; 4]), bool>);

impl Inflight {
    /// Reads the ids off a forwarded v8 `ToEnvoy::TunnelMessage` frame without decoding it: tag
    /// 4, gateway id (4 bytes), request id (4), message index (2), then the kind's tag.
    fn sent(&mut self, frame: &[u8]) {
        let (Some(&4), Some(gateway), Some(request), Some(&kind)) = (
            frame.first(),
            frame.get(1..5),
            frame.get(5..9),
            frame.get(11),
        ) else {
            return;
        };
        let (Ok(gateway), Ok(request)) =
            (<[u8; 4]>::try_from(gateway), <[u8; 4]>::try_from(request))
        else {
            return;
        };
        match kind {
            0 => {
                self.0.insert((gateway, request), false);
            }
            5 => {
                self.0.insert((gateway, request), true);
            }
            2 | 7 => {
                self.0.remove(&(gateway, request));
            }
            _ => {}
        }
    }

    fn answered(&mut self, message: &proto::ToRivetTunnelMessage) {
        use proto::ToRivetTunnelMessageKind as K;
        if matches!(
            message.message_kind,
            K::ResponseStart(_) | K::ResponseAbort(_) | K::WebSocketClose(_)
        ) {
            let id = &message.message_id;
            self.0.remove(&(id.gateway_id, id.request_id));
        }
    }
}

/// Host messages applied by the session's worker, batched.
enum Work {
    Events(Vec<proto::EventWrapper>),
    Acks(Vec<proto::ActorCheckpoint>),
    Pong(i64),
}

/// Work for the per-actor ordered SQLite workers.
struct StorageJob(Box<ToRivet>);

impl StorageJob {
    fn actor_id(&self) -> &str {
        match self.0.as_ref() {
            ToRivet::SqliteGetPagesRequest(e) => &e.data.actor_id,
            ToRivet::SqliteCommitRequest(e) => &e.data.actor_id,
            ToRivet::SqliteCommitStageBeginRequest(e) => &e.data.actor_id,
            ToRivet::SqliteCommitStageSegmentRequest(e) => &e.data.actor_id,
            ToRivet::SqliteCommitFinalizeRequest(e) => &e.data.actor_id,
            _ => "",
        }
    }
}

struct Session {
    state: EnvoyState,
    params: Params,
    connection: String,
    ray: Id,
    out: mpsc::UnboundedSender<ToEnvoy>,
    /// KV requests, applied in order by the KV worker.
    kv: mpsc::UnboundedSender<proto::ToRivetKvRequest>,
    /// One SQLite queue per actor with requests in flight, so one actor's commits apply in
    /// order while different actors' requests run concurrently.
    storage: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<StorageJob>>>>,
}

impl Session {
    async fn run(state: EnvoyState, params: Params, ray: Id, mut socket: WebSocket) {
        let mut stopping = state.sockets.stopping.clone();
        let shell = state.shell.clone();
        let connection = Id::new(shell.config().label).to_string();
        let subject = host_subject(params.namespace, &params.envoy_key);
        // Subscribe first: nothing published after the replay read can be missed.
        let mut signals = match shell.bus().subscribe(&subject).await {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, "cannot subscribe to host signals");
                close(socket, 1011, &format!("core.internal_error#{ray}")).await;
                return;
            }
        };
        let connect = HostConnect {
            namespace: params.namespace,
            envoy_key: params.envoy_key.clone(),
            pool: params.pool.clone(),
            version: params.version,
            protocol_version: params.protocol.number(),
            connection: connection.clone(),
        };
        let session_start = match shell.host_connected(&connect).await {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, "cannot register the host");
                close(socket, 1011, &format!("core.internal_error#{ray}")).await;
                return;
            }
        };
        let (out, mut out_rx) = mpsc::unbounded_channel();
        let (work_tx, work_rx) = mpsc::unbounded_channel();
        let (kv, kv_rx) = mpsc::unbounded_channel();
        let session = Session {
            state,
            params,
            connection,
            ray,
            out,
            kv,
            storage: Arc::new(Mutex::new(HashMap::new())),
        };
        let events = tokio::spawn(session.event_worker(work_rx));
        // Ends once the session (the only sender) is gone and the requests queued are answered.
        tokio::spawn(session.kv_worker(kv_rx));

        let init = ToEnvoy::Init(proto::ToEnvoyInit {
            metadata: proto::ProtocolMetadata {
                envoy_lost_threshold: LOST_THRESHOLD_MS,
                actor_stop_threshold: STOP_THRESHOLD_MS,
                max_response_payload_size: MAX_RESPONSE_PAYLOAD,
            },
        });
        let mut alive = session.send(&mut socket, &init).await
            && session
                .send(
                    &mut socket,
                    &ToEnvoy::Ping(proto::ToEnvoyPing { ts: now_ms() }),
                )
                .await;
        if alive && !session_start.replay.is_empty() {
            alive = session
                .send(&mut socket, &ToEnvoy::Commands(session_start.replay))
                .await;
        }
        let mut last_pong = Instant::now();
        let mut inflight = Inflight::default();
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        while alive {
            tokio::select! {
                frame = socket.recv() => match frame {
                    Some(Ok(Message::Binary(bytes))) => {
                        match proto::decode::<ToRivet>(session.params.protocol, &bytes) {
                            Ok(ToRivet::TunnelMessage(message)) => {
                                inflight.answered(&message);
                                session.tunnel_answer(message, bytes).await;
                            }
                            Ok(message) => {
                                if let ToRivet::Pong(_) = &message {
                                    last_pong = Instant::now();
                                }
                                session.on_message(message, &work_tx).await;
                            }
                            Err(error) => {
                                tracing::warn!(%error, envoy_key = %session.params.envoy_key, "undecodable frame from host");
                            }
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        tracing::debug!(?frame, envoy_key = %session.params.envoy_key, "host closed the socket");
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::debug!(%error, "host socket failed");
                        break;
                    }
                    None => break,
                },
                signal = signals.next() => {
                    let Some(first) = signal else { break };
                    // Everything already delivered goes out with one flush.
                    let mut next = Some(first);
                    let mut written = 0;
                    let mut evicted = false;
                    while let Some(message) = next.take() {
                        match HostSignal::decode(message.payload()) {
                            Some(HostSignal::Commands(bytes)) => {
                                alive = session.feed_commands(&mut socket, bytes).await;
                            }
                            Some(HostSignal::Tunnel(bytes)) => {
                                inflight.sent(&bytes);
                                alive = session.feed_commands(&mut socket, bytes).await;
                            }
                            Some(HostSignal::Evict(conn)) if conn == session.connection => {
                                evicted = true;
                                break;
                            }
                            _ => {}
                        }
                        written += 1;
                        if alive && written < MAX_WRITE_BURST {
                            next = signals.next().now_or_never().flatten();
                        }
                    }
                    if alive {
                        alive = socket.flush().await.is_ok();
                    }
                    if evicted {
                        close(socket, 1000, &format!("ws.eviction#{}", session.ray)).await;
                        session.refuse_undelivered(&mut signals).await;
                        session.fail_inflight(inflight).await;
                        events.abort();
                        return;
                    }
                }
                answer = out_rx.recv() => {
                    let Some(answer) = answer else { break };
                    alive = session.send_answers(&mut socket, answer, &mut out_rx).await;
                }
                _ = engine_stopping(&mut stopping) => {
                    // The host reconnects (to this engine once it is back, or another node);
                    // until the lost threshold passes its actors stay where they are.
                    close(socket, 1001, &format!("ws.going_away#{}", session.ray)).await;
                    session.refuse_undelivered(&mut signals).await;
                    session.fail_inflight(inflight).await;
                    drop(work_tx);
                    if tokio::time::timeout(Duration::from_secs(5), events).await.is_err() {
                        tracing::warn!(envoy_key = %session.params.envoy_key, "host events not applied before shutdown");
                    }
                    session.disconnected().await;
                    return;
                }
                _ = ping.tick() => {
                    if last_pong.elapsed() > PONG_TIMEOUT {
                        close(socket, 1011, &format!("ws.timed_out#{}", session.ray)).await;
                        session.refuse_undelivered(&mut signals).await;
                    session.fail_inflight(inflight).await;
                        session.disconnected().await;
                        events.abort();
                        return;
                    }
                    alive = session.send(&mut socket, &ToEnvoy::Ping(proto::ToEnvoyPing { ts: now_ms() })).await;
                }
            }
        }
        session.refuse_undelivered(&mut signals).await;
        session.fail_inflight(inflight).await;
        session.disconnected().await;
        events.abort();
    }

    /// The socket is gone: every gateway request still waiting on this host learns it now
    /// (an abort the gateway may retry safely for repeatable requests, or a close) instead of
    /// waiting for its timeout.
    async fn fail_inflight(&self, inflight: Inflight) {
        self.fail_tunnels(inflight, rivet_gateway::proxy::HOST_GONE)
            .await;
    }

    /// Gateway traffic still queued for this socket when it ended never reached the host:
    /// stop receiving, then answer it as undelivered, which the gateway may safely send again
    /// (to the actor's next host) whatever the method.
    async fn refuse_undelivered(&self, signals: &mut rivet_bus::Subscription) {
        signals.unsubscribe().await;
        let mut undelivered = Inflight::default();
        while let Some(Some(message)) = signals.next().now_or_never() {
            if let Some(HostSignal::Tunnel(bytes)) = HostSignal::decode(message.payload()) {
                undelivered.sent(&bytes);
            }
        }
        if !undelivered.0.is_empty() {
            tracing::debug!(requests = undelivered.0.len(), envoy_key = %self.params.envoy_key, "gateway traffic not delivered before the socket ended");
        }
        self.fail_tunnels(undelivered, rivet_gateway::proxy::NOT_DELIVERED)
            .await;
    }

    async fn fail_tunnels(&self, inflight: Inflight, detail: &str) {
        for ((gateway_id, request_id), websocket) in inflight.0 {
            let kind = if websocket {
                proto::ToRivetTunnelMessageKind::WebSocketClose(proto::ToRivetWebSocketClose {
                    code: Some(1011),
                    reason: Some(rivet_gateway::proxy::HOST_GONE.to_string()),
                    hibernate: false,
                })
            } else {
                proto::ToRivetTunnelMessageKind::ResponseAbort(proto::ToRivetResponseAbort {
                    reason: proto::HttpStreamAbortReason {
                        kind: proto::HttpStreamAbortReasonKind::InternalError,
                        detail: Some(detail.to_string()),
                    },
                })
            };
            let message = ToRivet::TunnelMessage(proto::ToRivetTunnelMessage {
                message_id: proto::MessageId {
                    gateway_id,
                    request_id,
                    message_index: u16::MAX,
                },
                message_kind: kind,
            });
            if let Ok(bytes) = proto::encode(ProtocolVersion::V8, &message) {
                let _ = self
                    .state
                    .shell
                    .bus()
                    .publish(&gateway_subject(&gateway_id), Bytes::from(bytes))
                    .await;
            }
        }
    }

    async fn disconnected(&self) {
        if let Err(error) = self
            .state
            .shell
            .host_disconnected(
                self.params.namespace,
                &self.params.envoy_key,
                &self.connection,
            )
            .await
        {
            tracing::error!(%error, envoy_key = %self.params.envoy_key, "cannot record the disconnect");
        }
    }

    /// Encodes and sends; false when the socket is gone.
    async fn send(&self, socket: &mut WebSocket, message: &ToEnvoy) -> bool {
        self.feed(socket, message).await && socket.flush().await.is_ok()
    }

    /// Encodes and queues without flushing; false when the socket is gone. A message that
    /// cannot be encoded is logged and skipped.
    async fn feed(&self, socket: &mut WebSocket, message: &ToEnvoy) -> bool {
        match proto::encode(self.params.protocol, message) {
            Ok(bytes) => socket
                .feed(Message::Binary(Bytes::from(bytes)))
                .await
                .is_ok(),
            Err(error) => {
                tracing::error!(%error, "cannot encode a message for the host");
                true
            }
        }
    }

    /// A host's answer to gateway traffic goes to the gateway instance named in its message id
    /// as a v8 frame: on a v8 socket the frame as received.
    async fn tunnel_answer(&self, message: proto::ToRivetTunnelMessage, frame: Bytes) {
        let subject = gateway_subject(&message.message_id.gateway_id);
        let payload = if self.params.protocol == ProtocolVersion::V8 {
            frame
        } else {
            match proto::encode(ProtocolVersion::V8, &ToRivet::TunnelMessage(message)) {
                Ok(bytes) => Bytes::from(bytes),
                Err(error) => {
                    tracing::warn!(%error, "cannot re-encode a tunnel message");
                    return;
                }
            }
        };
        if let Err(error) = self.state.shell.bus().publish(&subject, payload).await {
            tracing::debug!(%error, "tunnel answer not delivered");
        }
    }

    /// Writes `first` and the answers already queued behind it with one flush: under load
    /// several answers leave in one write instead of a syscall each.
    async fn send_answers(
        &self,
        socket: &mut WebSocket,
        first: ToEnvoy,
        queued: &mut mpsc::UnboundedReceiver<ToEnvoy>,
    ) -> bool {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(message) = next.take() {
            if !self.feed(socket, &message).await {
                return false;
            }
            written += 1;
            if written < MAX_WRITE_BURST {
                next = queued.try_recv().ok();
            }
        }
        socket.flush().await.is_ok()
    }

    /// Queues commands or tunnel messages for the host without flushing. They arrive
    /// v8-encoded; a v8 socket forwards the very bytes.
    async fn feed_commands(&self, socket: &mut WebSocket, bytes: Bytes) -> bool {
        if self.params.protocol == ProtocolVersion::V8 {
            return socket.feed(Message::Binary(bytes)).await.is_ok();
        }
        match proto::decode::<ToEnvoy>(ProtocolVersion::V8, &bytes) {
            Ok(message) => self.feed(socket, &message).await,
            Err(error) => {
                tracing::error!(%error, "undecodable commands on the bus");
                true
            }
        }
    }

    fn requester(&self) -> Requester<'_> {
        Requester {
            namespace: self.params.namespace,
            envoy_key: &self.params.envoy_key,
            protocol: self.params.protocol,
        }
    }

    async fn on_message(&self, message: ToRivet, work: &mpsc::UnboundedSender<Work>) {
        let shell = &self.state.shell;
        let (ns, key) = (self.params.namespace, self.params.envoy_key.as_str());
        let result = match message {
            ToRivet::Metadata(metadata) => {
                let names: BTreeMap<String, serde_json::Value> = metadata
                    .prepopulate_actor_names
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, actor)| {
                        let meta = serde_json::from_str(&actor.metadata)
                            .unwrap_or_else(|_| serde_json::json!({}));
                        (name, meta)
                    })
                    .collect();
                let host_meta = metadata
                    .metadata
                    .and_then(|m| serde_json::from_str(&m).ok());
                shell.host_metadata(ns, key, &names, host_meta).await
            }
            ToRivet::Events(list) => {
                let _ = work.send(Work::Events(list));
                Ok(())
            }
            ToRivet::AckCommands(ack) => {
                let _ = work.send(Work::Acks(ack.last_command_checkpoints));
                Ok(())
            }
            ToRivet::Stopping => shell.host_stopping(ns, key).await,
            ToRivet::Pong(pong) => {
                let _ = work.send(Work::Pong(pong.ts));
                Ok(())
            }
            ToRivet::KvRequest(request) => {
                let _ = self.kv.send(request);
                Ok(())
            }
            // Handled in the read loop (forwarded with its frame).
            ToRivet::TunnelMessage(_) => Ok(()),
            other @ (ToRivet::SqliteExecRequest(_)
            | ToRivet::SqliteExecuteRequest(_)
            | ToRivet::SqliteExecuteBatchRequest(_)) => {
                if let Some(answer) = shell.sqlite_request(self.requester(), &other).await {
                    let _ = self.out.send(answer);
                }
                Ok(())
            }
            other => {
                self.enqueue(StorageJob(Box::new(other)));
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, envoy_key = key, "cannot apply a host message");
        }
    }

    /// Queues a storage request behind the same actor's earlier ones.
    fn enqueue(&self, job: StorageJob) {
        let actor = job.actor_id().to_string();
        let Ok(mut queues) = self.storage.lock() else {
            return;
        };
        let job = match queues.get(&actor) {
            Some(queue) => match queue.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _ = tx.send(job);
        queues.insert(actor.clone(), tx);
        let shell = self.state.shell.clone();
        let out = self.out.clone();
        let storage = self.storage.clone();
        let (ns, key, protocol) = (
            self.params.namespace,
            self.params.envoy_key.clone(),
            self.params.protocol,
        );
        tokio::spawn(async move {
            let who = Requester {
                namespace: ns,
                envoy_key: &key,
                protocol,
            };
            loop {
                let job = match rx.try_recv() {
                    Ok(job) => job,
                    // An actor that just wrote is likely to write again soon: wait a moment
                    // before leaving, rather than spawning a worker per request.
                    Err(_) => match tokio::time::timeout(STORAGE_WORKER_IDLE, rx.recv()).await {
                        Ok(Some(job)) => job,
                        _ => {
                            // Leave only when nothing arrived meanwhile (checked under the lock).
                            let Ok(mut queues) = storage.lock() else {
                                return;
                            };
                            match rx.try_recv() {
                                Ok(job) => job,
                                Err(_) => {
                                    queues.remove(&actor);
                                    return;
                                }
                            }
                        }
                    },
                };
                if let Some(answer) = shell.sqlite_request(who, &job.0).await {
                    let _ = out.send(answer);
                }
            }
        });
    }

    /// Applies KV requests in bursts: everything that arrived while the previous burst
    /// committed goes into one transaction (bounded in count and bytes), answered in order.
    fn kv_worker(
        &self,
        mut rx: mpsc::UnboundedReceiver<proto::ToRivetKvRequest>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let shell = self.state.shell.clone();
        let out = self.out.clone();
        let (ns, key, protocol) = (
            self.params.namespace,
            self.params.envoy_key.clone(),
            self.params.protocol,
        );
        async move {
            let who = Requester {
                namespace: ns,
                envoy_key: &key,
                protocol,
            };
            let mut burst = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut bytes = kv_request_bytes(&first);
                burst.push(first);
                while burst.len() < MAX_KV_BURST && bytes < MAX_KV_BURST_BYTES {
                    let Ok(next) = rx.try_recv() else { break };
                    bytes += kv_request_bytes(&next);
                    burst.push(next);
                }
                for answer in shell.kv_requests(who, &burst).await {
                    let _ = out.send(ToEnvoy::KvResponse(answer));
                }
                burst.clear();
            }
        }
    }

    /// Applies a host's events, command acks and pongs in bursts: everything that arrived while
    /// the previous burst committed goes into one transaction per kind (group commit at the
    /// socket), then one AckEvents answers the burst's events. The read loop never waits for a
    /// commit.
    fn event_worker(
        &self,
        mut rx: mpsc::UnboundedReceiver<Work>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let shell = self.state.shell.clone();
        let out = self.out.clone();
        let (ns, key) = (self.params.namespace, self.params.envoy_key.clone());
        let connection = self.connection.clone();
        async move {
            while let Some(first) = rx.recv().await {
                let mut events = Vec::new();
                let mut acks = Vec::new();
                let mut pong = None;
                let mut next = Some(first);
                // Bounded bursts: one transaction for thousands of actors would hold all their
                // writes in memory at once and delay the first of them.
                while let Some(work) = next.take().or_else(|| {
                    (events.len() + acks.len() < MAX_BURST)
                        .then(|| rx.try_recv().ok())
                        .flatten()
                }) {
                    match work {
                        Work::Events(list) => events.extend(list),
                        Work::Acks(list) => acks.extend(list),
                        Work::Pong(ts) => pong = Some(ts),
                    }
                }
                if !acks.is_empty() {
                    if let Err(error) = shell.ack_commands(ns, &key, &acks).await {
                        // The commands stay stored and are replayed after a reconnect.
                        tracing::warn!(%error, envoy_key = %key, "cannot apply command acks");
                    }
                }
                if !events.is_empty() {
                    match shell.handle_events(ns, &key, &events).await {
                        Ok(acks) if !acks.is_empty() => {
                            let _ = out.send(ToEnvoy::AckEvents(proto::ToEnvoyAckEvents {
                                last_event_checkpoints: acks,
                            }));
                        }
                        Ok(_) => {}
                        // Not acknowledged: the host re-sends them after a reconnect.
                        Err(error) => {
                            tracing::error!(%error, envoy_key = %key, "cannot apply events")
                        }
                    }
                }
                if let Some(ts) = pong {
                    if let Err(error) = shell.host_pong(ns, &key, &connection, ts).await {
                        tracing::warn!(%error, envoy_key = %key, "cannot record a pong");
                    }
                }
            }
        }
    }
}
