//! An actor host ("envoy") for engine tests and benchmarks.
//!
//! [`TestHost`] connects to an engine's `/envoys/connect` socket exactly as the npm `rivetkit`
//! host does (envoy-protocol.md §2, §8.1) and lets a test drive it: it receives commands,
//! reports actor state, sends KV and SQLite requests and observes acknowledgements and closes.
//! A background task owns the socket; it answers pings, matches responses to request ids,
//! de-duplicates replayed commands and applies the configured [`Behaviour`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), rivet_test_host::HostError> {
//! use std::time::Duration;
//! use rivet_test_host::{HostOptions, TestHost};
//!
//! let mut opts = HostOptions::new("http://127.0.0.1:6420", "default");
//! opts.actor_names = vec!["counter".into()];
//! let host = TestHost::connect(opts).await?;
//! // … create an actor through the REST API, then:
//! if let Some(cmd) = host.next_command(Duration::from_secs(5)).await {
//!     let generation = host.wait_running(&cmd.checkpoint.actor_id, Duration::from_secs(5)).await;
//!     assert_eq!(generation, Some(cmd.checkpoint.generation));
//! }
//! host.close().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;

pub use error::HostError;
/// The wire types, re-exported so tests need only this crate.
pub use rivet_envoy_protocol as protocol;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use indexmap::IndexMap;
use rivet_envoy_protocol::{
    decode, encode, ActorCheckpoint, ActorIntent, ActorName, ActorState, ActorStateStopped,
    Command, CommandWrapper, Event, EventActorIntent, EventActorSetAlarm, EventActorStateUpdate,
    EventWrapper, KvRequestData, KvResponseData, ProtocolMetadata, ProtocolVersion,
    RequestEnvelope, SqliteCommitFinalizeRequest, SqliteCommitFinalizeResponse,
    SqliteCommitRequest, SqliteCommitResponse, SqliteCommitStageBeginRequest,
    SqliteCommitStageBeginResponse, SqliteCommitStageSegmentRequest,
    SqliteCommitStageSegmentResponse, SqliteGetPagesRequest, SqliteGetPagesResponse,
    StopActorReason, StopCode, ToEnvoy, ToEnvoyTunnelMessage, ToRivet, ToRivetAckCommands,
    ToRivetKvRequest, ToRivetMetadata, ToRivetPong,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Socket = WebSocketStream<TcpStream>;

/// Close code recorded when the connection ended without a close frame (RFC 6455 §7.1.5).
pub const ABNORMAL_CLOSE: u16 = 1006;

/// Envoy metadata JSON sent in `ToRivetMetadata`, shaped like npm's `{"rivetkit":{"version":…}}`.
const HOST_METADATA: &str = r#"{"rivetkit":{"version":"test-host"}}"#;

/// The reference accepts 32 MiB messages on this socket (§2.3); leave headroom above that so
/// the host never is the side that refuses a frame.
const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// What the host does on its own, without the test asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// Answer every new `StartActor` with the event `ActorStateUpdate{Running}`.
    pub auto_running: bool,
    /// Answer every new `StopActor` (except `Lost`) with `ActorStateUpdate{Stopped{Ok}}`.
    pub auto_stop: bool,
    /// Send `ToRivetAckCommands` right after each command batch (as rivetkit 2.3.19 does).
    pub ack_commands: bool,
    /// Answer `ToEnvoyPing` with `ToRivetPong` (same ts). Off = the engine will time the host out.
    pub answer_pings: bool,
}

impl Default for Behaviour {
    /// Everything on: behaves like a healthy rivetkit 2.3.19 host with instant actors.
    fn default() -> Self {
        Self {
            auto_running: true,
            auto_stop: true,
            ack_commands: true,
            answer_pings: true,
        }
    }
}

impl Behaviour {
    /// Only pings are answered; the test reports every state change and acks itself.
    pub fn manual() -> Self {
        Self {
            auto_running: false,
            auto_stop: false,
            ack_commands: false,
            answer_pings: true,
        }
    }
}

/// How to connect and behave.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Engine base URL, `http://127.0.0.1:<guard port>` (or `ws://…`). No TLS.
    pub endpoint: String,
    /// Namespace name (`namespace` query parameter).
    pub namespace: String,
    /// Pool (runner config) name (`pool_name` query parameter).
    pub pool: String,
    /// Stable identity of the host (`envoy_key`, 3..=128 of `[A-Za-z0-9_-]`).
    pub envoy_key: String,
    /// Application build version (`version`); higher wins allocations.
    pub version: u32,
    /// Envoy protocol version of the socket: 8 or 6.
    pub protocol_version: u16,
    /// Token offered as the `rivet_token.<token>` subprotocol.
    pub token: Option<String>,
    /// Actor type names announced in `ToRivetMetadata` (each with metadata `{}`).
    pub actor_names: Vec<String>,
    /// Automatic reactions.
    pub behaviour: Behaviour,
    /// Deadline for TCP connect, upgrade and `ToEnvoyInit` together.
    pub connect_timeout: Duration,
    /// Deadline for the answer to one KV or SQLite request.
    pub request_timeout: Duration,
}

