//! Gateway traffic tunnelled over the host socket (HTTP requests and WebSockets).
//!
//! Version 6 lacks `actorGeneration`, `responseStream`, abort reasons, body window updates and
//! body cancel; see [`crate::ProtocolVersion`] conversions in the `encode_v`/`decode_v` impls.

use indexmap::IndexMap;
use serde::Serialize;

use super::common::MessageId;
use crate::bare::{Reader, Writer};
use crate::error::{Error, Result};
use crate::version::ProtocolVersion;
use crate::view;
use crate::wire::{bad_tag, Wire, WireV};

/// HTTP headers in wire order (`map<str><str>`; names are unique).
pub type Headers = IndexMap<String, String>;

/// Why a streamed request or response was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum HttpStreamAbortReasonKind {
    /// Not given (also what a v6 abort converts to).
    #[default]
    Unknown,
    /// The other side went away.
    Cancelled,
    /// The handler failed.
    HandlerError,
    /// Engine or host failure.
    InternalError,
}

/// Abort reason (v8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct HttpStreamAbortReason {
    /// Category.
    pub kind: HttpStreamAbortReasonKind,
    /// Free text.
    pub detail: Option<String>,
}

impl Wire for HttpStreamAbortReason {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u8(self.kind as u8);
        w.option(self.detail.as_ref(), |w, s| w.str(s))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let kind = match r.u8()? {
            0 => HttpStreamAbortReasonKind::Unknown,
            1 => HttpStreamAbortReasonKind::Cancelled,
            2 => HttpStreamAbortReasonKind::HandlerError,
            3 => HttpStreamAbortReasonKind::InternalError,
            t => return Err(bad_tag("HttpStreamAbortReasonKind", t, r)),
        };
        Ok(Self {
            kind,
            detail: r.option(Reader::str)?,
        })
    }
}

fn headers(w: &mut Writer, h: &Headers) -> Result<()> {
    w.str_map(h, |w, v| w.str(v))
}

fn read_headers(r: &mut Reader<'_>) -> Result<Headers> {
    r.str_map(Reader::str)
}

fn opt_u32(w: &mut Writer, v: Option<u32>) -> Result<()> {
    w.option(v.as_ref(), |w, v| {
        w.u32(*v);
        Ok(())
    })
}

fn opt_data(w: &mut Writer, v: Option<&Vec<u8>>) -> Result<()> {
    w.option(v, |w, d| w.data(d))
}

fn is_v8(v: ProtocolVersion) -> bool {
    v == ProtocolVersion::V8
}

/// Start of a tunnelled HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToEnvoyRequestStart {
    /// Target actor.
    pub actor_id: String,
    /// Target generation (v8 only; absent = current; dropped for v6).
    pub actor_generation: Option<u32>,
    /// HTTP method.
    pub method: String,
    /// Path and query as the actor sees them.
    pub path: String,
    /// Request headers.
    pub headers: Headers,
    /// Whole body, absent when there is none.
    #[serde(serialize_with = "view::opt_hex")]
    pub body: Option<Vec<u8>>,
    /// The body follows in chunks.
    pub stream: bool,
    /// The gateway accepts a streamed response (v8 only; dropped for v6).
    pub response_stream: bool,
}

impl WireV for ToEnvoyRequestStart {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        w.str(&self.actor_id)?;
        if is_v8(v) {
            opt_u32(w, self.actor_generation)?;
        }
        w.str(&self.method)?;
        w.str(&self.path)?;
        headers(w, &self.headers)?;
        opt_data(w, self.body.as_ref())?;
        w.bool(self.stream);
        if is_v8(v) {
            w.bool(self.response_stream);
        }
        Ok(())
    }
    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        let actor_id = r.str()?;
        let actor_generation = if is_v8(v) {
            r.option(Reader::u32)?
        } else {
            None
        };
        Ok(Self {
            actor_id,
            actor_generation,
            method: r.str()?,
            path: r.str()?,
            headers: read_headers(r)?,
            body: r.option(Reader::data)?,
            stream: r.bool()?,
            response_stream: if is_v8(v) { r.bool()? } else { false },
        })
    }
}

