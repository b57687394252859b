//! Handshake, liveness, commands (engine → host), events (host → engine) and their acks.

use indexmap::IndexMap;
use serde::Serialize;

use super::common::{ActorCheckpoint, GatewayId, RequestId};
use super::kv::KvMetadata;
use crate::bare::{Reader, Writer};
use crate::error::Result;
use crate::view;
use crate::wire::{bad_tag, Wire};

/// Timing and size limits the engine announces in `ToEnvoyInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolMetadata {
    /// ms; the host stops its actors if disconnected longer (engine: 15000).
    #[serde(serialize_with = "view::int")]
    pub envoy_lost_threshold: i64,
    /// ms; the longest a stop may take (engine: 1800000).
    #[serde(serialize_with = "view::int")]
    pub actor_stop_threshold: i64,
    /// Largest tunnelled response body in bytes (engine: 20 MiB).
    #[serde(serialize_with = "view::int")]
    pub max_response_payload_size: u64,
}

impl Wire for ProtocolMetadata {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.i64(self.envoy_lost_threshold);
        w.i64(self.actor_stop_threshold);
        w.u64(self.max_response_payload_size);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            envoy_lost_threshold: r.i64()?,
            actor_stop_threshold: r.i64()?,
            max_response_payload_size: r.u64()?,
        })
    }
}

/// First message from the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToEnvoyInit {
    /// The engine's limits.
    pub metadata: ProtocolMetadata,
}

impl Wire for ToEnvoyInit {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        self.metadata.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            metadata: ProtocolMetadata::decode(r)?,
        })
    }
}

/// Engine ping (every ~3 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToEnvoyPing {
    /// Engine wall clock, ms.
    #[serde(serialize_with = "view::int")]
    pub ts: i64,
}

/// Host answer to a ping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToRivetPong {
    /// Echo of the ping's `ts`.
    #[serde(serialize_with = "view::int")]
    pub ts: i64,
}

impl Wire for ToEnvoyPing {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.i64(self.ts);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self { ts: r.i64()? })
    }
}

impl Wire for ToRivetPong {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.i64(self.ts);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self { ts: r.i64()? })
    }
}

/// Metadata of one actor type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorName {
    /// JSON text of an object.
    pub metadata: String,
}

impl Wire for ActorName {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.metadata)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self { metadata: r.str()? })
    }
}

/// First message from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToRivetMetadata {
    /// Actor type name → metadata (fills `GET /actors/names`), in wire order.
    pub prepopulate_actor_names: Option<IndexMap<String, ActorName>>,
    /// JSON text stored as the envoy's metadata.
    pub metadata: Option<String>,
}

impl Wire for ToRivetMetadata {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.option(self.prepopulate_actor_names.as_ref(), |w, m| {
            w.str_map(m, |w, v| v.encode(w))
        })?;
        w.option(self.metadata.as_ref(), |w, s| w.str(s))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            prepopulate_actor_names: r.option(|r| r.str_map(ActorName::decode))?,
            metadata: r.option(Reader::str)?,
        })
    }
}

/// How an actor is started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorConfig {
    /// Actor type name.
    pub name: String,
    /// Serialized key, if any.
    pub key: Option<String>,
    /// ms; time of this allocation.
    #[serde(serialize_with = "view::int")]
    pub create_ts: i64,
    /// Creation input, resent on every start.
    #[serde(serialize_with = "view::opt_hex")]
    pub input: Option<Vec<u8>>,
}

impl Wire for ActorConfig {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.name)?;
        w.option(self.key.as_ref(), |w, s| w.str(s))?;
        w.i64(self.create_ts);
        w.option(self.input.as_ref(), |w, d| w.data(d))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            name: r.str()?,
            key: r.option(Reader::str)?,
            create_ts: r.i64()?,
            input: r.option(Reader::data)?,
        })
    }
}

/// A hibernated WebSocket to restore on start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HibernatingRequest {
    /// Gateway of the socket.
    #[serde(serialize_with = "view::hex")]
    pub gateway_id: GatewayId,
    /// The socket within the gateway.
    #[serde(serialize_with = "view::hex")]
    pub request_id: RequestId,
}

impl Wire for HibernatingRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.bytes(&self.gateway_id);
        w.bytes(&self.request_id);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            gateway_id: r.fixed()?,
            request_id: r.fixed()?,
        })
    }
}

