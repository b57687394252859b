//! The crate's one error type.

use tokio_tungstenite::tungstenite;

/// Everything that can go wrong while connecting or talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The endpoint is not an `http://` or `ws://` URL with a host (TLS is not supported).
    #[error("invalid endpoint {0:?}: expected http://host:port or ws://host:port")]
    InvalidEndpoint(String),
    /// A header value (the token subprotocol) cannot be sent.
    #[error("invalid header value: {0}")]
    InvalidHeader(String),
    /// The TCP connection could not be opened.
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket upgrade or a later socket operation failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// Encoding a message or decoding the engine's message failed, or the version is unsupported.
    #[error("envoy protocol: {0}")]
    Protocol(#[from] rivet_envoy_protocol::Error),
    /// The engine closed the socket before sending `ToEnvoyInit` (it refused the connection).
    #[error("engine refused the connection: close {code} {reason:?}")]
    Refused {
        /// WebSocket close code (1006 when the connection ended without a close frame).
        code: u16,
        /// Close reason, e.g. `namespace.not_found#<ray>`.
        reason: String,
    },
    /// The engine sent something other than `ToEnvoyInit` first.
    #[error("expected ToEnvoyInit first, got {0}")]
    UnexpectedFirstMessage(&'static str),
    /// A deadline passed (connect, handshake, or waiting for a response).
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The socket is closed, so the message could not be sent or its answer will never come.
    #[error("the host's socket is closed")]
    Closed,
    /// The engine answered a request id with a message of the wrong kind.
    #[error("unexpected response {0} for a request")]
    UnexpectedResponse(&'static str),
}
