//! The messages of client protocol version 4. Payload fields are [`Value`]s in their
//! JavaScript form; the codecs handle CBOR bytes and tagged arrays.

use crate::value::Value;

/// A WebSocket message from the client to the actor (`ToServer`).
#[derive(Debug, Clone, PartialEq)]
pub enum ToServer {
    /// Call an action.
    ActionRequest(ActionRequest),
    /// Subscribe to or unsubscribe from an event.
    SubscriptionRequest(SubscriptionRequest),
}

/// A WebSocket message from the actor to the client (`ToClient`).
#[derive(Debug, Clone, PartialEq)]
pub enum ToClient {
    /// The connection is established.
    Init(Init),
    /// An action or the connection failed.
    Error(ErrorMessage),
    /// An action's return value.
    ActionResponse(ActionResponse),
    /// A broadcast event.
    Event(Event),
}

/// `ActionRequest`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    /// Per-connection request counter.
    pub id: u64,
    /// Action name (dotted for nested groups).
    pub name: String,
    /// The argument array (any value; the server normalises non-arrays).
    pub args: Value,
}

/// `SubscriptionRequest`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRequest {
    /// The event name.
    pub event_name: String,
    /// `true` to subscribe, `false` to unsubscribe.
    pub subscribe: bool,
}

/// `Init`.
#[derive(Debug, Clone, PartialEq)]
pub struct Init {
    /// The actor's id.
    pub actor_id: String,
    /// The connection's id (a UUID chosen by the server).
    pub connection_id: String,
}

/// `Error` (named `ErrorMessage` here to keep `Error` for the crate's error type).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorMessage {
    /// Error group, e.g. `actor`.
    pub group: String,
    /// Error code, e.g. `action_not_found`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Optional metadata.
    pub metadata: Option<Value>,
    /// The failed action; `None` for a connection-level error.
    pub action_id: Option<u64>,
    /// The actor that produced the error.
    pub actor: Option<ActorSpecifier>,
}

/// `ActionResponse`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionResponse {
    /// The request id this answers.
    pub id: u64,
    /// The return value.
    pub output: Value,
}

/// `Event`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// The array of broadcast arguments.
    pub args: Value,
}

/// `ActorSpecifier`: which actor (and which start of it) answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorSpecifier {
    /// The actor's id.
    pub actor_id: String,
    /// The actor's generation.
    pub generation: u64,
    /// The serialized key; `None` for key-less actors.
    pub key: Option<String>,
}

/// Body of `POST /action/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpActionRequest {
    /// The argument array. json/cbor bodies without `args` decode to [`Value::Undefined`].
    pub args: Value,
}

/// Success body of `POST /action/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpActionResponse {
    /// The return value.
    pub output: Value,
}

/// Body of `POST /queue/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpQueueSendRequest {
    /// The message body. json/cbor bodies without `body` decode to [`Value::Undefined`].
    pub body: Value,
    /// Queue name (also in the URL).
    pub name: Option<String>,
    /// Wait for completion.
    pub wait: Option<bool>,
    /// Wait timeout in milliseconds.
    pub timeout: Option<u64>,
}

/// Success body of `POST /queue/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpQueueSendResponse {
    /// [`QUEUE_STATUS_COMPLETED`] or [`QUEUE_STATUS_TIMED_OUT`] (BARE carries any string).
    pub status: String,
    /// The completion value, when there is one.
    pub response: Option<Value>,
}

/// `HttpQueueSendResponse.status` of a completed message.
pub const QUEUE_STATUS_COMPLETED: &str = "completed";
/// `HttpQueueSendResponse.status` of a wait that timed out.
pub const QUEUE_STATUS_TIMED_OUT: &str = "timedOut";

/// Error body of an actor HTTP route.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponseError {
    /// Error group.
    pub group: String,
    /// Error code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Optional metadata.
    pub metadata: Option<Value>,
    /// The actor that produced the error.
    pub actor: Option<ActorSpecifier>,
}

/// `HttpResolveResponse` (unused by current clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResolveResponse {
    /// The actor's id.
    pub actor_id: String,
}

impl HttpActionRequest {
    /// The arguments as the reference server normalises them: an array as is, `null` or
    /// `undefined` as no arguments, any other value as a single argument.
    pub fn args_list(&self) -> Vec<Value> {
        normalize_args(&self.args)
    }
}

impl ActionRequest {
    /// The arguments normalised like [`HttpActionRequest::args_list`].
    pub fn args_list(&self) -> Vec<Value> {
        normalize_args(&self.args)
    }
}

fn normalize_args(args: &Value) -> Vec<Value> {
    match args {
        Value::Array(items) => items.clone(),
        Value::Null | Value::Undefined => Vec::new(),
        other => vec![other.clone()],
    }
}
