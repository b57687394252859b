//! Between the version-independent lifecycle types and the envoy-protocol wire types.

use rivet_envoy_protocol as proto;

use crate::actor::ActorMeta;
use crate::lifecycle::{ActorEvent, Command, Generation, StopCode, StopReason};

/// A host's event as the lifecycle sees it.
pub fn event_to_lifecycle(event: &proto::Event) -> ActorEvent {
    match event {
        proto::Event::Intent(e) => match e.intent {
            proto::ActorIntent::Sleep => ActorEvent::SleepIntent,
            proto::ActorIntent::Stop => ActorEvent::StopIntent,
        },
        proto::Event::StateUpdate(e) => match &e.state {
            proto::ActorState::Running => ActorEvent::Running,
            proto::ActorState::Stopped(stopped) => ActorEvent::Stopped(match stopped.code {
                proto::StopCode::Ok => StopCode::Ok,
                proto::StopCode::Error => StopCode::Error {
                    message: stopped.message.clone(),
                },
            }),
        },
        proto::Event::SetAlarm(e) => ActorEvent::SetAlarm(e.alarm_ts),
    }
}

/// The wire reason of a stop.
pub fn stop_reason_to_wire(reason: StopReason) -> proto::StopActorReason {
    match reason {
        StopReason::SleepIntent => proto::StopActorReason::SleepIntent,
        StopReason::StopIntent => proto::StopActorReason::StopIntent,
        StopReason::Destroy => proto::StopActorReason::Destroy,
        StopReason::GoingAway => proto::StopActorReason::GoingAway,
        StopReason::Lost => proto::StopActorReason::Lost,
    }
}

/// The wire command for a lifecycle command, with the actor's static data filled in.
pub(crate) fn command_to_wire(
    meta: &ActorMeta,
    input: Option<&[u8]>,
    generation: Generation,
    index: i64,
    command: &Command,
) -> proto::CommandWrapper {
    let inner = match command {
        Command::StartActor { create_ts } => proto::Command::StartActor(proto::CommandStartActor {
            config: proto::ActorConfig {
                name: meta.name.clone(),
                key: meta.key.clone(),
                create_ts: *create_ts,
                input: input.map(<[u8]>::to_vec),
            },
            hibernating_requests: Vec::new(),
            preloaded_kv: None,
        }),
        Command::StopActor { reason } => proto::Command::StopActor(proto::CommandStopActor {
            reason: stop_reason_to_wire(*reason),
        }),
    };
    proto::CommandWrapper {
        checkpoint: proto::ActorCheckpoint {
            actor_id: meta.actor_id.clone(),
            generation,
            index,
        },
        inner,
    }
}