/// A chunk of a streamed body (either direction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BodyChunk {
    /// Chunk bytes.
    #[serde(serialize_with = "view::hex")]
    pub body: Vec<u8>,
    /// Last chunk.
    pub finish: bool,
}

/// Request body chunk.
pub type ToEnvoyRequestChunk = BodyChunk;
/// Response body chunk.
pub type ToRivetResponseChunk = BodyChunk;

impl Wire for BodyChunk {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.data(&self.body)?;
        w.bool(self.finish);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            body: r.data()?,
            finish: r.bool()?,
        })
    }
}

/// The gateway aborts a request (v6: no payload; converts to all-absent, reason `Unknown`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ToEnvoyRequestAbort {
    /// Target actor.
    pub actor_id: Option<String>,
    /// Target generation.
    pub actor_generation: Option<u32>,
    /// Why.
    pub reason: HttpStreamAbortReason,
}

impl Wire for ToEnvoyRequestAbort {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.option(self.actor_id.as_ref(), |w, s| w.str(s))?;
        opt_u32(w, self.actor_generation)?;
        self.reason.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            actor_id: r.option(Reader::str)?,
            actor_generation: r.option(Reader::u32)?,
            reason: HttpStreamAbortReason::decode(r)?,
        })
    }
}

/// Flow-control credit: cumulative body bytes consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyWindowUpdate {
    /// Cumulative bytes consumed.
    #[serde(serialize_with = "view::int")]
    pub consumed_bytes: u64,
}

/// Response-body credit from the gateway (v8 only).
pub type ToEnvoyResponseBodyWindowUpdate = BodyWindowUpdate;
/// Request-body credit from the host (v8 only).
pub type ToRivetRequestBodyWindowUpdate = BodyWindowUpdate;

impl Wire for BodyWindowUpdate {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u64(self.consumed_bytes);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            consumed_bytes: r.u64()?,
        })
    }
}

/// A client WebSocket is opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToEnvoyWebSocketOpen {
    /// Target actor.
    pub actor_id: String,
    /// Target generation (v8 only; dropped for v6).
    pub actor_generation: Option<u32>,
    /// Path and query.
    pub path: String,
    /// Upgrade headers.
    pub headers: Headers,
}

impl WireV for ToEnvoyWebSocketOpen {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        w.str(&self.actor_id)?;
        if is_v8(v) {
            opt_u32(w, self.actor_generation)?;
        }
        w.str(&self.path)?;
        headers(w, &self.headers)
    }
    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        let actor_id = r.str()?;
        let actor_generation = if is_v8(v) {
            r.option(Reader::u32)?
        } else {
            None
        };
        Ok(Self {
            actor_id,
            actor_generation,
            path: r.str()?,
            headers: read_headers(r)?,
        })
    }
}

/// A WebSocket frame (either direction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebSocketMessage {
    /// Frame payload.
    #[serde(serialize_with = "view::hex")]
    pub data: Vec<u8>,
    /// Binary frame; false = text.
    pub binary: bool,
}

/// Client → actor frame.
pub type ToEnvoyWebSocketMessage = WebSocketMessage;
/// Actor → client frame.
pub type ToRivetWebSocketMessage = WebSocketMessage;

impl Wire for WebSocketMessage {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.data(&self.data)?;
        w.bool(self.binary);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            data: r.data()?,
            binary: r.bool()?,
        })
    }
}

fn opt_u16(w: &mut Writer, v: Option<u16>) -> Result<()> {
    w.option(v.as_ref(), |w, v| {
        w.u16(*v);
        Ok(())
    })
}

/// The client closed its WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToEnvoyWebSocketClose {
    /// Close code.
    pub code: Option<u16>,
    /// Close reason.
    pub reason: Option<String>,
}