impl HostOptions {
    /// Options for `endpoint` and `pool` with defaults: namespace `default`, a fresh unique
    /// envoy key, version 1, protocol 8, no token, no actor names, [`Behaviour::default`],
    /// 10 s connect and request timeouts.
    pub fn new(endpoint: impl Into<String>, pool: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            namespace: "default".into(),
            pool: pool.into(),
            envoy_key: unique_envoy_key(),
            version: 1,
            protocol_version: 8,
            token: None,
            actor_names: Vec::new(),
            behaviour: Behaviour::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// A key unique within this machine: npm uses a random UUID per process; process id, wall
/// clock and a counter are unique enough for tests without a random number generator.
fn unique_envoy_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "test-host-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A connected actor host. Dropping it drops the connection like [`TestHost::kill`].
pub struct TestHost {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
    opts: HostOptions,
    init: ProtocolMetadata,
}

/// A frame for the socket task to write.
enum Outgoing {
    Frame {
        bytes: Vec<u8>,
        /// Told whether the frame reached the socket, so senders can wait for it.
        written: Option<oneshot::Sender<bool>>,
    },
    Close {
        code: u16,
        reason: String,
    },
}

/// State shared by the handle and the socket task.
struct Shared {
    state: Mutex<State>,
    /// Bumped on every state change; waiters subscribe, check, then wait for a bump.
    changed: watch::Sender<u64>,
    version: ProtocolVersion,
    behaviour: Behaviour,
    request_timeout: Duration,
}

struct State {
    /// Frames for the current connection's socket task.
    out: mpsc::UnboundedSender<Outgoing>,
    /// New commands not yet taken by `next_command`.
    commands: VecDeque<CommandWrapper>,
    /// (actor, generation, index) of every command seen, for de-duplication of replays.
    seen_commands: HashSet<(String, u32, i64)>,
    /// Replayed commands that were already seen.
    duplicates: Vec<CommandWrapper>,
    /// Actor id → generation, for actors this host reported running and not stopped.
    running: BTreeMap<String, u32>,
    /// Next event index per (actor, generation).
    next_event_index: HashMap<(String, u32), i64>,
    /// Highest `ToEnvoyAckEvents` checkpoint per (actor, generation).
    acked_events: HashMap<(String, u32), i64>,
    /// Events sent and not yet acknowledged, re-sent after a reconnect (§9.1).
    unacked: BTreeMap<(String, u32), Vec<EventWrapper>>,
    /// Request id → the caller waiting for its answer.
    pending: HashMap<u32, oneshot::Sender<ToEnvoy>>,
    next_request_id: u32,
    tunnel: VecDeque<ToEnvoyTunnelMessage>,
    pings: u64,
    /// Set once the connection is over: close code and reason from the engine.
    ended: Option<(u16, String)>,
}

impl TestHost {
    /// Opens the socket, waits for `ToEnvoyInit` and sends `ToRivetMetadata`.
    ///
    /// Fails with [`HostError::Refused`] when the engine closes the socket instead of sending
    /// `ToEnvoyInit` (bad namespace, pool without runner config, bad token …).
    pub async fn connect(opts: HostOptions) -> Result<TestHost, HostError> {
        let version = ProtocolVersion::try_from(opts.protocol_version)?;
        let (ws, init, early) = open(&opts, version).await?;
        let (out, out_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(out)),
            changed: watch::channel(0).0,
            version,
            behaviour: opts.behaviour,
            request_timeout: opts.request_timeout,
        });
        shared.enqueue(&shared.lock(), &metadata(&opts), None)?;
        let task = tokio::spawn(run(ws, shared.clone(), out_rx, early));
        tracing::debug!(envoy_key = %opts.envoy_key, %version, "test host connected");
        Ok(TestHost {
            shared,
            task: Some(task),
            opts,
            init,
        })
    }

