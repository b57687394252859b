//! The two socket unions: `ToRivet` (host → engine) and `ToEnvoy` (engine → host).

use serde::Serialize;

use super::common::RequestEnvelope;
use super::kv::{ToEnvoyKvResponse, ToRivetKvRequest};
use super::lifecycle::{
    CommandWrapper, EventWrapper, ToEnvoyAckEvents, ToEnvoyInit, ToEnvoyPing, ToRivetAckCommands,
    ToRivetMetadata, ToRivetPong,
};
use super::sqlite::{
    SqliteCommitFinalizeRequest, SqliteCommitFinalizeResponse, SqliteCommitRequest,
    SqliteCommitResponse, SqliteCommitStageBeginRequest, SqliteCommitStageBeginResponse,
    SqliteCommitStageSegmentRequest, SqliteCommitStageSegmentResponse, SqliteExecRequest,
    SqliteExecResponse, SqliteExecuteBatchRequest, SqliteExecuteBatchResponse,
    SqliteExecuteRequest, SqliteExecuteResponse, SqliteGetPagesRequest, SqliteGetPagesResponse,
};
use super::tunnel::{ToEnvoyTunnelMessage, ToRivetTunnelMessage};
use crate::bare::{Reader, Writer};
use crate::error::{Error, Result};
use crate::version::ProtocolVersion;
use crate::wire::{bad_tag, Wire, WireV};

/// Host → engine message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum ToRivet {
    /// Tag 0: first message after connect.
    #[serde(rename = "ToRivetMetadata")]
    Metadata(ToRivetMetadata),
    /// Tag 1: actor events.
    #[serde(rename = "ToRivetEvents")]
    Events(Vec<EventWrapper>),
    /// Tag 2: command acknowledgements.
    #[serde(rename = "ToRivetAckCommands")]
    AckCommands(ToRivetAckCommands),
    /// Tag 3: the host is draining.
    #[serde(rename = "ToRivetStopping")]
    Stopping,
    /// Tag 4: answer to a ping.
    #[serde(rename = "ToRivetPong")]
    Pong(ToRivetPong),
    /// Tag 5: actor KV.
    #[serde(rename = "ToRivetKvRequest")]
    KvRequest(ToRivetKvRequest),
    /// Tag 6: gateway traffic (responses).
    #[serde(rename = "ToRivetTunnelMessage")]
    TunnelMessage(ToRivetTunnelMessage),
    /// Tag 7.
    #[serde(rename = "ToRivetSqliteGetPagesRequest")]
    SqliteGetPagesRequest(RequestEnvelope<SqliteGetPagesRequest>),
    /// Tag 8.
    #[serde(rename = "ToRivetSqliteCommitRequest")]
    SqliteCommitRequest(RequestEnvelope<SqliteCommitRequest>),
    /// v8 tag 9 (not in v6).
    #[serde(rename = "ToRivetSqliteCommitStageBeginRequest")]
    SqliteCommitStageBeginRequest(RequestEnvelope<SqliteCommitStageBeginRequest>),
    /// v8 tag 10 (not in v6).
    #[serde(rename = "ToRivetSqliteCommitStageSegmentRequest")]
    SqliteCommitStageSegmentRequest(RequestEnvelope<SqliteCommitStageSegmentRequest>),
    /// v8 tag 11 (not in v6).
    #[serde(rename = "ToRivetSqliteCommitFinalizeRequest")]
    SqliteCommitFinalizeRequest(RequestEnvelope<SqliteCommitFinalizeRequest>),
    /// v8 tag 12, v6 tag 9.
    #[serde(rename = "ToRivetSqliteExecRequest")]
    SqliteExecRequest(RequestEnvelope<SqliteExecRequest>),
    /// v8 tag 13, v6 tag 10.
    #[serde(rename = "ToRivetSqliteExecuteRequest")]
    SqliteExecuteRequest(RequestEnvelope<SqliteExecuteRequest>),
    /// v8 tag 14, v6 tag 11.
    #[serde(rename = "ToRivetSqliteExecuteBatchRequest")]
    SqliteExecuteBatchRequest(RequestEnvelope<SqliteExecuteBatchRequest>),
}

fn tagged<T: Wire>(w: &mut Writer, tag: u8, x: &T) -> Result<()> {
    w.u8(tag);
    x.encode(w)
}

fn v8_only(v: ProtocolVersion, what: &'static str) -> Result<()> {
    match v {
        ProtocolVersion::V8 => Ok(()),
        ProtocolVersion::V6 => Err(Error::NotRepresentable {
            what,
            version: v.number(),
        }),
    }
}