impl Wire for ToEnvoyWebSocketClose {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        opt_u16(w, self.code)?;
        w.option(self.reason.as_ref(), |w, s| w.str(s))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            code: r.option(Reader::u16)?,
            reason: r.option(Reader::str)?,
        })
    }
}

/// Gateway → host tunnel message kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum ToEnvoyTunnelMessageKind {
    /// v8 0, v6 0.
    #[serde(rename = "ToEnvoyRequestStart")]
    RequestStart(ToEnvoyRequestStart),
    /// v8 1, v6 1.
    #[serde(rename = "ToEnvoyRequestChunk")]
    RequestChunk(ToEnvoyRequestChunk),
    /// v8 2, v6 2 (void in v6).
    #[serde(rename = "ToEnvoyRequestAbort")]
    RequestAbort(ToEnvoyRequestAbort),
    /// v8 3 only.
    #[serde(rename = "ToEnvoyRequestBodyCancel")]
    RequestBodyCancel,
    /// v8 4 only.
    #[serde(rename = "ToEnvoyResponseBodyWindowUpdate")]
    ResponseBodyWindowUpdate(ToEnvoyResponseBodyWindowUpdate),
    /// v8 5, v6 3.
    #[serde(rename = "ToEnvoyWebSocketOpen")]
    WebSocketOpen(ToEnvoyWebSocketOpen),
    /// v8 6, v6 4.
    #[serde(rename = "ToEnvoyWebSocketMessage")]
    WebSocketMessage(ToEnvoyWebSocketMessage),
    /// v8 7, v6 5.
    #[serde(rename = "ToEnvoyWebSocketClose")]
    WebSocketClose(ToEnvoyWebSocketClose),
}

fn not_in(what: &'static str, v: ProtocolVersion) -> Error {
    Error::NotRepresentable {
        what,
        version: v.number(),
    }
}

impl WireV for ToEnvoyTunnelMessageKind {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        let v8 = is_v8(v);
        match self {
            Self::RequestStart(x) => {
                w.u8(0);
                x.encode_v(v, w)
            }
            Self::RequestChunk(x) => {
                w.u8(1);
                x.encode(w)
            }
            Self::RequestAbort(x) => {
                w.u8(2);
                if v8 {
                    x.encode(w)
                } else {
                    Ok(())
                }
            }
            Self::RequestBodyCancel if v8 => {
                w.u8(3);
                Ok(())
            }
            Self::RequestBodyCancel => Err(not_in("ToEnvoyRequestBodyCancel", v)),
            Self::ResponseBodyWindowUpdate(x) if v8 => {
                w.u8(4);
                x.encode(w)
            }
            Self::ResponseBodyWindowUpdate(_) => Err(not_in("ToEnvoyResponseBodyWindowUpdate", v)),
            Self::WebSocketOpen(x) => {
                w.u8(if v8 { 5 } else { 3 });
                x.encode_v(v, w)
            }
            Self::WebSocketMessage(x) => {
                w.u8(if v8 { 6 } else { 4 });
                x.encode(w)
            }
            Self::WebSocketClose(x) => {
                w.u8(if v8 { 7 } else { 5 });
                x.encode(w)
            }
        }
    }
    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        let tag = r.u8()?;
        Ok(match (v, tag) {
            (_, 0) => Self::RequestStart(ToEnvoyRequestStart::decode_v(v, r)?),
            (_, 1) => Self::RequestChunk(BodyChunk::decode(r)?),
            (ProtocolVersion::V8, 2) => Self::RequestAbort(ToEnvoyRequestAbort::decode(r)?),
            (ProtocolVersion::V6, 2) => Self::RequestAbort(ToEnvoyRequestAbort::default()),
            (ProtocolVersion::V8, 3) => Self::RequestBodyCancel,
            (ProtocolVersion::V8, 4) => {
                Self::ResponseBodyWindowUpdate(BodyWindowUpdate::decode(r)?)
            }
            (ProtocolVersion::V8, 5) | (ProtocolVersion::V6, 3) => {
                Self::WebSocketOpen(ToEnvoyWebSocketOpen::decode_v(v, r)?)
            }
            (ProtocolVersion::V8, 6) | (ProtocolVersion::V6, 4) => {
                Self::WebSocketMessage(WebSocketMessage::decode(r)?)
            }
            (ProtocolVersion::V8, 7) | (ProtocolVersion::V6, 5) => {
                Self::WebSocketClose(ToEnvoyWebSocketClose::decode(r)?)
            }
            (_, t) => return Err(bad_tag("ToEnvoyTunnelMessageKind", t, r)),
        })
    }
}

