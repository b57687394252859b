//! The client's error type.

use std::time::Duration;

use rivet_client_protocol::{ActorSpecifier, Value};

/// An error reported by the engine, the gateway or the actor: the `{group, code, message,
/// metadata?, actor?}` shape of client-protocol.md §9.1. Callers branch on `group` and `code`.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteError {
    /// Error group, e.g. `actor`.
    pub group: String,
    /// Error code, e.g. `not_found`.
    pub code: String,
    /// Human-readable message (masked to "An internal error occurred" for non-public errors).
    pub message: String,
    /// Metadata, when the error is public and has some.
    pub metadata: Option<Value>,
    /// The actor that produced the error (actor-produced errors only).
    pub actor: Option<ActorSpecifier>,
    /// The HTTP status it arrived with; `None` for errors the client derives itself (e.g. a
    /// `get` that finds no actor).
    pub status: Option<u16>,
}

impl RemoteError {
    /// Whether this is `group.code`.
    pub fn is(&self, group: &str, code: &str) -> bool {
        self.group == group && self.code == code
    }
}

/// Why a client operation failed. Cloneable so that one connection failure can be reported
/// to every call that was waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The engine, gateway or actor answered with an error body.
    #[error("{}.{}: {}", .0.group, .0.code, .0.message)]
    Remote(Box<RemoteError>),
    /// The endpoint is not a usable `http://` URL.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Connecting or talking to the endpoint failed.
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The request URL.
        url: String,
        /// The underlying failure.
        reason: String,
    },
    /// No complete response in time.
    #[error("request to {url} timed out after {timeout:?}")]
    Timeout {
        /// The request URL.
        url: String,
        /// The configured request timeout.
        timeout: Duration,
    },
    /// A response that is neither a success nor a decodable error body.
    #[error("HTTP {status} from {url}: {body}")]
    Http {
        /// The request URL.
        url: String,
        /// Status code.
        status: u16,
        /// The body, lossily as text (truncated).
        body: String,
    },
    /// The caller asked for something that cannot be sent (e.g. an invalid HTTP method).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// Arguments or input could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The codec's reason.
        source: rivet_client_protocol::Error,
    },
    /// A realtime connection (or raw WebSocket) closed before the operation completed, or
    /// was closed by this client. Closes that carry a `group.code` reason are reported as
    /// [`ClientError::Remote`] instead.
    #[error("connection closed: {reason}")]
    ConnectionClosed {
        /// The WebSocket close code, when a close frame arrived.
        code: Option<u16>,
        /// What happened, with the close reason when there was one.
        reason: String,
    },
    /// A success response could not be decoded into the expected type.
    #[error("cannot decode the response from {url}: {reason}")]
    Decode {
        /// The request URL.
        url: String,
        /// Why decoding failed.
        reason: String,
    },
}

impl ClientError {
    /// The remote error, when this is one.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            ClientError::Remote(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The remote error's group, when this is one.
    pub fn group(&self) -> Option<&str> {
        self.remote().map(|e| e.group.as_str())
    }

    /// The remote error's code, when this is one.
    pub fn code(&self) -> Option<&str> {
        self.remote().map(|e| e.code.as_str())
    }

    /// Whether this is the remote error `group.code`.
    pub fn is(&self, group: &str, code: &str) -> bool {
        self.remote().is_some_and(|e| e.is(group, code))
    }
}