    /// Drops the current connection without a close frame and connects again with the same
    /// envoy key, keeping everything a real host keeps across reconnects: the commands seen
    /// (so replays are recorded as duplicates), event indexes, running actors. Un-acknowledged
    /// events are re-sent right after `ToRivetMetadata`; requests in flight fail with
    /// [`HostError::Closed`].
    pub async fn reconnect(&mut self) -> Result<(), HostError> {
        if let Some(task) = self.task.take() {
            task.abort();
            // Wait for the abort so the old socket is really gone before the new one opens.
            let _ = task.await;
            // An aborted task never reaches its own `finish`; fail waiters now, so that nothing
            // hangs if the new connection cannot be opened.
            self.shared.finish((ABNORMAL_CLOSE, String::new()));
        }
        let (ws, init, early) = open(&self.opts, self.shared.version).await?;
        let (out, out_rx) = mpsc::unbounded_channel();
        {
            let mut st = self.shared.lock();
            st.out = out;
            st.ended = None;
            st.pending.clear();
            self.shared.enqueue(&st, &metadata(&self.opts), None)?;
            let resend: Vec<EventWrapper> = st.unacked.values().flatten().cloned().collect();
            if !resend.is_empty() {
                tracing::debug!(count = resend.len(), "re-sending unacknowledged events");
                self.shared.enqueue(&st, &ToRivet::Events(resend), None)?;
            }
        }
        self.shared.notify();
        self.init = init;
        self.task = Some(tokio::spawn(run(ws, self.shared.clone(), out_rx, early)));
        Ok(())
    }

    /// The `envoy_key` this host connected with.
    pub fn envoy_key(&self) -> &str {
        &self.opts.envoy_key
    }

