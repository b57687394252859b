//! The imperative shell around the pure lifecycle ([`crate::lifecycle`]): every input is applied
//! inside a store transaction (load record → `step` → write record, indexes, pending commands),
//! and only after the commit are commands sent, gateway waiters answered and timers armed.
//!
//! Everything between components goes through `rivet-bus` subjects, so several engine nodes on
//! one PostgreSQL + NATS behave as one:
//! - `rivet.envoy.<ns>.<envoy_key>`: signals for the node holding that host's socket
//!   ([`HostSignal`]: commands to send, eviction of an older socket);
//! - `rivet.actor_ready`: gateway waiters' outcomes, for waiters on other nodes.

mod convert;
mod hosts;
mod storage;
mod timers;
mod transition;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rivet_bus::Bus;
use rivet_envoy_protocol::{self as proto, ProtocolVersion};
use rivet_store::{Db, Tx};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use crate::error::DataError;
use crate::id::Id;
use crate::lifecycle::{self, Timestamp, WaitOutcome};

pub use convert::{event_to_lifecycle, stop_reason_to_wire};
pub use hosts::{HostConnect, HostSession};
pub use storage::Requester;
pub use transition::CreateRequest;

/// The wall clock in ms since the epoch.
pub fn now_ms() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How the shell is set up.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// This datacenter's name.
    pub datacenter: String,
    /// This datacenter's label (ids carry it).
    pub label: u16,
    /// Lifecycle thresholds.
    pub lifecycle: lifecycle::Config,
    /// This datacenter's public URL (`x-rivet-endpoint` of serverless starts).
    pub public_url: String,
    /// The admin token, passed to serverless applications as `x-rivet-token`.
    pub admin_token: Option<String>,
}

/// A message for the node that holds a host's socket.
#[derive(Debug, Clone, PartialEq)]
pub enum HostSignal {
    /// Send these commands (v8 `ToEnvoy::Commands` bytes; the socket re-encodes for its version).
    Commands(Bytes),
    /// A newer socket took the key: the socket with this connection id must close.
    Evict(String),
    /// Gateway traffic for the host: v8 `ToEnvoy::TunnelMessage` bytes, forwarded as the
    /// socket frame itself on a v8 socket (no re-encoding on the way).
    Tunnel(Bytes),
}

const TAG_COMMANDS: u8 = 0;
const TAG_EVICT: u8 = 1;
const TAG_TUNNEL: u8 = 2;