/// One preloaded KV entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreloadedKvEntry {
    /// Key bytes.
    #[serde(serialize_with = "view::hex")]
    pub key: Vec<u8>,
    /// Value bytes.
    #[serde(serialize_with = "view::hex")]
    pub value: Vec<u8>,
    /// Entry metadata.
    pub metadata: KvMetadata,
}

impl Wire for PreloadedKvEntry {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.data(&self.key)?;
        w.data(&self.value)?;
        self.metadata.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            key: r.data()?,
            value: r.data()?,
            metadata: KvMetadata::decode(r)?,
        })
    }
}

/// KV entries sent along with a start so the host can skip start-up reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreloadedKv {
    /// The entries.
    pub entries: Vec<PreloadedKvEntry>,
    /// Keys the preloaded set answers for.
    #[serde(serialize_with = "view::vec_hex")]
    pub requested_get_keys: Vec<Vec<u8>>,
    /// Prefixes the preloaded set answers for.
    #[serde(serialize_with = "view::vec_hex")]
    pub requested_prefixes: Vec<Vec<u8>>,
}

impl Wire for PreloadedKv {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.list(&self.entries, |w, e| e.encode(w))?;
        w.list(&self.requested_get_keys, |w, k| w.data(k))?;
        w.list(&self.requested_prefixes, |w, k| w.data(k))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            entries: r.list(PreloadedKvEntry::decode)?,
            requested_get_keys: r.list(Reader::data)?,
            requested_prefixes: r.list(Reader::data)?,
        })
    }
}

/// Start an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandStartActor {
    /// What to start.
    pub config: ActorConfig,
    /// Hibernated WebSockets to restore.
    pub hibernating_requests: Vec<HibernatingRequest>,
    /// Optional preloaded KV entries.
    pub preloaded_kv: Option<PreloadedKv>,
}

impl Wire for CommandStartActor {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        self.config.encode(w)?;
        w.list(&self.hibernating_requests, |w, h| h.encode(w))?;
        w.option(self.preloaded_kv.as_ref(), |w, p| p.encode(w))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            config: ActorConfig::decode(r)?,
            hibernating_requests: r.list(HibernatingRequest::decode)?,
            preloaded_kv: r.option(PreloadedKv::decode)?,
        })
    }
}

/// Why an actor is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum StopActorReason {
    /// The actor asked to sleep.
    SleepIntent,
    /// The actor asked to stop.
    StopIntent,
    /// The actor is destroyed.
    Destroy,
    /// Reschedule, drain, upgrade or serverless lifespan end.
    GoingAway,
    /// The engine gave up on the host for this actor.
    Lost,
}

impl Wire for StopActorReason {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u8(*self as u8);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::SleepIntent,
            1 => Self::StopIntent,
            2 => Self::Destroy,
            3 => Self::GoingAway,
            4 => Self::Lost,
            t => return Err(bad_tag("StopActorReason", t, r)),
        })
    }
}

/// Stop an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandStopActor {
    /// Why.
    pub reason: StopActorReason,
}

/// A command to the host. Also the wire format of the engine-internal `ActorCommandKeyData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum Command {
    /// Tag 0.
    #[serde(rename = "CommandStartActor")]
    StartActor(CommandStartActor),
    /// Tag 1.
    #[serde(rename = "CommandStopActor")]
    StopActor(CommandStopActor),
}

/// The engine-internal storage encoding of a pending command (same union as [`Command`]).
pub type ActorCommandKeyData = Command;

impl Wire for Command {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        match self {
            Self::StartActor(c) => {
                w.u8(0);
                c.encode(w)
            }
            Self::StopActor(c) => {
                w.u8(1);
                c.reason.encode(w)
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::StartActor(CommandStartActor::decode(r)?),
            1 => Self::StopActor(CommandStopActor {
                reason: StopActorReason::decode(r)?,
            }),
            t => return Err(bad_tag("Command", t, r)),
        })
    }
}

/// A command with its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandWrapper {
    /// Actor, generation and index of the command.
    pub checkpoint: ActorCheckpoint,
    /// The command.
    pub inner: Command,
}

impl Wire for CommandWrapper {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        self.checkpoint.encode(w)?;
        self.inner.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            checkpoint: ActorCheckpoint::decode(r)?,
            inner: Command::decode(r)?,
        })
    }
}

/// What an actor asks of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum ActorIntent {
    /// Tag 0: put me to sleep.
    #[serde(rename = "ActorIntentSleep")]
    Sleep,
    /// Tag 1: stop (destroy) me.
    #[serde(rename = "ActorIntentStop")]
    Stop,
}

