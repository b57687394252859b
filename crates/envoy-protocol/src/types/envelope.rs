//! Engine-internal envelopes of the reference engine: `ToEnvoyConn`, `ToGateway`, `ToOutbound`
//! (and `ActorCommandKeyData`, which is [`super::lifecycle::Command`]). They never cross the host
//! socket; they are here so that our engine can speak the reference engine's bus and storage
//! encodings where useful.

use serde::Serialize;

use super::common::{ActorCheckpoint, GatewayId, RequestId};
use super::lifecycle::{ActorConfig, CommandWrapper, ToEnvoyAckEvents};
use super::top::encode_commands;
use super::tunnel::{ToEnvoyTunnelMessage, ToRivetTunnelMessage};
use crate::bare::{Reader, Writer};
use crate::error::Result;
use crate::version::ProtocolVersion;
use crate::view;
use crate::wire::{bad_tag, Wire, WireV};

/// Ping relayed to the connection task of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToEnvoyConnPing {
    /// Gateway that asked.
    #[serde(serialize_with = "view::hex")]
    pub gateway_id: GatewayId,
    /// Request that asked.
    #[serde(serialize_with = "view::hex")]
    pub request_id: RequestId,
    /// ms.
    #[serde(serialize_with = "view::int")]
    pub ts: i64,
}

/// Message to a host's connection task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum ToEnvoyConn {
    /// Tag 0.
    #[serde(rename = "ToEnvoyConnPing")]
    Ping(ToEnvoyConnPing),
    /// Tag 1: close the connection.
    #[serde(rename = "ToEnvoyConnClose")]
    Close,
    /// Tag 2.
    #[serde(rename = "ToEnvoyCommands")]
    Commands(Vec<CommandWrapper>),
    /// Tag 3.
    #[serde(rename = "ToEnvoyAckEvents")]
    AckEvents(ToEnvoyAckEvents),
    /// Tag 4.
    #[serde(rename = "ToEnvoyTunnelMessage")]
    TunnelMessage(ToEnvoyTunnelMessage),
}

impl WireV for ToEnvoyConn {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        match self {
            Self::Ping(p) => {
                w.u8(0);
                w.bytes(&p.gateway_id);
                w.bytes(&p.request_id);
                w.i64(p.ts);
                Ok(())
            }
            Self::Close => {
                w.u8(1);
                Ok(())
            }
            Self::Commands(c) => {
                w.u8(2);
                encode_commands(w, c)
            }
            Self::AckEvents(a) => {
                w.u8(3);
                a.encode(w)
            }
            Self::TunnelMessage(t) => {
                w.u8(4);
                t.encode_v(v, w)
            }
        }
    }
    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::Ping(ToEnvoyConnPing {
                gateway_id: r.fixed()?,
                request_id: r.fixed()?,
                ts: r.i64()?,
            }),
            1 => Self::Close,
            2 => Self::Commands(r.list(CommandWrapper::decode)?),
            3 => Self::AckEvents(ToEnvoyAckEvents::decode(r)?),
            4 => Self::TunnelMessage(ToEnvoyTunnelMessage::decode_v(v, r)?),
            t => return Err(bad_tag("ToEnvoyConn", t, r)),
        })
    }
}

/// Pong relayed to a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToGatewayPong {
    /// Request that asked.
    #[serde(serialize_with = "view::hex")]
    pub request_id: RequestId,
    /// ms.
    #[serde(serialize_with = "view::int")]
    pub ts: i64,
}

/// Message to a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum ToGateway {
    /// Tag 0.
    #[serde(rename = "ToGatewayPong")]
    Pong(ToGatewayPong),
    /// Tag 1.
    #[serde(rename = "ToRivetTunnelMessage")]
    TunnelMessage(ToRivetTunnelMessage),
}

impl WireV for ToGateway {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        match self {
            Self::Pong(p) => {
                w.u8(0);
                w.bytes(&p.request_id);
                w.i64(p.ts);
                Ok(())
            }
            Self::TunnelMessage(t) => {
                w.u8(1);
                t.encode_v(v, w)
            }
        }
    }
    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::Pong(ToGatewayPong {
                request_id: r.fixed()?,
                ts: r.i64()?,
            }),
            1 => Self::TunnelMessage(ToRivetTunnelMessage::decode_v(v, r)?),
            t => return Err(bad_tag("ToGateway", t, r)),
        })
    }
}

/// Start an actor on a serverless pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToOutboundActorStart {
    /// Namespace id.
    pub namespace_id: String,
    /// Pool name.
    pub pool_name: String,
    /// Checkpoint of the start.
    pub checkpoint: ActorCheckpoint,
    /// What to start.
    pub actor_config: ActorConfig,
}

/// Message to the serverless outbound service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum ToOutbound {
    /// Tag 0.
    #[serde(rename = "ToOutboundActorStart")]
    ActorStart(ToOutboundActorStart),
}

impl Wire for ToOutbound {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        match self {
            Self::ActorStart(s) => {
                w.u8(0);
                w.str(&s.namespace_id)?;
                w.str(&s.pool_name)?;
                s.checkpoint.encode(w)?;
                s.actor_config.encode(w)
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::ActorStart(ToOutboundActorStart {
                namespace_id: r.str()?,
                pool_name: r.str()?,
                checkpoint: ActorCheckpoint::decode(r)?,
                actor_config: ActorConfig::decode(r)?,
            }),
            t => return Err(bad_tag("ToOutbound", t, r)),
        })
    }
}