    /// The protocol version of the socket.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.shared.version
    }

    /// The engine's `ToEnvoyInit` metadata (thresholds, payload limit).
    pub fn init(&self) -> &ProtocolMetadata {
        &self.init
    }

    /// The next command received, in arrival order, including those the [`Behaviour`] already
    /// answered; replayed duplicates are not returned (see [`TestHost::duplicate_commands`]).
    /// `None` when none arrives within `timeout` or the connection is over.
    pub async fn next_command(&self, timeout: Duration) -> Option<CommandWrapper> {
        self.shared
            .wait_until(timeout, |st| st.commands.pop_front())
            .await
    }

    /// Every replayed command whose (actor, generation, index) had already been received.
    pub fn duplicate_commands(&self) -> Vec<CommandWrapper> {
        self.shared.lock().duplicates.clone()
    }

    /// Waits until this host has reported `actor_id` running; returns its generation.
    pub async fn wait_running(&self, actor_id: &str, timeout: Duration) -> Option<u32> {
        self.shared
            .wait_until(timeout, |st| st.running.get(actor_id).copied())
            .await
    }

    /// Actors this host reported running and has not reported stopped: (actor id, generation).
    pub fn actors(&self) -> Vec<(String, u32)> {
        let st = self.shared.lock();
        st.running.iter().map(|(a, g)| (a.clone(), *g)).collect()
    }

    /// Highest event index the engine acknowledged, per (actor id, generation).
    pub fn acked_events(&self) -> HashMap<(String, u32), i64> {
        self.shared.lock().acked_events.clone()
    }

    /// Waits until the engine has acknowledged event `index` (or a later one) of
    /// (`actor_id`, `generation`).
    pub async fn wait_acked_event(
        &self,
        actor_id: &str,
        generation: u32,
        index: i64,
        timeout: Duration,
    ) -> bool {
        let key = (actor_id.to_string(), generation);
        self.shared
            .wait_until(timeout, |st| {
                st.acked_events
                    .get(&key)
                    .filter(|acked| **acked >= index)
                    .map(|_| ())
            })
            .await
            .is_some()
    }

    /// Number of `ToEnvoyPing`s received so far.
    pub fn pings_received(&self) -> u64 {
        self.shared.lock().pings
    }

    /// The next gateway tunnel message received (the host does not answer them on its own).
    pub async fn next_tunnel_message(&self, timeout: Duration) -> Option<ToEnvoyTunnelMessage> {
        self.shared
            .wait_until(timeout, |st| st.tunnel.pop_front())
            .await
    }

    /// Sends one event for (`actor_id`, `generation`) with the next index of that pair
    /// (0, 1, 2 …); returns the index used once the frame is on the socket.
    pub async fn send_event(
        &self,
        actor_id: &str,
        generation: u32,
        event: Event,
    ) -> Result<i64, HostError> {
        self.send_events(actor_id, generation, vec![event]).await
    }

    /// Sends several events for one (actor, generation) in one frame with consecutive indexes;
    /// returns the last index used (with no events: the last index already used, nothing sent).
    pub async fn send_events(
        &self,
        actor_id: &str,
        generation: u32,
        events: Vec<Event>,
    ) -> Result<i64, HostError> {
        let (written, last) = {
            let mut st = self.shared.lock();
            let (tx, rx) = oneshot::channel();
            let last =
                self.shared
                    .send_events_locked(&mut st, actor_id, generation, events, Some(tx))?;
            (rx, last)
        };
        wait_written(written).await?;
        Ok(last)
    }

    /// Reports the actor running (`ActorStateUpdate{Running}`).
    pub async fn running(&self, actor_id: &str, generation: u32) -> Result<i64, HostError> {
        let event = Event::StateUpdate(EventActorStateUpdate {
            state: ActorState::Running,
        });
        self.send_event(actor_id, generation, event).await
    }

    /// Reports the actor stopped (`ActorStateUpdate{Stopped{code, message}}`).
    pub async fn stopped(
        &self,
        actor_id: &str,
        generation: u32,
        code: StopCode,
        message: Option<String>,
    ) -> Result<i64, HostError> {
        let event = Event::StateUpdate(EventActorStateUpdate {
            state: ActorState::Stopped(ActorStateStopped { code, message }),
        });
        self.send_event(actor_id, generation, event).await
    }

    /// Sets (`Some(ms)`) or clears (`None`) the actor's alarm.
    pub async fn set_alarm(
        &self,
        actor_id: &str,
        generation: u32,
        alarm_ts: Option<i64>,
    ) -> Result<i64, HostError> {
        let event = Event::SetAlarm(EventActorSetAlarm { alarm_ts });
        self.send_event(actor_id, generation, event).await
    }

    /// Asks the engine to put the actor to sleep (`ActorIntent{Sleep}`).
    pub async fn sleep_intent(&self, actor_id: &str, generation: u32) -> Result<i64, HostError> {
        let event = Event::Intent(EventActorIntent {
            intent: ActorIntent::Sleep,
        });
        self.send_event(actor_id, generation, event).await
    }

    /// Asks the engine to stop (destroy) the actor (`ActorIntent{Stop}`).
    pub async fn stop_intent(&self, actor_id: &str, generation: u32) -> Result<i64, HostError> {
        let event = Event::Intent(EventActorIntent {
            intent: ActorIntent::Stop,
        });
        self.send_event(actor_id, generation, event).await
    }

    /// Acknowledges commands up to each checkpoint (for hosts built with `ack_commands: false`).
    pub async fn ack_commands(&self, checkpoints: Vec<ActorCheckpoint>) -> Result<(), HostError> {
        self.send_raw(ToRivet::AckCommands(ToRivetAckCommands {
            last_command_checkpoints: checkpoints,
        }))
        .await
    }

    /// Tells the engine the host is draining (`ToRivetStopping`); the socket stays open.
    pub async fn stopping(&self) -> Result<(), HostError> {
        self.send_raw(ToRivet::Stopping).await
    }

    /// Sends any message as is. Events sent this way do not advance the host's event indexes
    /// nor its record of running actors.
    pub async fn send_raw(&self, msg: ToRivet) -> Result<(), HostError> {
        let bytes = encode(self.shared.version, &msg)?;
        self.send_bytes(bytes).await
    }

    /// Sends one binary frame with arbitrary bytes (for malformed-message tests).
    pub async fn send_bytes(&self, bytes: Vec<u8>) -> Result<(), HostError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .lock()
            .out
            .send(Outgoing::Frame {
                bytes,
                written: Some(tx),
            })
            .map_err(|_| HostError::Closed)?;
        wait_written(rx).await
    }

    /// One KV request for `actor_id`; `KvErrorResponse` is a successful answer here.
    pub async fn kv(
        &self,
        actor_id: &str,
        data: KvRequestData,
    ) -> Result<KvResponseData, HostError> {
        let actor_id = actor_id.to_string();
        let answer = self
            .shared
            .request(|request_id| {
                ToRivet::KvRequest(ToRivetKvRequest {
                    actor_id,
                    request_id,
                    data,
                })
            })
            .await?;
        match answer {
            ToEnvoy::KvResponse(r) => Ok(r.data),
            other => Err(HostError::UnexpectedResponse(kind(&other))),
        }
    }

    /// Reads SQLite pages.
    pub async fn sqlite_get_pages(
        &self,
        data: SqliteGetPagesRequest,
    ) -> Result<SqliteGetPagesResponse, HostError> {
        let answer = self
            .shared
            .request(|request_id| {
                ToRivet::SqliteGetPagesRequest(RequestEnvelope { request_id, data })
            })
            .await?;
        match answer {
            ToEnvoy::SqliteGetPagesResponse(r) => Ok(r.data),
            other => Err(HostError::UnexpectedResponse(kind(&other))),
        }
    }

    /// Commits SQLite pages in one request.
    pub async fn sqlite_commit(
        &self,
        data: SqliteCommitRequest,
    ) -> Result<SqliteCommitResponse, HostError> {
        let answer = self
            .shared
            .request(|request_id| {
                ToRivet::SqliteCommitRequest(RequestEnvelope { request_id, data })
            })
            .await?;
        match answer {
            ToEnvoy::SqliteCommitResponse(r) => Ok(r.data),
            other => Err(HostError::UnexpectedResponse(kind(&other))),
        }
    }

    /// Starts a staged commit (v8 only; on a v6 socket this fails to encode).
    pub async fn sqlite_stage_begin(
        &self,
        data: SqliteCommitStageBeginRequest,
    ) -> Result<SqliteCommitStageBeginResponse, HostError> {
        let answer = self
            .shared
            .request(|request_id| {
                ToRivet::SqliteCommitStageBeginRequest(RequestEnvelope { request_id, data })
            })
            .await?;
        match answer {
            ToEnvoy::SqliteCommitStageBeginResponse(r) => Ok(r.data),
            other => Err(HostError::UnexpectedResponse(kind(&other))),
        }
    }

    /// Stages one segment of a staged commit (v8 only).
    pub async fn sqlite_stage_segment(
        &self,
        data: SqliteCommitStageSegmentRequest,
    ) -> Result<SqliteCommitStageSegmentResponse, HostError> {
        let answer = self
            .shared
            .request(|request_id| {
                ToRivet::SqliteCommitStageSegmentRequest(RequestEnvelope { request_id, data })
            })
            .await?;
        match answer {
            ToEnvoy::SqliteCommitStageSegmentResponse(r) => Ok(r.data),
            other => Err(HostError::UnexpectedResponse(kind(&other))),
        }
    }

    /// Finalizes a staged commit (v8 only).
    pub async fn sqlite_commit_finalize(
        &self,
        data: SqliteCommitFinalizeRequest,
    ) -> Result<SqliteCommitFinalizeResponse, HostError> {
        let answer = self
            .shared
            .request(|request_id| {
                ToRivet::SqliteCommitFinalizeRequest(RequestEnvelope { request_id, data })
            })
            .await?;
        match answer {
            ToEnvoy::SqliteCommitFinalizeResponse(r) => Ok(r.data),
            other => Err(HostError::UnexpectedResponse(kind(&other))),
        }
    }

    /// The close code and reason once the connection is over: the engine's close frame, or
    /// ([`ABNORMAL_CLOSE`], "") when the connection ended without one. `None` if the socket is
    /// still open after `timeout`.
    pub async fn closed(&self, timeout: Duration) -> Option<(u16, String)> {
        self.shared.wait_until(timeout, |st| st.ended.clone()).await
    }

    /// Closes the socket cleanly (code 1000) and waits (at most 5 s) for the engine's answer.
    pub async fn close(mut self) {
        let _ = self.shared.lock().out.send(Outgoing::Close {
            code: 1000,
            reason: String::new(),
        });
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                tracing::warn!(envoy_key = %self.opts.envoy_key, "engine did not finish the close handshake");
                task.abort();
            }
        }
    }

    /// Drops the TCP connection without a close frame, like a crashed host process.
    pub fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("envoy_key", &self.opts.envoy_key)
            .field("protocol_version", &self.shared.version)
            .finish_non_exhaustive()
    }
}