/// How an actor stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum StopCode {
    /// Clean stop.
    Ok,
    /// Crash; see the message.
    Error,
}

/// Payload of the `Stopped` state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorStateStopped {
    /// Clean or crashed.
    pub code: StopCode,
    /// Error text for `Error`.
    pub message: Option<String>,
}

/// State reported by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum ActorState {
    /// Tag 0: the actor runs.
    #[serde(rename = "ActorStateRunning")]
    Running,
    /// Tag 1: the actor stopped.
    #[serde(rename = "ActorStateStopped")]
    Stopped(ActorStateStopped),
}

/// Intent event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventActorIntent {
    /// The intent.
    pub intent: ActorIntent,
}

/// State-change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventActorStateUpdate {
    /// The new state.
    pub state: ActorState,
}

/// Alarm event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventActorSetAlarm {
    /// ms wall clock to wake at; `None` clears the alarm.
    #[serde(serialize_with = "view::opt_int")]
    pub alarm_ts: Option<i64>,
}

/// An event from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum Event {
    /// Tag 0.
    #[serde(rename = "EventActorIntent")]
    Intent(EventActorIntent),
    /// Tag 1.
    #[serde(rename = "EventActorStateUpdate")]
    StateUpdate(EventActorStateUpdate),
    /// Tag 2.
    #[serde(rename = "EventActorSetAlarm")]
    SetAlarm(EventActorSetAlarm),
}

impl Wire for Event {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        match self {
            Self::Intent(e) => {
                w.u8(0);
                w.u8(match e.intent {
                    ActorIntent::Sleep => 0,
                    ActorIntent::Stop => 1,
                });
            }
            Self::StateUpdate(e) => {
                w.u8(1);
                match &e.state {
                    ActorState::Running => w.u8(0),
                    ActorState::Stopped(s) => {
                        w.u8(1);
                        w.u8(match s.code {
                            StopCode::Ok => 0,
                            StopCode::Error => 1,
                        });
                        w.option(s.message.as_ref(), |w, m| w.str(m))?;
                    }
                }
            }
            Self::SetAlarm(e) => {
                w.u8(2);
                w.option(e.alarm_ts.as_ref(), |w, t| {
                    w.i64(*t);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::Intent(EventActorIntent {
                intent: match r.u8()? {
                    0 => ActorIntent::Sleep,
                    1 => ActorIntent::Stop,
                    t => return Err(bad_tag("ActorIntent", t, r)),
                },
            }),
            1 => Self::StateUpdate(EventActorStateUpdate {
                state: match r.u8()? {
                    0 => ActorState::Running,
                    1 => ActorState::Stopped(ActorStateStopped {
                        code: match r.u8()? {
                            0 => StopCode::Ok,
                            1 => StopCode::Error,
                            t => return Err(bad_tag("StopCode", t, r)),
                        },
                        message: r.option(Reader::str)?,
                    }),
                    t => return Err(bad_tag("ActorState", t, r)),
                },
            }),
            2 => Self::SetAlarm(EventActorSetAlarm {
                alarm_ts: r.option(Reader::i64)?,
            }),
            t => return Err(bad_tag("Event", t, r)),
        })
    }
}

/// An event with its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventWrapper {
    /// Actor, generation and index of the event.
    pub checkpoint: ActorCheckpoint,
    /// The event.
    pub inner: Event,
}

impl Wire for EventWrapper {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        self.checkpoint.encode(w)?;
        self.inner.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            checkpoint: ActorCheckpoint::decode(r)?,
            inner: Event::decode(r)?,
        })
    }
}

/// Host acknowledgement of processed commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToRivetAckCommands {
    /// Highest processed command checkpoint per actor+generation.
    pub last_command_checkpoints: Vec<ActorCheckpoint>,
}

impl Wire for ToRivetAckCommands {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.list(&self.last_command_checkpoints, |w, c| c.encode(w))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            last_command_checkpoints: r.list(ActorCheckpoint::decode)?,
        })
    }
}

/// Engine acknowledgement of persisted events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToEnvoyAckEvents {
    /// Highest persisted event checkpoint per actor+generation.
    pub last_event_checkpoints: Vec<ActorCheckpoint>,
}

impl Wire for ToEnvoyAckEvents {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.list(&self.last_event_checkpoints, |w, c| c.encode(w))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            last_event_checkpoints: r.list(ActorCheckpoint::decode)?,
        })
    }
}