/// Gateway → host tunnel message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToEnvoyTunnelMessage {
    /// Identity of the message.
    pub message_id: MessageId,
    /// The message.
    pub message_kind: ToEnvoyTunnelMessageKind,
}

impl WireV for ToEnvoyTunnelMessage {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        self.message_id.encode(w)?;
        self.message_kind.encode_v(v, w)
    }
    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            message_id: MessageId::decode(r)?,
            message_kind: ToEnvoyTunnelMessageKind::decode_v(v, r)?,
        })
    }
}

/// Response head (and whole body when not streamed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToRivetResponseStart {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Headers,
    /// Whole body when `stream` is false.
    #[serde(serialize_with = "view::opt_hex")]
    pub body: Option<Vec<u8>>,
    /// Body follows in chunks (must be false for 2.3.19 gateways).
    pub stream: bool,
}

impl Wire for ToRivetResponseStart {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u16(self.status);
        headers(w, &self.headers)?;
        opt_data(w, self.body.as_ref())?;
        w.bool(self.stream);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            status: r.u16()?,
            headers: read_headers(r)?,
            body: r.option(Reader::data)?,
            stream: r.bool()?,
        })
    }
}

/// The host aborts a response (v6: no payload; converts to reason `Unknown`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ToRivetResponseAbort {
    /// Why.
    pub reason: HttpStreamAbortReason,
}

/// The host accepts a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToRivetWebSocketOpen {
    /// The socket survives actor sleep.
    pub can_hibernate: bool,
}

/// The host durably processed a client frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToRivetWebSocketMessageAck {
    /// `messageIndex` of the acknowledged frame.
    pub index: u16,
}

/// The host closes a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToRivetWebSocketClose {
    /// Close code.
    pub code: Option<u16>,
    /// Close reason.
    pub reason: Option<String>,
    /// Keep the client socket open while the actor sleeps.
    pub hibernate: bool,
}

/// Host → gateway tunnel message kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum ToRivetTunnelMessageKind {
    /// v8 0, v6 0.
    #[serde(rename = "ToRivetResponseStart")]
    ResponseStart(ToRivetResponseStart),
    /// v8 1, v6 1.
    #[serde(rename = "ToRivetResponseChunk")]
    ResponseChunk(ToRivetResponseChunk),
    /// v8 2, v6 2 (void in v6).
    #[serde(rename = "ToRivetResponseAbort")]
    ResponseAbort(ToRivetResponseAbort),
    /// v8 3 only.
    #[serde(rename = "ToRivetRequestBodyWindowUpdate")]
    RequestBodyWindowUpdate(ToRivetRequestBodyWindowUpdate),
    /// v8 4 only.
    #[serde(rename = "ToRivetRequestBodyCancel")]
    RequestBodyCancel,
    /// v8 5, v6 3.
    #[serde(rename = "ToRivetWebSocketOpen")]
    WebSocketOpen(ToRivetWebSocketOpen),
    /// v8 6, v6 4.
    #[serde(rename = "ToRivetWebSocketMessage")]
    WebSocketMessage(ToRivetWebSocketMessage),
    /// v8 7, v6 5.
    #[serde(rename = "ToRivetWebSocketMessageAck")]
    WebSocketMessageAck(ToRivetWebSocketMessageAck),
    /// v8 8, v6 6.
    #[serde(rename = "ToRivetWebSocketClose")]
    WebSocketClose(ToRivetWebSocketClose),
}