impl HostSignal {
    fn encode(&self) -> Bytes {
        let (tag, body) = match self {
            HostSignal::Commands(bytes) => (TAG_COMMANDS, bytes.as_ref()),
            HostSignal::Evict(conn) => (TAG_EVICT, conn.as_bytes()),
            HostSignal::Tunnel(bytes) => (TAG_TUNNEL, bytes.as_ref()),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(tag);
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    /// Decodes a bus payload; `None` for anything malformed.
    pub fn decode(payload: &Bytes) -> Option<HostSignal> {
        match *payload.first()? {
            TAG_COMMANDS => Some(HostSignal::Commands(payload.slice(1..))),
            TAG_EVICT => Some(HostSignal::Evict(
                String::from_utf8(payload[1..].to_vec()).ok()?,
            )),
            TAG_TUNNEL => Some(HostSignal::Tunnel(payload.slice(1..))),
            _ => None,
        }
    }
}

/// A gateway message for a host as a bus payload: the signal tag, then the v8 frame, encoded
/// once into one buffer.
pub fn tunnel_signal(message: proto::ToEnvoyTunnelMessage) -> Result<Bytes, proto::Error> {
    envoy_signal(TAG_TUNNEL, &proto::ToEnvoy::TunnelMessage(message))
}

/// A signal carrying a v8 `ToEnvoy` frame: the tag byte, then the frame.
fn envoy_signal(tag: u8, message: &proto::ToEnvoy) -> Result<Bytes, proto::Error> {
    use proto::Message;
    let mut out = vec![tag];
    message.encode_into(ProtocolVersion::V8, &mut out)?;
    Ok(Bytes::from(out))
}

/// The bus subject a gateway instance receives its hosts' tunnel answers on: v8
/// `ToRivet::TunnelMessage` frames.
pub fn gateway_subject(gateway_id: &[u8; 4]) -> String {
    let hex: String = gateway_id.iter().map(|b| format!("{b:02x}")).collect();
    format!("rivet.gateway.{hex}")
}

/// The bus subject of a host's signals.
pub fn host_subject(ns: Id, envoy_key: &str) -> String {
    format!("rivet.envoy.{ns}.{envoy_key}")
}

const READY_SUBJECT: &str = "rivet.actor_ready";

/// How often stale hosts are looked for.
const HOST_SWEEP: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
struct ReadyNotice {
    node: String,
    actor_id: String,
    outcome: WaitOutcome,
}

/// Handle to the orchestrator of one engine node. Cheap to clone.
#[derive(Clone)]
pub struct Shell {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    bus: Bus,
    config: ShellConfig,
    node: String,
    tiebreak: AtomicU64,
    waiters: Mutex<HashMap<Id, Vec<oneshot::Sender<WaitOutcome>>>>,
    /// Earliest timer this node knows is due; the timer task sleeps until then.
    next_timer: watch::Sender<Option<Timestamp>>,
    stop: watch::Sender<bool>,
    /// Each actor's namespace (never changes), for the per-request checks of the gateway and
    /// the host storage path, which would otherwise read and decode the actor's identity.
    namespaces: Mutex<HashMap<Id, Id>>,
}

/// Most actor namespaces remembered; the map is cleared when full.
const NAMESPACE_CACHE: usize = 100_000;

impl Shell {
    /// The namespace of actor `id` (`None` if it never existed), remembered after the first
    /// read: it never changes.
    pub async fn actor_namespace(&self, tx: &Tx, id: Id) -> Result<Option<Id>, DataError> {
        if let Some(ns) = self
            .inner
            .namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(Some(*ns));
        }
        let Some(meta) = crate::actor::load_meta(tx, id).await? else {
            return Ok(None);
        };
        let ns = meta.namespace()?;
        let mut cache = self
            .inner
            .namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if cache.len() >= NAMESPACE_CACHE {
            cache.clear();
        }
        cache.insert(id, ns);
        Ok(Some(ns))
    }

    /// Starts the shell: subscribes to waiter notices and runs the timer task.
    pub async fn start(db: Db, bus: Bus, config: ShellConfig) -> Result<Shell, DataError> {
        let (next_timer, timer_rx) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let shell = Shell {
            inner: Arc::new(Inner {
                node: bus.instance_id().to_string(),
                db,
                bus,
                config,
                tiebreak: AtomicU64::new(rand::random()),
                waiters: Mutex::new(HashMap::new()),
                next_timer,
                stop,
                namespaces: Mutex::new(HashMap::new()),
            }),
        };
        let notices = shell
            .inner
            .bus
            .subscribe(READY_SUBJECT)
            .await
            .map_err(DataError::bus)?;
        tokio::spawn(shell.clone().ready_notices(notices, stop_rx.clone()));
        tokio::spawn(shell.clone().timer_task(timer_rx, stop_rx.clone()));
        tokio::spawn(shell.clone().metadata_poller(stop_rx.clone()));
        tokio::spawn(shell.clone().host_sweeper(stop_rx));
        Ok(shell)
    }

    /// Every few seconds, declares lost the hosts whose engine node died with their socket.
    async fn host_sweeper(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HOST_SWEEP) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(error) = self.sweep_stale_hosts().await {
                tracing::warn!(%error, "host sweep failed");
            }
        }
    }

    /// Stops the background tasks.
    pub fn stop(&self) {
        let _ = self.inner.stop.send(true);
    }

    /// The store.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The bus.
    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    /// The shell's settings.
    pub fn config(&self) -> &ShellConfig {
        &self.inner.config
    }

    fn next_tiebreak(&self) -> u64 {
        self.inner.tiebreak.fetch_add(1, Ordering::Relaxed)
    }

    /// Performs what a committed transition asked for.
    async fn perform(&self, after: After) {
        for (ns, host, commands) in after.commands {
            match envoy_signal(TAG_COMMANDS, &proto::ToEnvoy::Commands(commands)) {
                Ok(signal) => {
                    if let Err(error) = self
                        .inner
                        .bus
                        .publish(&host_subject(ns, &host), signal)
                        .await
                    {
                        // The command is stored; it is replayed when the host reconnects.
                        tracing::warn!(%error, envoy_key = %host, "cannot publish commands");
                    }
                }
                Err(error) => tracing::error!(%error, "cannot encode commands"),
            }
        }
        for (actor, outcome) in after.releases {
            self.release_local(actor, &outcome);
            let notice = ReadyNotice {
                node: self.inner.node.clone(),
                actor_id: actor.to_string(),
                outcome,
            };
            if let Ok(payload) = serde_json::to_vec(&notice) {
                let _ = self
                    .inner
                    .bus
                    .publish(READY_SUBJECT, Bytes::from(payload))
                    .await;
            }
        }
        for start in after.serverless {
            tokio::spawn(self.clone().serverless_start(start));
        }
        for socket in after.hibernate {
            let close = proto::ToRivet::TunnelMessage(proto::ToRivetTunnelMessage {
                message_id: proto::MessageId {
                    gateway_id: socket.gateway_id,
                    request_id: socket.request_id,
                    message_index: u16::MAX,
                },
                message_kind: proto::ToRivetTunnelMessageKind::WebSocketClose(
                    proto::ToRivetWebSocketClose {
                        code: None,
                        reason: None,
                        hibernate: true,
                    },
                ),
            });
            if let Ok(frame) = proto::encode(ProtocolVersion::V8, &close) {
                let _ = self
                    .inner
                    .bus
                    .publish(&gateway_subject(&socket.gateway_id), Bytes::from(frame))
                    .await;
            }
        }
        if let Some(due) = after.earliest_timer {
            self.inner
                .next_timer
                .send_if_modified(|current| match current {
                    Some(t) if *t <= due => false,
                    _ => {
                        *current = Some(due);
                        true
                    }
                });
        }
    }

    fn release_local(&self, actor: Id, outcome: &WaitOutcome) {
        let waiters = self
            .inner
            .waiters
            .lock()
            .map(|mut w| w.remove(&actor))
            .unwrap_or_default();
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(outcome.clone());
        }
    }

    async fn ready_notices(
        self,
        mut notices: rivet_bus::Subscription,
        mut stop: watch::Receiver<bool>,
    ) {
        use futures::StreamExt;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                message = notices.next() => {
                    let Some(message) = message else { return };
                    let Ok(notice) = serde_json::from_slice::<ReadyNotice>(message.payload()) else {
                        continue;
                    };
                    if notice.node == self.inner.node {
                        continue;
                    }
                    if let Ok(actor) = notice.actor_id.parse() {
                        self.release_local(actor, &notice.outcome);
                    }
                }
            }
        }
    }

    /// Registers a waiter for the actor's next readiness outcome. Register before stepping the
    /// input that may release it, so the answer cannot be missed.
    fn register_waiter(&self, actor: Id) -> oneshot::Receiver<WaitOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiters) = self.inner.waiters.lock() {
            let list = waiters.entry(actor).or_default();
            list.retain(|w| !w.is_closed());
            list.push(tx);
        }
        rx
    }
}

