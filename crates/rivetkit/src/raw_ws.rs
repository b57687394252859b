//! Raw WebSockets to an actor (`/websocket/…`, handed to `on_websocket`).

use std::sync::Arc;

use rivet_envoy_protocol::{
    ToRivetTunnelMessageKind, ToRivetWebSocketClose, ToRivetWebSocketMessage,
};
use tokio::sync::mpsc;

use crate::host::{Host, TunnelKey};

/// A message on a raw WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
}

/// What arrives from the client.
pub(crate) enum RawIn {
    Message(WsMessage),
    Closed {
        code: Option<u16>,
        reason: Option<String>,
    },
}

/// A client's raw WebSocket. Dropping it closes the socket (1000).
pub struct WebSocket {
    pub(crate) key: TunnelKey,
    pub(crate) host: Arc<Host>,
    pub(crate) rx: mpsc::UnboundedReceiver<RawIn>,
    pub(crate) next_index: u16,
    pub(crate) closed: bool,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    /// Told when the socket is gone, so the actor stops counting it as activity.
    pub(crate) on_close: Option<Arc<crate::ctx::Core>>,
}

impl WebSocket {
    /// The request path, with the `/websocket…` prefix and query, as npm passes it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The upgrade request's headers.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The next message; `None` once the client closed the socket.
    pub async fn recv(&mut self) -> Option<WsMessage> {
        if self.closed {
            return None;
        }
        match self.rx.recv().await {
            Some(RawIn::Message(m)) => Some(m),
            Some(RawIn::Closed { code, reason }) => {
                tracing::debug!(?code, ?reason, "raw websocket closed by the client");
                self.finish(false);
                None
            }
            None => {
                self.finish(false);
                None
            }
        }
    }

    /// Sends a message (dropped if the socket is closed).
    pub fn send(&mut self, msg: WsMessage) {
        if self.closed {
            return;
        }
        let (data, binary) = match msg {
            WsMessage::Text(t) => (t.into_bytes(), false),
            WsMessage::Binary(b) => (b, true),
        };
        let index = self.bump();
        self.host.tunnel(
            self.key,
            index,
            ToRivetTunnelMessageKind::WebSocketMessage(ToRivetWebSocketMessage { data, binary }),
        );
    }

    /// Closes the socket with a code and reason.
    pub fn close(mut self, code: u16, reason: &str) {
        self.send_close(code, reason);
    }

    fn bump(&mut self) -> u16 {
        let i = self.next_index;
        self.next_index = self.next_index.wrapping_add(1);
        i
    }

    fn send_close(&mut self, code: u16, reason: &str) {
        if self.closed {
            return;
        }
        let index = self.bump();
        self.host.tunnel(
            self.key,
            index,
            ToRivetTunnelMessageKind::WebSocketClose(ToRivetWebSocketClose {
                code: Some(code),
                reason: Some(reason.to_string()),
                hibernate: false,
            }),
        );
        self.host.forget_tunnel(&self.key);
        self.finish(true);
    }

    fn finish(&mut self, _by_us: bool) {
        self.closed = true;
        if let Some(core) = self.on_close.take() {
            core.raw_closed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.key);
            core.wake.notify_one();
        }
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        self.send_close(1000, "");
    }
}
