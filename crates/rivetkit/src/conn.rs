//! Connections: a client's realtime socket (`/connect`) or the transient connection of one
//! HTTP action.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use rivet_client_protocol::{Encoding, Event, Message, ToClient};
use rivet_envoy_protocol::{ToRivetTunnelMessageKind, ToRivetWebSocketMessage};
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::ctx::Core;
use crate::host::TunnelKey;
use crate::Value;

/// A connection's id (a UUID, sent to the client in `Init`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) Arc<str>);

impl ConnId {
    pub(crate) fn random() -> ConnId {
        let b: [u8; 16] = rand::random();
        let s = format!(
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:01x}{:01x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6] & 0x0f, b[7], 8 | (b[8] & 0x03), b[8] >> 4, b[9],
            b[10], b[11], b[12], b[13], b[14], b[15]
        );
        ConnId(s.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client socket behind a realtime connection.
pub(crate) struct ConnSocket {
    pub key: TunnelKey,
    pub encoding: Encoding,
    pub subscriptions: HashSet<String>,
    pub next_index: AtomicU16,
    /// Survives the actor's sleep: saved in KV, restored on wake, messages acknowledged.
    pub hibernatable: bool,
    /// The connection parameters as the client sent them (JSON text), saved with it.
    pub params_json: Option<String>,
    /// The gateway index of the last client message handled, to skip re-deliveries.
    pub last_message: Option<u16>,
    /// Hash of the record as last saved (hibernatable connections), to save only changes.
    pub saved: Option<u64>,
}

impl ConnSocket {
    /// Whether `index` was handled already. Indexes wrap at 65,536; anything up to half the
    /// range behind the last one counts as seen.
    pub fn seen(&self, index: u16) -> bool {
        self.last_message
            .is_some_and(|last| last.wrapping_sub(index) < u16::MAX / 2)
    }
}

/// A hibernatable connection as saved in the actor's KV (CBOR).
#[derive(Serialize, Deserialize)]
pub(crate) struct ConnRecord {
    pub id: String,
    pub params: Option<String>,
    pub state: ciborium::Value,
    pub subscriptions: Vec<String>,
    pub encoding: String,
}

/// KV key of a saved connection: the prefix, then gateway id and request id.
pub(crate) fn record_key(key: &TunnelKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(crate::kv::CONN_PREFIX);
    k.extend_from_slice(&key.0);
    k.extend_from_slice(&key.1);
    k
}

/// The socket of a saved connection's KV key.
pub(crate) fn record_tunnel(key: &[u8]) -> Option<TunnelKey> {
    let rest = key.strip_prefix(&[crate::kv::CONN_PREFIX])?;
    let gateway: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    let request: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
    (rest.len() == 8).then_some((gateway, request))
}

impl<A: Actor> Conn<A> {
    /// The CBOR record of a hibernatable connection.
    pub(crate) fn record(&self) -> Option<Result<Vec<u8>, crate::Error>> {
        let socket = self.socket.as_ref().filter(|s| s.hibernatable)?;
        let encode = || -> Result<Vec<u8>, crate::Error> {
            let state = ciborium::Value::serialized(&self.state).map_err(|e| {
                crate::Error::internal(format!("connection state not serializable: {e}"))
            })?;
            let mut subscriptions: Vec<String> = socket.subscriptions.iter().cloned().collect();
            subscriptions.sort();
            let record = ConnRecord {
                id: self.id.to_string(),
                params: socket.params_json.clone(),
                state,
                subscriptions,
                encoding: socket.encoding.as_str().to_string(),
            };
            let mut out = Vec::new();
            ciborium::into_writer(&record, &mut out).map_err(|e| {
                crate::Error::internal(format!("connection record not serializable: {e}"))
            })?;
            Ok(out)
        };
        Some(encode())
    }
}

impl ConnSocket {
    /// Queues a client-protocol message to this socket (through the output gate).
    pub fn push(&self, core: &Core, msg: &ToClient) {
        self.push_frame(core, encode_frame(msg, self.encoding));
    }

    /// Queues an encoded frame to this socket (through the output gate).
    pub fn push_frame(&self, core: &Core, frame: ToRivetWebSocketMessage) {
        core.push_ws(
            self.key,
            self.next_index.fetch_add(1, Ordering::Relaxed),
            frame,
        );
    }
}

/// A WebSocket frame of a client-protocol message in `encoding` (json as text).
pub(crate) fn encode_frame(msg: &ToClient, encoding: Encoding) -> ToRivetWebSocketMessage {
    ToRivetWebSocketMessage {
        data: msg.encode(encoding),
        binary: encoding.is_binary(),
    }
}

/// A connection to the actor, with its parameters and state.
pub struct Conn<A: Actor> {
    pub(crate) id: ConnId,
    pub(crate) params: A::ConnParams,
    pub(crate) state: A::ConnState,
    pub(crate) socket: Option<ConnSocket>,
    pub(crate) core: Arc<Core>,
}

impl<A: Actor> Conn<A> {
    /// The connection's id.
    pub fn id(&self) -> &ConnId {
        &self.id
    }

    /// The parameters the client connected with.
    pub fn params(&self) -> &A::ConnParams {
        &self.params
    }

    /// The connection's state.
    pub fn state(&self) -> &A::ConnState {
        &self.state
    }

    /// The connection's state, mutably.
    pub fn state_mut(&mut self) -> &mut A::ConnState {
        &mut self.state
    }

    /// Whether this is a realtime connection (an HTTP action's connection is not).
    pub fn is_realtime(&self) -> bool {
        self.socket.is_some()
    }

    /// Whether the client subscribed to `event`.
    pub fn is_subscribed(&self, event: &str) -> bool {
        self.socket
            .as_ref()
            .is_some_and(|s| s.subscriptions.contains(event))
    }

    /// Sends an event to this connection only (whether or not it subscribed, as npm does).
    /// No effect on HTTP connections. The event leaves after the current turn's state write.
    pub fn send<T: Serialize + ?Sized>(&self, event: &str, payload: &T) {
        match rivet_client_protocol::to_value(payload) {
            Ok(v) => self.send_args(event, vec![v]),
            Err(e) => tracing::error!(error = %e, event, "event payload not serializable"),
        }
    }

    /// Sends an event with several arguments.
    pub fn send_args(&self, event: &str, args: Vec<Value>) {
        if let Some(socket) = &self.socket {
            let msg = ToClient::Event(Event {
                name: event.to_string(),
                args: Value::Array(args),
            });
            socket.push(&self.core, &msg);
        }
    }

    /// Closes the connection with code 1000 and `reason`; `on_disconnect` runs after the
    /// current turn.
    pub fn disconnect(&self, reason: &str) {
        self.core
            .request_disconnect(self.id.clone(), reason.to_string());
    }
}

impl<A: Actor> fmt::Debug for Conn<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("realtime", &self.socket.is_some())
            .finish_non_exhaustive()
    }
}

/// `ToRivetTunnelMessageKind` for a socket frame.
pub(crate) fn ws_kind(frame: ToRivetWebSocketMessage) -> ToRivetTunnelMessageKind {
    ToRivetTunnelMessageKind::WebSocketMessage(frame)
}