impl WireV for ToRivetTunnelMessageKind {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        let v8 = is_v8(v);
        match self {
            Self::ResponseStart(x) => {
                w.u8(0);
                x.encode(w)
            }
            Self::ResponseChunk(x) => {
                w.u8(1);
                x.encode(w)
            }
            Self::ResponseAbort(x) => {
                w.u8(2);
                if v8 {
                    x.reason.encode(w)
                } else {
                    Ok(())
                }
            }
            Self::RequestBodyWindowUpdate(x) if v8 => {
                w.u8(3);
                x.encode(w)
            }
            Self::RequestBodyWindowUpdate(_) => Err(not_in("ToRivetRequestBodyWindowUpdate", v)),
            Self::RequestBodyCancel if v8 => {
                w.u8(4);
                Ok(())
            }
            Self::RequestBodyCancel => Err(not_in("ToRivetRequestBodyCancel", v)),
            Self::WebSocketOpen(x) => {
                w.u8(if v8 { 5 } else { 3 });
                w.bool(x.can_hibernate);
                Ok(())
            }
            Self::WebSocketMessage(x) => {
                w.u8(if v8 { 6 } else { 4 });
                x.encode(w)
            }
            Self::WebSocketMessageAck(x) => {
                w.u8(if v8 { 7 } else { 5 });
                w.u16(x.index);
                Ok(())
            }
            Self::WebSocketClose(x) => {
                w.u8(if v8 { 8 } else { 6 });
                opt_u16(w, x.code)?;
                w.option(x.reason.as_ref(), |w, s| w.str(s))?;
                w.bool(x.hibernate);
                Ok(())
            }
        }
    }
    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        use ProtocolVersion::{V6, V8};
        let tag = r.u8()?;
        Ok(match (v, tag) {
            (_, 0) => Self::ResponseStart(ToRivetResponseStart::decode(r)?),
            (_, 1) => Self::ResponseChunk(BodyChunk::decode(r)?),
            (V8, 2) => Self::ResponseAbort(ToRivetResponseAbort {
                reason: HttpStreamAbortReason::decode(r)?,
            }),
            (V6, 2) => Self::ResponseAbort(ToRivetResponseAbort::default()),
            (V8, 3) => Self::RequestBodyWindowUpdate(BodyWindowUpdate::decode(r)?),
            (V8, 4) => Self::RequestBodyCancel,
            (V8, 5) | (V6, 3) => Self::WebSocketOpen(ToRivetWebSocketOpen {
                can_hibernate: r.bool()?,
            }),
            (V8, 6) | (V6, 4) => Self::WebSocketMessage(WebSocketMessage::decode(r)?),
            (V8, 7) | (V6, 5) => {
                Self::WebSocketMessageAck(ToRivetWebSocketMessageAck { index: r.u16()? })
            }
            (V8, 8) | (V6, 6) => Self::WebSocketClose(ToRivetWebSocketClose {
                code: r.option(Reader::u16)?,
                reason: r.option(Reader::str)?,
                hibernate: r.bool()?,
            }),
            (_, t) => return Err(bad_tag("ToRivetTunnelMessageKind", t, r)),
        })
    }
}

/// Host → gateway tunnel message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToRivetTunnelMessage {
    /// Identity of the message.
    pub message_id: MessageId,
    /// The message.
    pub message_kind: ToRivetTunnelMessageKind,
}

impl WireV for ToRivetTunnelMessage {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        self.message_id.encode(w)?;
        self.message_kind.encode_v(v, w)
    }
    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            message_id: MessageId::decode(r)?,
            message_kind: ToRivetTunnelMessageKind::decode_v(v, r)?,
        })
    }
}
