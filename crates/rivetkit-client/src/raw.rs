//! Raw traffic to an actor's own handlers: `onRequest` responses and `onWebSocket` sockets
//! (client-protocol.md §5.3, §7).

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::error::ClientError;
use crate::http::RawResponse;
use crate::ws::Socket;

/// How long a close waits for the peer's close frame.
pub(crate) const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The response of [`crate::ActorHandle::fetch`], as the actor's handler produced it.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers in arrival order, names lower-cased; values that are not text are
    /// left out.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Bytes,
}

impl FetchResponse {
    pub(crate) fn from_raw(raw: RawResponse) -> FetchResponse {
        let headers = raw
            .headers
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_string(), v.to_string()))
            })
            .collect();
        FetchResponse {
            status: raw.status,
            headers,
            body: raw.body,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A message on a [`RawWebSocket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebSocketMessage {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// The peer closed the socket. The gateway reports failures to reach the actor as code
    /// `1011` with reason `group.code#ray`.
    Close {
        /// Close code; `None` when the close frame had none.
        code: Option<u16>,
        /// Close reason.
        reason: String,
    },
}

/// A WebSocket to an actor's `onWebSocket` handler, from [`crate::ActorHandle::websocket`].
#[derive(Debug)]
pub struct RawWebSocket {
    socket: Socket,
    /// The close has been received (or the stream ended): nothing more to read.
    finished: bool,
}

impl RawWebSocket {
    pub(crate) fn new(socket: Socket) -> RawWebSocket {
        RawWebSocket {
            socket,
            finished: false,
        }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.send(Message::text(text.into())).await
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, data: impl Into<Vec<u8>>) -> Result<(), ClientError> {
        self.send(Message::binary(data.into())).await
    }

    async fn send(&mut self, message: Message) -> Result<(), ClientError> {
        self.socket.send(message).await.map_err(socket_error)
    }

    /// The next text, binary or close message; `Ok(None)` after the close (or when the
    /// connection ended without one). Pings are answered automatically.
    pub async fn recv(&mut self) -> Result<Option<WebSocketMessage>, ClientError> {
        if self.finished {
            return Ok(None);
        }
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return Ok(Some(WebSocketMessage::Text(text.as_str().to_string())))
                }
                Some(Ok(Message::Binary(data))) => {
                    return Ok(Some(WebSocketMessage::Binary(data.to_vec())))
                }
                Some(Ok(Message::Close(frame))) => {
                    self.finished = true;
                    let (code, reason) = match frame {
                        Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                        None => (None, String::new()),
                    };
                    return Ok(Some(WebSocketMessage::Close { code, reason }));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Err(e)) => {
                    self.finished = true;
                    return Err(socket_error(e));
                }
                None => {
                    self.finished = true;
                    return Ok(None);
                }
            }
        }
    }

    /// Closes the socket with `code` and `reason` and waits (up to 5 s) for the peer's
    /// close, discarding frames that arrive meanwhile.
    pub async fn close(mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        self.socket.close(Some(frame)).await.map_err(socket_error)?;
        let drain = async {
            while let Some(message) = self.socket.next().await {
                if message.is_err() {
                    break;
                }
            }
        };
        // A peer that never answers the close must not hold the caller forever.
        let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
        Ok(())
    }
}

fn socket_error(error: tokio_tungstenite::tungstenite::Error) -> ClientError {
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::ConnectionClosed | Error::AlreadyClosed => ClientError::ConnectionClosed {
            code: None,
            reason: "the WebSocket is closed".to_string(),
        },
        other => ClientError::ConnectionClosed {
            code: None,
            reason: format!("WebSocket failed: {other}"),
        },
    }
}
