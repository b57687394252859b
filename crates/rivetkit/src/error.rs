//! Errors of actor code and of the host.
//!
//! [`Error`] is what actions and hooks return. A [`UserError`] reaches the client as group
//! `user` with its code, message and metadata; anything else converted with `?` reaches it as
//! an internal error with a generic message, and the full error is logged on the host.

use std::fmt;

use crate::Value;

/// An application error that reaches the client unchanged: `{group: "user", code, message,
/// metadata}`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserError {
    /// Error code the client branches on (default `user_error`).
    pub code: String,
    /// Message shown to the client.
    pub message: String,
    /// Optional structured details.
    pub metadata: Option<Value>,
}

impl UserError {
    /// A user error with code `user_error`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            code: "user_error".into(),
            message: message.into(),
            metadata: None,
        }
    }

    /// A user error with a code.
    pub fn with_code(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            metadata: None,
        }
    }

    /// Adds metadata (any serializable value; ignored if it cannot be serialized).
    pub fn metadata<T: serde::Serialize>(mut self, metadata: &T) -> Self {
        self.metadata = rivet_client_protocol::to_value(metadata).ok();
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user.{}: {}", self.code, self.message)
    }
}

/// An error as a client sees it: group, code, message, metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicError {
    /// Error group.
    pub group: String,
    /// Error code.
    pub code: String,
    /// Message.
    pub message: String,
    /// Metadata.
    pub metadata: Option<Value>,
}

/// The error of actions and hooks. Build one from a [`UserError`], with [`Error::public`], or
/// from any `std::error::Error` with `?` (which becomes an internal error for the client).
pub struct Error {
    kind: Kind,
}

enum Kind {
    User(UserError),
    Public(PublicError),
    Internal(Box<dyn std::error::Error + Send + Sync + 'static>),
    Message(String),
}

impl Error {
    /// A user error (`user.<code>`).
    pub fn user(code: impl Into<String>, message: impl Into<String>) -> Self {
        UserError::with_code(code, message).into()
    }

    /// An error whose group, code and message reach the client (e.g. `actor.action_not_found`).
    pub fn public(
        group: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind: Kind::Public(PublicError {
                group: group.into(),
                code: code.into(),
                message: message.into(),
                metadata: None,
            }),
        }
    }

    /// Adds metadata to a public error (no effect on other kinds).
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        if let Kind::Public(p) = &mut self.kind {
            p.metadata = Some(metadata);
        }
        self
    }

    /// An internal error from a message (the client sees only a generic message).
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Message(message.into()),
        }
    }

    /// What the client receives: user and public errors as they are, everything else as
    /// `rivetkit.internal_error` with a generic message (§9.2 of the client protocol).
    pub fn to_public(&self) -> PublicError {
        match &self.kind {
            Kind::User(u) => PublicError {
                group: "user".into(),
                code: u.code.clone(),
                message: u.message.clone(),
                metadata: u.metadata.clone(),
            },
            Kind::Public(p) => p.clone(),
            Kind::Internal(_) | Kind::Message(_) => PublicError {
                group: "rivetkit".into(),
                code: "internal_error".into(),
                message: "An internal error occurred".into(),
                metadata: None,
            },
        }
    }

    /// Whether this error is masked for clients (logged in full on the host).
    pub fn is_internal(&self) -> bool {
        matches!(self.kind, Kind::Internal(_) | Kind::Message(_))
    }

    /// The user error, if this is one.
    pub fn as_user(&self) -> Option<&UserError> {
        match &self.kind {
            Kind::User(u) => Some(u),
            _ => None,
        }
    }
}

impl From<UserError> for Error {
    fn from(e: UserError) -> Self {
        Self {
            kind: Kind::User(e),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Self {
            kind: Kind::Internal(Box::new(e)),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::User(u) => fmt::Display::fmt(u, f),
            Kind::Public(p) => write!(f, "{}.{}: {}", p.group, p.code, p.message),
            Kind::Internal(e) => {
                write!(f, "{e}")?;
                let mut source = e.source();
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
            Kind::Message(m) => f.write_str(m),
        }
    }
}

/// Failures of the host itself (connecting, configuration).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The endpoint is not a plain `http://host:port` (or `ws://`) URL.
    #[error("invalid engine endpoint {0:?}: expected http://[namespace:token@]host:port")]
    InvalidEndpoint(String),
    /// The engine refused the host socket.
    #[error("engine refused the actor host socket: close {code} {reason}")]
    Refused {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// A WebSocket failure.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// An I/O failure.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An envoy protocol encode/decode failure.
    #[error("envoy protocol: {0}")]
    Protocol(#[from] rivet_envoy_protocol::Error),
    /// A call to the engine's REST API failed.
    #[error("engine API {what}: {detail}")]
    Api {
        /// Which call.
        what: &'static str,
        /// Status and body, or the transport error.
        detail: String,
    },
    /// A timeout.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The host connection is closed for good.
    #[error("actor host is shut down")]
    Closed,
    /// The embedded engine failed to start.
    #[error("embedded engine: {0}")]
    Embedded(String),
}

/// A storage (KV) failure seen by actor code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KvError {
    /// The engine answered with an error.
    #[error("kv: {0}")]
    Engine(String),
    /// The host connection closed before the answer (the actor is stopping).
    #[error("kv: the actor host connection is closed")]
    Closed,
    /// The value could not be (de)serialized.
    #[error("kv: {0}")]
    Codec(String),
}
