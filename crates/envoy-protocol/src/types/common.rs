//! Aliases and small structs shared by many messages.

use serde::Serialize;

use crate::bare::{Reader, Writer};
use crate::error::Result;
use crate::view;
use crate::wire::Wire;

/// Random 4-byte id of a gateway process (`data[4]`).
pub type GatewayId = [u8; 4];
/// Random 4-byte id of a tunnelled request or WebSocket within a gateway (`data[4]`).
pub type RequestId = [u8; 4];
/// Per-request message counter (`u16`, wraps).
pub type MessageIndex = u16;

/// Position of a command or event within one allocation (generation) of an actor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorCheckpoint {
    /// Actor id (30 characters).
    pub actor_id: String,
    /// Allocation number of the actor: 1, 2, 3 …
    pub generation: u32,
    /// Index within (actor, generation); commands start at 1, events at 0.
    #[serde(serialize_with = "view::int")]
    pub index: i64,
}

impl Wire for ActorCheckpoint {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.actor_id)?;
        w.u32(self.generation);
        w.i64(self.index);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            actor_id: r.str()?,
            generation: r.u32()?,
            index: r.i64()?,
        })
    }
}

/// Identity of one tunnel message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageId {
    /// The gateway instance.
    #[serde(serialize_with = "view::hex")]
    pub gateway_id: GatewayId,
    /// The request or WebSocket within the gateway.
    #[serde(serialize_with = "view::hex")]
    pub request_id: RequestId,
    /// +1 per message in this direction.
    pub message_index: MessageIndex,
}

impl Wire for MessageId {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.bytes(&self.gateway_id);
        w.bytes(&self.request_id);
        w.u16(self.message_index);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            gateway_id: r.fixed()?,
            request_id: r.fixed()?,
            message_index: r.u16()?,
        })
    }
}

/// `{requestId, data}`: the wrapper around every SQLite request and response.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestEnvelope<T> {
    /// Chosen by the host, echoed by the engine.
    pub request_id: u32,
    /// The request or response.
    pub data: T,
}

impl<T: Wire> Wire for RequestEnvelope<T> {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u32(self.request_id);
        self.data.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            request_id: r.u32()?,
            data: T::decode(r)?,
        })
    }
}
