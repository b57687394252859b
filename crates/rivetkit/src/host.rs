//! The host's connection to the engine (`/envoys/connect`, envoy protocol v8).
//!
//! One task owns the socket and reconnects with backoff (250 ms → 30 s). State that must
//! survive a reconnect lives in [`Host`]: event indexes and un-acknowledged events (re-sent
//! after a reconnect), KV requests awaiting an answer (re-sent; puts of one actor are
//! idempotent and ordered), the last command seen per actor generation (replays are acked
//! and ignored) and the running actors. The read loop never waits: it decodes a frame and
//! hands it to an actor's inbox.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use indexmap::IndexMap;
use rivet_envoy_protocol::{
    decode, encode, ActorCheckpoint, ActorName, ActorState, ActorStateStopped, Command,
    CommandWrapper, Event, EventActorStateUpdate, EventWrapper, KvRequestData, KvResponseData,
    MessageId, ProtocolVersion, StopCode, ToEnvoy, ToEnvoyTunnelMessageKind, ToRivet,
    ToRivetAckCommands, ToRivetKvRequest, ToRivetMetadata, ToRivetPong, ToRivetTunnelMessage,
    ToRivetTunnelMessageKind, ToRivetWebSocketClose,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::ctx::Core;
use crate::error::{HostError, KvError};
use crate::instance::{Input, Start};

/// `(gatewayId, requestId)` of a tunnelled request or WebSocket.
pub(crate) type TunnelKey = ([u8; 4], [u8; 4]);

const VERSION: ProtocolVersion = ProtocolVersion::V8;
/// The engine accepts 32 MiB frames; never be the side that refuses one.
const MAX_MESSAGE_SIZE: usize = 64 << 20;
/// Frames written per flush.
const MAX_BURST: usize = 256;
/// How long the bookkeeping of an ended actor generation is kept (see `forget_finished`).
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// tungstenite zero-fills its whole read buffer before every read attempt (128 KiB by
/// default: ~6 % of the host's CPU with small frames); larger frames take several reads.
const READ_BUFFER: usize = 16 * 1024;

/// Settings of the host socket.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE_SIZE))
        .max_frame_size(Some(MAX_MESSAGE_SIZE))
}

/// Where and as whom the host connects.
#[derive(Debug, Clone)]
pub(crate) struct HostConfig {
    /// `host:port` of the engine.
    pub authority: String,
    pub namespace: String,
    pub pool: String,
    pub token: Option<String>,
    pub envoy_key: String,
    pub version: u32,
    pub region: String,
}

/// Starts actors of one registered type.
pub(crate) trait Factory: Send + Sync {
    /// Spawns the actor's task; returns its shared part (inputs go to its inbox).
    fn spawn(&self, host: Arc<Host>, start: Start) -> Arc<Core>;
}

/// The generation of an actor running here, with its protocol counters (one entry per live
/// actor keeps the host's tables small).
struct Slot {
    generation: u32,
    core: Arc<Core>,
    /// Index of its next event.
    next_event: i64,
    /// Highest command index seen (replays at or below are ignored).
    last_command: i64,
}

/// A generation with no slot: ended here, or never started (its type is not registered). Its
/// counters are kept until replays of its commands can no longer come.
struct Past {
    next_event: i64,
    last_command: i64,
    since: std::time::Instant,
}

impl Past {
    fn new() -> Past {
        Past {
            next_event: 0,
            last_command: 0,
            since: std::time::Instant::now(),
        }
    }
}

/// Who is waiting for a KV answer.
enum Answer {
    /// Actor code awaiting it.
    Reply(oneshot::Sender<KvResponseData>),
    /// A state write of this actor's output gate.
    Gate(Arc<Core>),
}

struct PendingKv {
    frame: Vec<u8>,
    answer: Answer,
}

#[derive(Default)]
struct State {
    actors: HashMap<Arc<str>, Slot>,
    /// Client sockets, to the actor that serves them.
    tunnels: HashMap<TunnelKey, Arc<Core>>,
    unacked: BTreeMap<(String, u32), Vec<EventWrapper>>,
    past: HashMap<(String, u32), Past>,
    pending_kv: BTreeMap<u32, PendingKv>,
    connected: bool,
}