impl WireV for ToRivet {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        // v6 lacks the three staged-commit arms, so the SQL arms sit three tags lower.
        let sql_base = if v == ProtocolVersion::V8 { 12 } else { 9 };
        match self {
            Self::Metadata(x) => tagged(w, 0, x),
            Self::Events(x) => {
                w.u8(1);
                w.list(x, |w, e| e.encode(w))
            }
            Self::AckCommands(x) => tagged(w, 2, x),
            Self::Stopping => {
                w.u8(3);
                Ok(())
            }
            Self::Pong(x) => tagged(w, 4, x),
            Self::KvRequest(x) => tagged(w, 5, x),
            Self::TunnelMessage(x) => {
                w.u8(6);
                x.encode_v(v, w)
            }
            Self::SqliteGetPagesRequest(x) => tagged(w, 7, x),
            Self::SqliteCommitRequest(x) => tagged(w, 8, x),
            Self::SqliteCommitStageBeginRequest(x) => {
                v8_only(v, "ToRivetSqliteCommitStageBeginRequest")?;
                tagged(w, 9, x)
            }
            Self::SqliteCommitStageSegmentRequest(x) => {
                v8_only(v, "ToRivetSqliteCommitStageSegmentRequest")?;
                tagged(w, 10, x)
            }
            Self::SqliteCommitFinalizeRequest(x) => {
                v8_only(v, "ToRivetSqliteCommitFinalizeRequest")?;
                tagged(w, 11, x)
            }
            Self::SqliteExecRequest(x) => tagged(w, sql_base, x),
            Self::SqliteExecuteRequest(x) => tagged(w, sql_base + 1, x),
            Self::SqliteExecuteBatchRequest(x) => tagged(w, sql_base + 2, x),
        }
    }

    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        use ProtocolVersion::{V6, V8};
        let tag = r.u8()?;
        Ok(match (v, tag) {
            (_, 0) => Self::Metadata(Wire::decode(r)?),
            (_, 1) => Self::Events(r.list(EventWrapper::decode)?),
            (_, 2) => Self::AckCommands(Wire::decode(r)?),
            (_, 3) => Self::Stopping,
            (_, 4) => Self::Pong(Wire::decode(r)?),
            (_, 5) => Self::KvRequest(Wire::decode(r)?),
            (_, 6) => Self::TunnelMessage(ToRivetTunnelMessage::decode_v(v, r)?),
            (_, 7) => Self::SqliteGetPagesRequest(Wire::decode(r)?),
            (_, 8) => Self::SqliteCommitRequest(Wire::decode(r)?),
            (V8, 9) => Self::SqliteCommitStageBeginRequest(Wire::decode(r)?),
            (V8, 10) => Self::SqliteCommitStageSegmentRequest(Wire::decode(r)?),
            (V8, 11) => Self::SqliteCommitFinalizeRequest(Wire::decode(r)?),
            (V8, 12) | (V6, 9) => Self::SqliteExecRequest(Wire::decode(r)?),
            (V8, 13) | (V6, 10) => Self::SqliteExecuteRequest(Wire::decode(r)?),
            (V8, 14) | (V6, 11) => Self::SqliteExecuteBatchRequest(Wire::decode(r)?),
            (_, t) => return Err(bad_tag("ToRivet", t, r)),
        })
    }
}

/// Engine → host message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum ToEnvoy {
    /// Tag 0: sent by the engine first.
    #[serde(rename = "ToEnvoyInit")]
    Init(ToEnvoyInit),
    /// Tag 1: start/stop commands.
    #[serde(rename = "ToEnvoyCommands")]
    Commands(Vec<CommandWrapper>),
    /// Tag 2: event acknowledgements.
    #[serde(rename = "ToEnvoyAckEvents")]
    AckEvents(ToEnvoyAckEvents),
    /// Tag 3.
    #[serde(rename = "ToEnvoyKvResponse")]
    KvResponse(ToEnvoyKvResponse),
    /// Tag 4: gateway traffic (requests).
    #[serde(rename = "ToEnvoyTunnelMessage")]
    TunnelMessage(ToEnvoyTunnelMessage),
    /// Tag 5: liveness (every ~3 s).
    #[serde(rename = "ToEnvoyPing")]
    Ping(ToEnvoyPing),
    /// Tag 6.
    #[serde(rename = "ToEnvoySqliteGetPagesResponse")]
    SqliteGetPagesResponse(RequestEnvelope<SqliteGetPagesResponse>),
    /// Tag 7.
    #[serde(rename = "ToEnvoySqliteCommitResponse")]
    SqliteCommitResponse(RequestEnvelope<SqliteCommitResponse>),
    /// v8 tag 8 (not in v6).
    #[serde(rename = "ToEnvoySqliteCommitStageBeginResponse")]
    SqliteCommitStageBeginResponse(RequestEnvelope<SqliteCommitStageBeginResponse>),
    /// v8 tag 9 (not in v6).
    #[serde(rename = "ToEnvoySqliteCommitStageSegmentResponse")]
    SqliteCommitStageSegmentResponse(RequestEnvelope<SqliteCommitStageSegmentResponse>),
    /// v8 tag 10 (not in v6).
    #[serde(rename = "ToEnvoySqliteCommitFinalizeResponse")]
    SqliteCommitFinalizeResponse(RequestEnvelope<SqliteCommitFinalizeResponse>),
    /// v8 tag 11, v6 tag 8.
    #[serde(rename = "ToEnvoySqliteExecResponse")]
    SqliteExecResponse(RequestEnvelope<SqliteExecResponse>),
    /// v8 tag 12, v6 tag 9.
    #[serde(rename = "ToEnvoySqliteExecuteResponse")]
    SqliteExecuteResponse(RequestEnvelope<SqliteExecuteResponse>),
    /// v8 tag 13, v6 tag 10.
    #[serde(rename = "ToEnvoySqliteExecuteBatchResponse")]
    SqliteExecuteBatchResponse(RequestEnvelope<SqliteExecuteBatchResponse>),
}