async fn wait_written(rx: oneshot::Receiver<bool>) -> Result<(), HostError> {
    match rx.await {
        Ok(true) => Ok(()),
        _ => Err(HostError::Closed),
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Polls `check` on every state change until it yields, the connection ends or `timeout`.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        // Subscribing before the first check means no change between check and wait is missed.
        let mut rx = self.changed.subscribe();
        loop {
            {
                let mut st = self.lock();
                if let Some(found) = check(&mut st) {
                    return Some(found);
                }
                if st.ended.is_some() {
                    return None;
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// Queues a frame on the current connection; holding the lock keeps frames in order.
    fn enqueue(
        &self,
        st: &State,
        msg: &ToRivet,
        written: Option<oneshot::Sender<bool>>,
    ) -> Result<(), HostError> {
        let bytes = encode(self.version, msg)?;
        st.out
            .send(Outgoing::Frame { bytes, written })
            .map_err(|_| HostError::Closed)
    }

    /// Assigns indexes, updates the running set and queues the frame, all under one lock so
    /// that index order is frame order.
    fn send_events_locked(
        &self,
        st: &mut State,
        actor_id: &str,
        generation: u32,
        events: Vec<Event>,
        written: Option<oneshot::Sender<bool>>,
    ) -> Result<i64, HostError> {
        let key = (actor_id.to_string(), generation);
        let first = st.next_event_index.get(&key).copied().unwrap_or(0);
        if events.is_empty() {
            if let Some(written) = written {
                let _ = written.send(true);
            }
            return Ok(first - 1);
        }
        let mut index = first;
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
        let last = index - 1;
        let states: Vec<bool> = wrapped
            .iter()
            .filter_map(|e| match &e.inner {
                Event::StateUpdate(EventActorStateUpdate { state }) => {
                    Some(matches!(state, ActorState::Running))
                }
                _ => None,
            })
            .collect();
        self.enqueue(st, &ToRivet::Events(wrapped.clone()), written)?;
        st.unacked.entry(key.clone()).or_default().extend(wrapped);
        st.next_event_index.insert(key, index);
        for running in states {
            if running {
                st.running.insert(actor_id.to_string(), generation);
            } else if st.running.get(actor_id) == Some(&generation) {
                st.running.remove(actor_id);
            }
        }
        self.notify();
        Ok(last)
    }

    async fn request(&self, build: impl FnOnce(u32) -> ToRivet) -> Result<ToEnvoy, HostError> {
        let (tx, rx) = oneshot::channel();
        let request_id = {
            let mut st = self.lock();
            if st.ended.is_some() {
                return Err(HostError::Closed);
            }
            let request_id = st.next_request_id;
            st.next_request_id = request_id.wrapping_add(1);
            self.enqueue(&st, &build(request_id), None)?;
            st.pending.insert(request_id, tx);
            request_id
        };
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(HostError::Closed),
            Err(_) => {
                self.lock().pending.remove(&request_id);
                Err(HostError::Timeout("response to a request"))
            }
        }
    }
}

impl State {
    fn new(out: mpsc::UnboundedSender<Outgoing>) -> Self {
        Self {
            out,
            commands: VecDeque::new(),
            seen_commands: HashSet::new(),
            duplicates: Vec::new(),
            running: BTreeMap::new(),
            next_event_index: HashMap::new(),
            acked_events: HashMap::new(),
            unacked: BTreeMap::new(),
            pending: HashMap::new(),
            next_request_id: 0,
            tunnel: VecDeque::new(),
            pings: 0,
            ended: None,
        }
    }
}

impl Shared {
    /// Applies one engine message to the state (and the [`Behaviour`]).
    fn handle(&self, msg: ToEnvoy) {
        let mut st = self.lock();
        if let Some(request_id) = response_id(&msg) {
            match st.pending.remove(&request_id) {
                // The caller may have timed out and gone; nothing to do then.
                Some(waiter) => drop(waiter.send(msg)),
                None => tracing::warn!(
                    request_id,
                    kind = kind(&msg),
                    "response to no pending request"
                ),
            }
        } else {
            match msg {
                ToEnvoy::Init(_) => tracing::warn!("second ToEnvoyInit on one connection"),
                ToEnvoy::Commands(commands) => self.on_commands(&mut st, commands),
                ToEnvoy::AckEvents(ack) => {
                    for cp in ack.last_event_checkpoints {
                        let key = (cp.actor_id, cp.generation);
                        if let Some(kept) = st.unacked.get_mut(&key) {
                            kept.retain(|e| e.checkpoint.index > cp.index);
                        }
                        let acked = st.acked_events.entry(key).or_insert(cp.index);
                        *acked = (*acked).max(cp.index);
                    }
                }
                ToEnvoy::Ping(ping) => {
                    st.pings += 1;
                    if self.behaviour.answer_pings {
                        let pong = ToRivet::Pong(ToRivetPong { ts: ping.ts });
                        if let Err(e) = self.enqueue(&st, &pong, None) {
                            tracing::debug!(error = %e, "pong not sent");
                        }
                    }
                }
                ToEnvoy::TunnelMessage(m) => st.tunnel.push_back(m),
                other => tracing::warn!(kind = kind(&other), "unexpected message"),
            }
        }
        drop(st);
        self.notify();
    }

    fn on_commands(&self, st: &mut State, commands: Vec<CommandWrapper>) {
        // Highest index per (actor, generation) in this batch, duplicates included, so that a
        // replay is acknowledged again and the engine can forget it.
        let mut acks: IndexMap<(String, u32), i64> = IndexMap::new();
        let mut reactions: Vec<(String, u32, Event)> = Vec::new();
        for cmd in commands {
            let cp = &cmd.checkpoint;
            let key = (cp.actor_id.clone(), cp.generation);
            let acked = acks.entry(key).or_insert(cp.index);
            *acked = (*acked).max(cp.index);
            if !st
                .seen_commands
                .insert((cp.actor_id.clone(), cp.generation, cp.index))
            {
                tracing::debug!(actor_id = %cp.actor_id, generation = cp.generation, index = cp.index, "replayed command");
                st.duplicates.push(cmd);
                continue;
            }
            tracing::debug!(actor_id = %cp.actor_id, generation = cp.generation, index = cp.index, command = ?cmd.inner, "command");
            match &cmd.inner {
                Command::StartActor(_) if self.behaviour.auto_running => reactions.push((
                    cp.actor_id.clone(),
                    cp.generation,
                    Event::StateUpdate(EventActorStateUpdate {
                        state: ActorState::Running,
                    }),
                )),
                Command::StopActor(stop) if self.behaviour.auto_stop => {
                    if stop.reason == StopActorReason::Lost {
                        // The engine already gave the actor up; a report would be dropped.
                        if st.running.get(&cp.actor_id) == Some(&cp.generation) {
                            st.running.remove(&cp.actor_id);
                        }
                    } else {
                        reactions.push((
                            cp.actor_id.clone(),
                            cp.generation,
                            Event::StateUpdate(EventActorStateUpdate {
                                state: ActorState::Stopped(ActorStateStopped {
                                    code: StopCode::Ok,
                                    message: None,
                                }),
                            }),
                        ));
                    }
                }
                _ => {}
            }
            st.commands.push_back(cmd);
        }
        if self.behaviour.ack_commands && !acks.is_empty() {
            let ack = ToRivet::AckCommands(ToRivetAckCommands {
                last_command_checkpoints: acks
                    .into_iter()
                    .map(|((actor_id, generation), index)| ActorCheckpoint {
                        actor_id,
                        generation,
                        index,
                    })
                    .collect(),
            });
            if let Err(e) = self.enqueue(st, &ack, None) {
                tracing::debug!(error = %e, "command ack not sent");
            }
        }
        for (actor_id, generation, event) in reactions {
            if let Err(e) = self.send_events_locked(st, &actor_id, generation, vec![event], None) {
                tracing::debug!(error = %e, %actor_id, "automatic event not sent");
            }
        }
    }

    /// Marks the connection over and fails every request still waiting.
    fn finish(&self, close: (u16, String)) {
        {
            let mut st = self.lock();
            tracing::debug!(code = close.0, reason = %close.1, "test host connection ended");
            st.ended = Some(close);
            st.pending.clear();
        }
        self.notify();
    }
}

/// Owns one connection's socket until it ends.
async fn run(
    mut ws: Socket,
    shared: Arc<Shared>,
    mut out: mpsc::UnboundedReceiver<Outgoing>,
    early: Vec<ToEnvoy>,
) {
    for msg in early {
        shared.handle(msg);
    }
    let mut close: Option<(u16, String)> = None;
    let mut closing = false;
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Binary(bytes))) => match decode::<ToEnvoy>(shared.version, &bytes) {
                    Ok(msg) => shared.handle(msg),
                    Err(e) => tracing::warn!(error = %e, len = bytes.len(), "undecodable frame from the engine"),
                },
                Some(Ok(Message::Close(frame))) => {
                    // Keep reading: tungstenite answers the close and the stream then ends.
                    close.get_or_insert_with(|| match frame {
                        Some(f) => (u16::from(f.code), f.reason.to_string()),
                        None => (1005, String::new()),
                    });
                }
                Some(Ok(Message::Text(text))) => tracing::warn!(len = text.len(), "unexpected text frame"),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "socket error");
                    break;
                }
                None => break,
            },
            next = out.recv(), if !closing => match next {
                Some(Outgoing::Frame { bytes, written }) => {
                    let ok = ws.send(Message::Binary(bytes.into())).await.is_ok();
                    if let Some(written) = written {
                        let _ = written.send(ok);
                    }
                }
                Some(Outgoing::Close { code, reason }) => {
                    closing = true;
                    let frame = CloseFrame { code: code.into(), reason: reason.into() };
                    if let Err(e) = ws.close(Some(frame)).await {
                        tracing::debug!(error = %e, "close frame not sent");
                        break;
                    }
                }
                None => break,
            },
        }
    }
    shared.finish(close.unwrap_or((ABNORMAL_CLOSE, String::new())));
}