/// The shared host: what actors use to talk to the engine.
pub(crate) struct Host {
    pub cfg: HostConfig,
    out: mpsc::UnboundedSender<Vec<u8>>,
    state: Mutex<State>,
    /// KV request ids; outside `state` so a gate can register a write before it is sent.
    next_request_id: AtomicU32,
    types: HashMap<Arc<str>, Arc<dyn Factory>>,
    /// Client for actor-to-actor calls (`ctx.client()`).
    pub client: rivetkit_client::Client,
    /// Bumped whenever an actor stops or the connection state changes.
    changed: watch::Sender<u64>,
    shutting_down: AtomicBool,
}

impl Host {
    /// Connects; returns once the engine has sent `ToEnvoyInit` (or refused the socket).
    pub async fn start(
        cfg: HostConfig,
        types: HashMap<Arc<str>, Arc<dyn Factory>>,
        client: rivetkit_client::Client,
    ) -> Result<(Arc<Host>, tokio::task::JoinHandle<()>), HostError> {
        let (out, out_rx) = mpsc::unbounded_channel();
        let host = Arc::new(Host {
            cfg,
            out,
            state: Mutex::new(State::default()),
            next_request_id: AtomicU32::new(0),
            types,
            client,
            changed: watch::channel(0).0,
            shutting_down: AtomicBool::new(false),
        });
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(connection_loop(host.clone(), out_rx, first_tx));
        match first_rx.await {
            Ok(Ok(())) => Ok((host, task)),
            Ok(Err(e)) => {
                task.abort();
                Err(e)
            }
            Err(_) => Err(HostError::Closed),
        }
    }