/// `ToEnvoyCommands` payload: the list itself.
pub(crate) fn encode_commands(w: &mut Writer, c: &[CommandWrapper]) -> Result<()> {
    w.list(c, |w, c| c.encode(w))
}

impl WireV for ToEnvoy {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        let sql_base = if v == ProtocolVersion::V8 { 11 } else { 8 };
        match self {
            Self::Init(x) => tagged(w, 0, x),
            Self::Commands(x) => {
                w.u8(1);
                encode_commands(w, x)
            }
            Self::AckEvents(x) => tagged(w, 2, x),
            Self::KvResponse(x) => tagged(w, 3, x),
            Self::TunnelMessage(x) => {
                w.u8(4);
                x.encode_v(v, w)
            }
            Self::Ping(x) => tagged(w, 5, x),
            Self::SqliteGetPagesResponse(x) => tagged(w, 6, x),
            Self::SqliteCommitResponse(x) => tagged(w, 7, x),
            Self::SqliteCommitStageBeginResponse(x) => {
                v8_only(v, "ToEnvoySqliteCommitStageBeginResponse")?;
                tagged(w, 8, x)
            }
            Self::SqliteCommitStageSegmentResponse(x) => {
                v8_only(v, "ToEnvoySqliteCommitStageSegmentResponse")?;
                tagged(w, 9, x)
            }
            Self::SqliteCommitFinalizeResponse(x) => {
                v8_only(v, "ToEnvoySqliteCommitFinalizeResponse")?;
                tagged(w, 10, x)
            }
            Self::SqliteExecResponse(x) => tagged(w, sql_base, x),
            Self::SqliteExecuteResponse(x) => tagged(w, sql_base + 1, x),
            Self::SqliteExecuteBatchResponse(x) => tagged(w, sql_base + 2, x),
        }
    }

    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        use ProtocolVersion::{V6, V8};
        let tag = r.u8()?;
        Ok(match (v, tag) {
            (_, 0) => Self::Init(Wire::decode(r)?),
            (_, 1) => Self::Commands(r.list(CommandWrapper::decode)?),
            (_, 2) => Self::AckEvents(Wire::decode(r)?),
            (_, 3) => Self::KvResponse(Wire::decode(r)?),
            (_, 4) => Self::TunnelMessage(ToEnvoyTunnelMessage::decode_v(v, r)?),
            (_, 5) => Self::Ping(Wire::decode(r)?),
            (_, 6) => Self::SqliteGetPagesResponse(Wire::decode(r)?),
            (_, 7) => Self::SqliteCommitResponse(Wire::decode(r)?),
            (V8, 8) => Self::SqliteCommitStageBeginResponse(Wire::decode(r)?),
            (V8, 9) => Self::SqliteCommitStageSegmentResponse(Wire::decode(r)?),
            (V8, 10) => Self::SqliteCommitFinalizeResponse(Wire::decode(r)?),
            (V8, 11) | (V6, 8) => Self::SqliteExecResponse(Wire::decode(r)?),
            (V8, 12) | (V6, 9) => Self::SqliteExecuteResponse(Wire::decode(r)?),
            (V8, 13) | (V6, 10) => Self::SqliteExecuteBatchResponse(Wire::decode(r)?),
            (_, t) => return Err(bad_tag("ToEnvoy", t, r)),
        })
    }
}