/// TCP connect, upgrade, and read up to `ToEnvoyInit`; returns anything that came before it.
async fn open(
    opts: &HostOptions,
    version: ProtocolVersion,
) -> Result<(Socket, ProtocolMetadata, Vec<ToEnvoy>), HostError> {
    let authority = authority(&opts.endpoint)?;
    let url = format!(
        "ws://{authority}/envoys/connect?protocol_version={}&namespace={}&envoy_key={}&version={}&pool_name={}",
        version.number(),
        query_escape(&opts.namespace),
        query_escape(&opts.envoy_key),
        opts.version,
        query_escape(&opts.pool),
    );
    let handshake = async {
        let stream = TcpStream::connect(authority).await?;
        // Commands and responses are small frames; Nagle would delay each by up to 40 ms.
        stream.set_nodelay(true)?;
        let mut request = url.as_str().into_client_request()?;
        let protocols = match &opts.token {
            Some(token) => format!("rivet, rivet_token.{token}"),
            None => "rivet".to_string(),
        };
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&protocols)
                .map_err(|e| HostError::InvalidHeader(e.to_string()))?,
        );
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_SIZE))
            .max_frame_size(Some(MAX_MESSAGE_SIZE));
        let (mut ws, _response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        let (init, early) = wait_init(&mut ws, version).await?;
        Ok::<_, HostError>((ws, init, early))
    };
    tokio::time::timeout(opts.connect_timeout, handshake)
        .await
        .map_err(|_| HostError::Timeout("connect and ToEnvoyInit"))?
}