    /// A host with no connection, for unit tests: its frames go to the returned receiver.
    #[cfg(test)]
    pub fn detached() -> (Arc<Host>, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (out, out_rx) = mpsc::unbounded_channel();
        let host = Arc::new(Host {
            cfg: HostConfig {
                authority: "127.0.0.1:1".into(),
                namespace: "default".into(),
                pool: "default".into(),
                token: None,
                envoy_key: "test".into(),
                version: 1,
                region: "test".into(),
            },
            out,
            state: Mutex::new(State::default()),
            next_request_id: AtomicU32::new(0),
            types: HashMap::new(),
            client: rivetkit_client::Client::new("http://127.0.0.1:1")
                .unwrap_or_else(|e| panic!("test client: {e}")),
            changed: watch::channel(0).0,
            shutting_down: AtomicBool::new(false),
        });
        (host, out_rx)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind; keep serving them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Queues an encoded frame for the socket (dropped if the socket is down; what must
    /// survive a reconnect is kept elsewhere and re-sent).
    pub fn send_frame(&self, frame: Vec<u8>) {
        let _ = self.out.send(frame);
    }

    fn send_msg(&self, msg: &ToRivet) {
        match encode(VERSION, msg) {
            Ok(frame) => self.send_frame(frame),
            Err(e) => tracing::error!(error = %e, "message not encodable"),
        }
    }

    /// Sends events for one actor generation with the next indexes; kept until acked.
    /// Returns the index of the last one.
    pub fn send_events(&self, actor_id: &str, generation: u32, events: Vec<Event>) -> i64 {
        if events.is_empty() {
            return -1;
        }
        let mut st = self.lock();
        let key = (actor_id.to_string(), generation);
        let counter = match st.actors.get_mut(actor_id) {
            Some(slot) if slot.generation == generation => &mut slot.next_event,
            _ => {
                &mut st
                    .past
                    .entry(key.clone())
                    .or_insert_with(Past::new)
                    .next_event
            }
        };
        let mut index = *counter;
        let mut wrapped = Vec::with_capacity(events.len());
        for inner in events {
            wrapped.push(EventWrapper {
                checkpoint: ActorCheckpoint {
                    actor_id: actor_id.to_string(),
                    generation,
                    index,
                },
                inner,
            });
            index += 1;
        }
        *counter = index;
        self.send_msg(&ToRivet::Events(wrapped.clone()));
        st.unacked.entry(key).or_default().extend(wrapped);
        index - 1
    }

    /// Whether the engine acknowledged the actor generation's event `index`.
    pub fn event_acked(&self, actor_id: &str, generation: u32, index: i64) -> bool {
        let st = self.lock();
        st.unacked
            .get(&(actor_id.to_string(), generation))
            .is_none_or(|kept| kept.iter().all(|e| e.checkpoint.index > index))
    }

    /// One KV operation of an actor; re-sent after a reconnect until answered.
    pub async fn kv(&self, actor_id: &str, data: KvRequestData) -> Result<KvResponseData, KvError> {
        match self.kv_start(actor_id, data)?.await {
            Ok(KvResponseData::Error(e)) => Err(KvError::Engine(e.message)),
            Ok(answer) => Ok(answer),
            Err(_) => Err(KvError::Closed),
        }
    }

    /// Sends a KV request now (in order with the actor's other requests); the answer arrives
    /// on the returned channel.
    pub fn kv_start(
        &self,
        actor_id: &str,
        data: KvRequestData,
    ) -> Result<oneshot::Receiver<KvResponseData>, KvError> {
        let (tx, rx) = oneshot::channel();
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        self.send_kv(actor_id, request_id, data, Answer::Reply(tx))?;
        Ok(rx)
    }

    /// Sends a state write of `core`'s actor, registered with its output gate first (the
    /// answer completes the gate from the read loop).
    pub fn kv_gated(&self, core: &Arc<Core>, data: KvRequestData) -> Result<(), KvError> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        core.gate.write(request_id);
        let sent = self.send_kv(&core.actor_id, request_id, data, Answer::Gate(core.clone()));
        if sent.is_err() {
            core.gate.complete(request_id, false);
            core.wake.notify_one();
        }
        sent
    }

    fn send_kv(
        &self,
        actor_id: &str,
        request_id: u32,
        data: KvRequestData,
        answer: Answer,
    ) -> Result<(), KvError> {
        let msg = ToRivet::KvRequest(ToRivetKvRequest {
            actor_id: actor_id.to_string(),
            request_id,
            data,
        });
        let frame = encode(VERSION, &msg).map_err(|e| KvError::Codec(e.to_string()))?;
        let mut st = self.lock();
        if st.connected {
            self.send_frame(frame.clone());
        }
        st.pending_kv
            .insert(request_id, PendingKv { frame, answer });
        Ok(())
    }

    /// Encodes a tunnel message to the gateway.
    pub fn tunnel(&self, key: TunnelKey, index: u16, kind: ToRivetTunnelMessageKind) {
        self.send_msg(&ToRivet::TunnelMessage(ToRivetTunnelMessage {
            message_id: MessageId {
                gateway_id: key.0,
                request_id: key.1,
                message_index: index,
            },
            message_kind: kind,
        }));
    }

    /// Forgets a tunnelled WebSocket (closed by either side).
    pub fn forget_tunnel(&self, key: &TunnelKey) {
        self.lock().tunnels.remove(key);
    }

    /// Called by an actor task when it has finished (after its Stopped event, if any).
    pub fn actor_finished(&self, actor_id: &str, generation: u32) {
        let mut st = self.lock();
        // A newer generation may already run here and own the actor's sockets.
        if st.actors.get(actor_id).map(|s| s.generation) == Some(generation) {
            if let Some(slot) = st.actors.remove(actor_id) {
                // Its commands may still be replayed (until the engine has our acknowledgement).
                st.past.insert(
                    (actor_id.to_string(), generation),
                    Past {
                        next_event: slot.next_event,
                        last_command: slot.last_command,
                        since: std::time::Instant::now(),
                    },
                );
            }
        }
        // Sockets still pointing at this generation (a newer one re-registers its own).
        st.tunnels
            .retain(|_, core| !(&*core.actor_id == actor_id && core.generation == generation));
        drop(st);
        self.notify();
    }

    /// Number of running actors.
    pub fn actor_count(&self) -> usize {
        self.lock().actors.len()
    }

    /// Drains: tells the engine this host is stopping, waits (up to `timeout`) until the
    /// engine has stopped every actor here, then stops reconnecting.
    pub async fn drain(&self, timeout: Duration) {
        self.send_msg(&ToRivet::Stopping);
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = self.actor_count();
            if left == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                tracing::warn!(actors = left, "drain timed out with actors still running");
                break;
            }
        }
        // The actors' Stopped events must reach the engine's storage before the socket closes:
        // an engine that never learns of the stop waits for the lost threshold instead.
        loop {
            let unacked = self.lock().unacked.len();
            if unacked == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                tracing::warn!(
                    actors = unacked,
                    "drain timed out before the engine acknowledged every event"
                );
                break;
            }
        }
        self.shutting_down.store(true, Ordering::SeqCst);
        self.notify();
    }

    fn on_message(self: &Arc<Self>, msg: ToEnvoy) {
        match msg {
            ToEnvoy::Init(_) => {}
            ToEnvoy::Ping(ping) => self.send_msg(&ToRivet::Pong(ToRivetPong { ts: ping.ts })),
            ToEnvoy::Commands(commands) => self.on_commands(commands),
            ToEnvoy::AckEvents(ack) => {
                let mut st = self.lock();
                // Gates are completed after the lock is released (they may run outputs that
                // take it).
                let mut gates = Vec::new();
                for cp in ack.last_event_checkpoints {
                    if let Some(slot) = st.actors.get(cp.actor_id.as_str()) {
                        if slot.generation == cp.generation {
                            gates.push((slot.core.clone(), cp.index));
                        }
                    }
                    let key = (cp.actor_id, cp.generation);
                    if let Some(kept) = st.unacked.get_mut(&key) {
                        kept.retain(|e| e.checkpoint.index > cp.index);
                        if kept.is_empty() {
                            st.unacked.remove(&key);
                        }
                    }
                }
                drop(st);
                for (core, index) in gates {
                    core.gate.events_acked(Some(index));
                }
                self.notify();
            }
            ToEnvoy::KvResponse(r) => {
                let pending = self.lock().pending_kv.remove(&r.request_id);
                match pending.map(|p| p.answer) {
                    Some(Answer::Reply(tx)) => drop(tx.send(r.data)),
                    Some(Answer::Gate(core)) => {
                        let ok = matches!(r.data, KvResponseData::Put | KvResponseData::Delete);
                        if !ok {
                            tracing::error!(actor_id = %core.actor_id, answer = ?r.data, "state write refused");
                        }
                        if core.gate.complete(r.request_id, ok) {
                            core.wake.notify_one();
                        }
                    }
                    None => tracing::debug!(request_id = r.request_id, "kv answer to nothing"),
                }
            }
            ToEnvoy::TunnelMessage(m) => self.on_tunnel(m.message_id, m.message_kind),
            other => tracing::debug!(?other, "ignored engine message"),
        }
    }

    /// Forgets generations that ended long ago. The engine replays a command only until the
    /// host's acknowledgement reaches it (sent right after the command), so after
    /// `FORGET_AFTER` nothing of theirs can come back; without this, a long-running host
    /// would keep a record of every start it ever served.
    fn forget_finished(&self) {
        let mut st = self.lock();
        let State { past, unacked, .. } = &mut *st;
        past.retain(|key, p| p.since.elapsed() < FORGET_AFTER || unacked.contains_key(key));
    }

    fn on_commands(self: &Arc<Self>, commands: Vec<CommandWrapper>) {
        self.forget_finished();
        let mut acks: IndexMap<(String, u32), i64> = IndexMap::new();
        for cmd in commands {
            let cp = cmd.checkpoint;
            let key = (cp.actor_id.clone(), cp.generation);
            let ack = acks.entry(key.clone()).or_insert(cp.index);
            *ack = (*ack).max(cp.index);
            {
                let mut st = self.lock();
                let last = match st.actors.get_mut(cp.actor_id.as_str()) {
                    Some(slot) if slot.generation == cp.generation => &mut slot.last_command,
                    _ => &mut st.past.entry(key).or_insert_with(Past::new).last_command,
                };
                if cp.index <= *last {
                    tracing::debug!(actor_id = %cp.actor_id, generation = cp.generation, index = cp.index, "replayed command ignored");
                    continue;
                }
                *last = cp.index;
            }
            match cmd.inner {
                Command::StartActor(start) => {
                    let name = start.config.name.clone();
                    let found = self
                        .types
                        .get_key_value(name.as_str())
                        .map(|(n, f)| (n.clone(), f.clone()));
                    let Some((name, factory)) = found else {
                        tracing::error!(actor_id = %cp.actor_id, %name, "no actor type registered under this name");
                        self.send_events(
                            &cp.actor_id,
                            cp.generation,
                            vec![Event::StateUpdate(EventActorStateUpdate {
                                state: ActorState::Stopped(ActorStateStopped {
                                    code: StopCode::Error,
                                    message: Some(format!(
                                        "actor type {name:?} is not registered on this host"
                                    )),
                                }),
                            })],
                        );
                        continue;
                    };
                    let hibernating: Vec<TunnelKey> = start
                        .hibernating_requests
                        .iter()
                        .map(|h| (h.gateway_id, h.request_id))
                        .collect();
                    let core = factory.spawn(
                        self.clone(),
                        Start {
                            actor_id: cp.actor_id.clone(),
                            generation: cp.generation,
                            name,
                            key: start.config.key,
                            input: start.config.input,
                            hibernating: hibernating.clone(),
                        },
                    );
                    let mut st = self.lock();
                    // Frames of restored sockets arrive without a new open (§9.6).
                    for key in hibernating {
                        st.tunnels.insert(key, core.clone());
                    }
                    // Counters so far (this StartActor's index) move from `past` into the slot.
                    let past = st
                        .past
                        .remove(&(cp.actor_id.clone(), cp.generation))
                        .unwrap_or_else(Past::new);
                    let old = st.actors.insert(
                        core.actor_id.clone(),
                        Slot {
                            generation: cp.generation,
                            core,
                            next_event: past.next_event,
                            last_command: past.last_command,
                        },
                    );
                    drop(st);
                    if let Some(old) = old {
                        // An older generation the engine gave up on: stop it silently.
                        old.core.deliver(Input::Lost);
                    }
                }
                Command::StopActor(stop) => {
                    let st = self.lock();
                    match st.actors.get(cp.actor_id.as_str()) {
                        Some(slot) if slot.generation == cp.generation => {
                            slot.core.deliver(Input::Stop(stop.reason));
                        }
                        _ => {
                            tracing::debug!(actor_id = %cp.actor_id, "stop for an actor not running here")
                        }
                    }
                }
            }
        }
        if !acks.is_empty() {
            let checkpoints = acks
                .into_iter()
                .map(|((actor_id, generation), index)| ActorCheckpoint {
                    actor_id,
                    generation,
                    index,
                })
                .collect();
            self.send_msg(&ToRivet::AckCommands(ToRivetAckCommands {
                last_command_checkpoints: checkpoints,
            }));
        }
    }

    fn on_tunnel(&self, id: MessageId, kind: ToEnvoyTunnelMessageKind) {
        let key = (id.gateway_id, id.request_id);
        let mut st = self.lock();
        let (core, input) = match kind {
            ToEnvoyTunnelMessageKind::RequestStart(request) => {
                let core = st
                    .actors
                    .get(request.actor_id.as_str())
                    .map(|s| s.core.clone());
                let input = Input::Http {
                    key,
                    request: Box::new(request),
                };
                (core, input)
            }
            ToEnvoyTunnelMessageKind::WebSocketOpen(open) => {
                let core = st
                    .actors
                    .get(open.actor_id.as_str())
                    .map(|s| s.core.clone());
                if let Some(core) = &core {
                    st.tunnels.insert(key, core.clone());
                }
                let input = Input::WsOpen {
                    key,
                    open: Box::new(open),
                };
                (core, input)
            }
            ToEnvoyTunnelMessageKind::WebSocketMessage(msg) => match st.tunnels.get(&key) {
                Some(core) => (
                    Some(core.clone()),
                    Input::WsMessage {
                        key,
                        index: id.message_index,
                        msg,
                    },
                ),
                None => return,
            },
            ToEnvoyTunnelMessageKind::WebSocketClose(close) => match st.tunnels.remove(&key) {
                Some(core) => (Some(core), Input::WsClose { key, close }),
                None => return,
            },
            // Requests are answered whole; an abort only means nobody reads the answer.
            _ => return,
        };
        drop(st);
        let delivered = core.is_some_and(|core| core.deliver(input));
        if !delivered {
            self.lock().tunnels.remove(&key);
            tracing::debug!("gateway traffic for an actor not running here");
            self.refuse(key);
        }
    }

    /// Answers traffic for an actor this host does not run.
    fn refuse(&self, key: TunnelKey) {
        // Which kind it was is unknown here; a close is harmless for an HTTP request id and a
        // 503 is harmless for a socket id, so send both.
        let body = br#"{"group":"actor","code":"not_found","message":"The actor is not running on this host."}"#;
        let mut headers = rivet_envoy_protocol::Headers::new();
        headers.insert("content-type".into(), "application/json".into());
        self.tunnel(
            key,
            0,
            ToRivetTunnelMessageKind::ResponseStart(rivet_envoy_protocol::ToRivetResponseStart {
                status: 503,
                headers,
                body: Some(body.to_vec()),
                stream: false,
            }),
        );
        self.tunnel(
            key,
            1,
            ToRivetTunnelMessageKind::WebSocketClose(ToRivetWebSocketClose {
                code: Some(1011),
                reason: Some("actor.not_found".into()),
                hibernate: false,
            }),
        );
    }
}

