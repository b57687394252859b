//! Read-only views of an [`ActorRecord`]: the actor JSON's timestamps, the state clients derive,
//! the gateway's readiness answer and the next deadline for the shell's timer index.

use super::types::{
    ActorRecord, ActorState, CreateActor, Effect, Generation, HostKey, Phase, Timestamp,
};

impl Phase {
    /// Short name, for logs and rejections.
    pub fn kind(&self) -> &'static str {
        match self {
            Phase::Allocating { .. } => "allocating",
            Phase::Backoff { .. } => "backoff",
            Phase::Starting { .. } => "starting",
            Phase::Running { .. } => "running",
            Phase::Stopping { .. } => "stopping",
            Phase::Sleeping => "sleeping",
            Phase::Destroyed => "destroyed",
        }
    }

    /// The host and generation of a live phase (started and not known to be stopped).
    pub fn live(&self) -> Option<(&HostKey, Generation)> {
        match self {
            Phase::Starting {
                host, generation, ..
            }
            | Phase::Running {
                host, generation, ..
            }
            | Phase::Stopping {
                host, generation, ..
            } => Some((host, *generation)),
            _ => None,
        }
    }
}

impl ActorRecord {
    /// A freshly created actor: recorded, key reserved by the shell, allocation requested.
    /// Returns the record and its effects (one [`Effect::RequestAllocation`]).
    pub fn create(
        params: CreateActor,
        now: Timestamp,
        config: &super::types::Config,
    ) -> (ActorRecord, Vec<Effect>) {
        let record = ActorRecord {
            pool: params.pool.clone(),
            has_key: params.has_key,
            crash_policy: params.crash_policy,
            phase: Phase::Allocating {
                since: now,
                retry_at: now.saturating_add(config.allocation_timeout),
            },
            generation: 0,
            next_command_index: 1,
            last_event_index: None,
            host_lost_at: None,
            allocation_attempts: 0,
            alarm: None,
            wake_pending: false,
            create_ts: now,
            start_ts: None,
            sleep_ts: None,
            destroy_ts: None,
            error: None,
            last_host: None,
        };
        (
            record,
            vec![Effect::RequestAllocation { pool: params.pool }],
        )
    }

    /// The earliest time at which [`crate::lifecycle::Input::Tick`] has something to do. The
    /// shell keeps this in its durable due-timer index and feeds `Tick` when it passes.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let phase_deadline = match &self.phase {
            Phase::Allocating { retry_at, .. } | Phase::Backoff { retry_at } => Some(*retry_at),
            Phase::Starting { deadline, .. } | Phase::Stopping { deadline, .. } => Some(*deadline),
            Phase::Running { .. } => None,
            Phase::Sleeping => self.alarm,
            Phase::Destroyed => None,
        };
        match (phase_deadline, self.host_lost_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The live generation, if one is started and not known to be stopped.
    pub fn live_generation(&self) -> Option<Generation> {
        self.phase.live().map(|(_, g)| g)
    }

    /// Whether `host` and `generation` are the live generation: the fence for KV writes, SQLite
    /// commits and tunnel traffic coming from a host (a zombie of an older generation fails it).
    pub fn is_current(&self, host: &HostKey, generation: Generation) -> bool {
        self.phase
            .live()
            .is_some_and(|(h, g)| h == host && g == generation)
    }

    /// Where a gateway request can go right now: the host and generation of a running actor
    /// whose host is connected. `None` means "wake and wait" (or not found if destroyed).
    pub fn ready_target(&self) -> Option<(HostKey, Generation)> {
        match &self.phase {
            Phase::Running {
                host, generation, ..
            } if self.host_lost_at.is_none() => Some((host.clone(), *generation)),
            _ => None,
        }
    }

    /// `connectable_ts`: set while running.
    pub fn connectable_ts(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Running { since, .. } => Some(since),
            _ => None,
        }
    }

    /// `reschedule_ts`: the next allocation attempt while retrying with backoff.
    pub fn reschedule_ts(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Backoff { retry_at } => Some(retry_at),
            _ => None,
        }
    }

    /// `pending_allocation_ts`: only legacy pools wait for capacity; envoy pools never set it.
    pub fn pending_allocation_ts(&self) -> Option<Timestamp> {
        None
    }

    /// The state clients derive from the actor JSON (engine-api.md §6).
    pub fn state(&self) -> ActorState {
        if self.destroy_ts.is_some() {
            ActorState::Destroyed
        } else if self.connectable_ts().is_some() {
            ActorState::Running
        } else if self.sleep_ts.is_some() {
            ActorState::Sleeping
        } else {
            ActorState::Pending
        }
    }
}