/// Work left for after a commit.
#[derive(Debug, Default)]
pub(crate) struct After {
    /// Commands per (namespace, host), in send order.
    commands: Vec<(Id, String, Vec<proto::CommandWrapper>)>,
    /// Gateway waiters to answer.
    releases: Vec<(Id, WaitOutcome)>,
    /// The earliest timer armed.
    earliest_timer: Option<Timestamp>,
    /// Serverless start requests to make.
    serverless: Vec<crate::serverless::ServerlessStart>,
    /// Hibernatable client sockets whose actor generation ended: their gateways keep them for
    /// the next start (a host may stop an actor without handing them over itself).
    hibernate: Vec<proto::HibernatingRequest>,
}

impl After {
    fn push_command(&mut self, ns: Id, host: &str, command: proto::CommandWrapper) {
        match self
            .commands
            .iter_mut()
            .find(|(n, h, _)| *n == ns && h == host)
        {
            Some((_, _, list)) => list.push(command),
            None => self.commands.push((ns, host.to_string(), vec![command])),
        }
    }

    fn arm(&mut self, due: Timestamp) {
        self.earliest_timer = Some(self.earliest_timer.map_or(due, |t| t.min(due)));
    }

    fn merge(&mut self, other: After) {
        for (ns, host, commands) in other.commands {
            for command in commands {
                self.push_command(ns, &host, command);
            }
        }
        self.releases.extend(other.releases);
        self.serverless.extend(other.serverless);
        self.hibernate.extend(other.hibernate);
        if let Some(due) = other.earliest_timer {
            self.arm(due);
        }
    }
}

/// How long a gateway request waits for a start by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