async fn wait_init(
    ws: &mut Socket,
    version: ProtocolVersion,
) -> Result<(ProtocolMetadata, Vec<ToEnvoy>), HostError> {
    let mut early = Vec::new();
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => match decode::<ToEnvoy>(version, &bytes)? {
                ToEnvoy::Init(init) => return Ok((init.metadata, early)),
                // The engine sends Init first; anything else is handled once the task runs.
                other => {
                    tracing::warn!(kind = kind(&other), "message before ToEnvoyInit");
                    early.push(other);
                }
            },
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = match frame {
                    Some(f) => (u16::from(f.code), f.reason.to_string()),
                    None => (1005, String::new()),
                };
                return Err(HostError::Refused { code, reason });
            }
            Some(Ok(Message::Text(_))) => {
                return Err(HostError::UnexpectedFirstMessage("text frame"))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => {
                return Err(HostError::Refused {
                    code: ABNORMAL_CLOSE,
                    reason: String::new(),
                })
            }
        }
    }
}

fn metadata(opts: &HostOptions) -> ToRivet {
    let names: IndexMap<String, ActorName> = opts
        .actor_names
        .iter()
        .map(|name| {
            let metadata = ActorName {
                metadata: "{}".into(),
            };
            (name.clone(), metadata)
        })
        .collect();
    ToRivet::Metadata(ToRivetMetadata {
        prepopulate_actor_names: Some(names),
        metadata: Some(HOST_METADATA.into()),
    })
}