type Socket = WebSocketStream<TcpStream>;

async fn connection_loop(
    host: Arc<Host>,
    mut out_rx: mpsc::UnboundedReceiver<Vec<u8>>,
    first: oneshot::Sender<Result<(), HostError>>,
) {
    let mut first = Some(first);
    let mut backoff = Duration::from_millis(250);
    loop {
        if host.shutting_down.load(Ordering::SeqCst) {
            break;
        }
        match open(&host.cfg).await {
            Ok(ws) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Ok(()));
                }
                backoff = Duration::from_millis(250);
                tracing::info!(envoy_key = %host.cfg.envoy_key, "connected to the engine");
                serve(&host, ws, &mut out_rx).await;
                {
                    let mut st = host.lock();
                    st.connected = false;
                }
                host.notify();
                if host.shutting_down.load(Ordering::SeqCst) {
                    break;
                }
                tracing::warn!("engine connection lost; reconnecting");
            }
            Err(e) => {
                if let Some(waiting) = first.take() {
                    // A refusal at the first attempt is a configuration error: report it.
                    if matches!(e, HostError::Refused { .. }) {
                        let _ = waiting.send(Err(e));
                        return;
                    }
                    // Not reachable yet: keep trying; `start()` returns once connected.
                    tracing::warn!(error = %e, "engine not reachable yet; retrying");
                    first = Some(waiting);
                } else {
                    tracing::warn!(error = %e, ?backoff, "reconnect failed");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn serve(host: &Arc<Host>, mut ws: Socket, out_rx: &mut mpsc::UnboundedReceiver<Vec<u8>>) {
    let resend = {
        let mut st = host.lock();
        // Frames queued while the socket was down belong to the old connection.
        while out_rx.try_recv().is_ok() {}
        let mut frames = Vec::new();
        let names: IndexMap<String, ActorName> = host
            .types
            .keys()
            .map(|n| {
                (
                    n.to_string(),
                    ActorName {
                        metadata: "{}".into(),
                    },
                )
            })
            .collect();
        let metadata = ToRivet::Metadata(ToRivetMetadata {
            prepopulate_actor_names: Some(names),
            metadata: Some(format!(
                r#"{{"rivetkit":{{"version":"{}","runtime":"rust"}}}}"#,
                env!("CARGO_PKG_VERSION")
            )),
        });
        if let Ok(f) = encode(VERSION, &metadata) {
            frames.push(f);
        }
        let events: Vec<EventWrapper> = st.unacked.values().flatten().cloned().collect();
        if !events.is_empty() {
            if let Ok(f) = encode(VERSION, &ToRivet::Events(events)) {
                frames.push(f);
            }
        }
        frames.extend(st.pending_kv.values().map(|p| p.frame.clone()));
        st.connected = true;
        frames
    };
    host.notify();
    for frame in resend {
        if ws.feed(Message::Binary(frame.into())).await.is_err() {
            return;
        }
    }
    if ws.flush().await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Binary(bytes))) => match decode::<ToEnvoy>(VERSION, &bytes) {
                    Ok(msg) => host.on_message(msg),
                    Err(e) => tracing::warn!(error = %e, len = bytes.len(), "undecodable frame from the engine"),
                },
                Some(Ok(Message::Close(frame))) => {
                    tracing::info!(?frame, "engine closed the host socket");
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "host socket error");
                    return;
                }
                None => return,
            },
            frame = out_rx.recv() => {
                let Some(frame) = frame else { return };
                if ws.feed(Message::Binary(frame.into())).await.is_err() {
                    return;
                }
                let mut burst = 1;
                while burst < MAX_BURST {
                    match out_rx.try_recv() {
                        Ok(frame) => {
                            if ws.feed(Message::Binary(frame.into())).await.is_err() {
                                return;
                            }
                            burst += 1;
                        }
                        Err(_) => break,
                    }
                }
                if ws.flush().await.is_err() {
                    return;
                }
            }
            _ = wait_shutdown(host) => {
                let _ = ws.close(None).await;
                return;
            }
        }
    }
}

async fn wait_shutdown(host: &Host) {
    let mut rx = host.changed.subscribe();
    while !host.shutting_down.load(Ordering::SeqCst) {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn open(cfg: &HostConfig) -> Result<Socket, HostError> {
    let url = format!(
        "ws://{}/envoys/connect?protocol_version={}&namespace={}&envoy_key={}&version={}&pool_name={}",
        cfg.authority,
        VERSION.number(),
        query_escape(&cfg.namespace),
        query_escape(&cfg.envoy_key),
        cfg.version,
        query_escape(&cfg.pool),
    );
    let handshake = async {
        let stream = TcpStream::connect(&cfg.authority).await?;
        // Commands, responses and replies are small frames; Nagle would delay each.
        stream.set_nodelay(true)?;
        let mut request = url.as_str().into_client_request()?;
        let protocols = match &cfg.token {
            Some(token) => format!("rivet, rivet_token.{token}"),
            None => "rivet".to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&protocols) {
            request.headers_mut().insert("sec-websocket-protocol", v);
        }
        let config = socket_config();
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    if let ToEnvoy::Init(_) = decode::<ToEnvoy>(VERSION, &bytes)? {
                        return Ok::<_, HostError>(ws);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(HostError::Refused { code, reason });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => {
                    return Err(HostError::Refused {
                        code: 1006,
                        reason: String::new(),
                    })
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), handshake)
        .await
        .map_err(|_| HostError::Timeout("engine connect and ToEnvoyInit"))?
}

pub(crate) fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_socket_reads_into_a_small_buffer() {
        let config = socket_config();
        assert_eq!(config.read_buffer_size, READ_BUFFER);
        assert_eq!(config.max_message_size, Some(MAX_MESSAGE_SIZE));
        assert_eq!(config.max_frame_size, Some(MAX_MESSAGE_SIZE));
    }

    #[test]
    fn a_finished_generation_moves_its_counters_out_of_the_live_table() {
        let (host, _frames) = Host::detached();
        let running = || {
            vec![Event::StateUpdate(EventActorStateUpdate {
                state: ActorState::Running,
            })]
        };
        host.send_events("a", 1, running());
        host.send_events("b", 1, running());
        assert_eq!(host.lock().past.len(), 2);
        host.actor_finished("a", 1);
        let st = host.lock();
        // Its counters stay (a replayed command must still be recognised) until forgotten.
        assert_eq!(st.past[&("a".to_string(), 1)].next_event, 1);
        // Its events stay until the engine acknowledges them.
        assert!(st.unacked.contains_key(&("a".to_string(), 1)));
    }

    #[test]
    fn escapes_query_values() {
        assert_eq!(query_escape("a b/c"), "a%20b%2Fc");
        assert_eq!(query_escape("ok-_.~"), "ok-_.~");
    }
}