/// `host:port` of an `http://` or `ws://` endpoint (path and trailing slash ignored).
fn authority(endpoint: &str) -> Result<&str, HostError> {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("ws://"))
        .ok_or_else(|| HostError::InvalidEndpoint(endpoint.to_string()))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(HostError::InvalidEndpoint(endpoint.to_string()));
    }
    Ok(authority)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn query_escape(value: &str) -> String {
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

/// Request id of a response message, `None` for everything else.
fn response_id(msg: &ToEnvoy) -> Option<u32> {
    Some(match msg {
        ToEnvoy::KvResponse(r) => r.request_id,
        ToEnvoy::SqliteGetPagesResponse(r) => r.request_id,
        ToEnvoy::SqliteCommitResponse(r) => r.request_id,
        ToEnvoy::SqliteCommitStageBeginResponse(r) => r.request_id,
        ToEnvoy::SqliteCommitStageSegmentResponse(r) => r.request_id,
        ToEnvoy::SqliteCommitFinalizeResponse(r) => r.request_id,
        ToEnvoy::SqliteExecResponse(r) => r.request_id,
        ToEnvoy::SqliteExecuteResponse(r) => r.request_id,
        ToEnvoy::SqliteExecuteBatchResponse(r) => r.request_id,
        _ => return None,
    })
}

/// Variant name for logs and errors.
fn kind(msg: &ToEnvoy) -> &'static str {
    match msg {
        ToEnvoy::Init(_) => "Init",
        ToEnvoy::Commands(_) => "Commands",
        ToEnvoy::AckEvents(_) => "AckEvents",
        ToEnvoy::KvResponse(_) => "KvResponse",
        ToEnvoy::TunnelMessage(_) => "TunnelMessage",
        ToEnvoy::Ping(_) => "Ping",
        ToEnvoy::SqliteGetPagesResponse(_) => "SqliteGetPagesResponse",
        ToEnvoy::SqliteCommitResponse(_) => "SqliteCommitResponse",
        ToEnvoy::SqliteCommitStageBeginResponse(_) => "SqliteCommitStageBeginResponse",
        ToEnvoy::SqliteCommitStageSegmentResponse(_) => "SqliteCommitStageSegmentResponse",
        ToEnvoy::SqliteCommitFinalizeResponse(_) => "SqliteCommitFinalizeResponse",
        ToEnvoy::SqliteExecResponse(_) => "SqliteExecResponse",
        ToEnvoy::SqliteExecuteResponse(_) => "SqliteExecuteResponse",
        ToEnvoy::SqliteExecuteBatchResponse(_) => "SqliteExecuteBatchResponse",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_accepts_http_and_ws_only() {
        assert_eq!(
            authority("http://127.0.0.1:6420").ok(),
            Some("127.0.0.1:6420")
        );
        assert_eq!(
            authority("ws://127.0.0.1:6420/").ok(),
            Some("127.0.0.1:6420")
        );
        assert!(authority("https://example.com").is_err());
        assert!(authority("http://").is_err());
    }

    #[test]
    fn query_escape_keeps_unreserved() {
        assert_eq!(query_escape("pool-1_a.b~"), "pool-1_a.b~");
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
    }

    #[test]
    fn default_envoy_keys_are_unique_and_valid() {
        let a = HostOptions::new("http://x:1", "p").envoy_key;
        let b = HostOptions::new("http://x:1", "p").envoy_key;
        assert_ne!(a, b);
        for key in [a, b] {
            assert!((3..=128).contains(&key.len()));
            assert!(key
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        }
    }
}
