//! Plain data of the lifecycle: the stored record, the inputs it accepts, the effects it asks for.
//!
//! Everything here is version-independent (no envoy-protocol wire types) and serde-serializable,
//! so the shell can store the record as CBOR and log inputs and effects as JSON.

use serde::{Deserialize, Serialize};

/// Wall-clock milliseconds since the Unix epoch, as every timestamp on the wire and in the API.
pub type Timestamp = i64;

/// Allocation number of an actor: 1 for the first start, +1 for every new allocation.
pub type Generation = u32;

/// The key an actor host (envoy) connected with; it identifies the host across reconnects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostKey(pub String);

impl HostKey {
    /// Prefix of the stand-in host of a serverless start: the actor is started by an HTTP
    /// request to the application, whose host connects afterwards under a key of its own.
    /// Real keys are `[A-Za-z0-9_-]`, so a stand-in can never collide with one.
    pub const SERVERLESS_PREFIX: &'static str = "serverless:";

    /// A stand-in host for one serverless start request.
    pub fn serverless(request: &str) -> HostKey {
        HostKey(format!("{}{request}", Self::SERVERLESS_PREFIX))
    }

    /// Whether this is a serverless stand-in: the first host of the pool that reports the
    /// generation becomes its host.
    pub fn is_serverless(&self) -> bool {
        self.0.starts_with(Self::SERVERLESS_PREFIX)
    }
}

impl From<&str> for HostKey {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// What an actor does when it crashes (`crash_policy` in the create request and the actor JSON).
///
/// Envoy pools always behave as `Sleep` (and report `"sleep"`), so the shell stores `Sleep` for
/// them whatever was requested; the other values are honoured for completeness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPolicy {
    /// Start again (with allocation backoff).
    Restart,
    /// Sleep with a `crashed` error until the next request or alarm.
    Sleep,
    /// Destroy the actor.
    Destroy,
}

/// The actor's `error` field (engine-api.md §6), externally tagged in snake_case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorError {
    /// No host of the pool is connected and eligible.
    NoEnvoys,
    /// Hosts exist but none can take the actor.
    NoCapacity,
    /// The engine failed internally.
    InternalError,
    /// The host never reported Running (start timeout) or never answered a stop.
    EnvoyNoResponse,
    /// The actor stopped with an error.
    Crashed {
        /// The host's error text, if any.
        message: Option<String>,
    },
    /// The host lost its socket for longer than the lost threshold.
    EnvoyConnectionLost {
        /// The host the actor was running on.
        envoy_key: String,
    },
    /// A serverless pool's application could not start the actor.
    RunnerPoolError {
        /// What went wrong.
        message: String,
        /// `request_failed`, `bad_status`, `bad_content_type`, `stream_ended`, `invalid_metadata`…
        kind: String,
    },
}

/// Why a stop was asked for; mirrors `StopActorReason` of the envoy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The actor (or `POST /actors/{id}/sleep`) asked to sleep.
    SleepIntent,
    /// The actor asked to stop: it ends up destroyed.
    StopIntent,
    /// `DELETE /actors/{id}`.
    Destroy,
    /// Reschedule or drain: start again right after the stop.
    GoingAway,
    /// The engine gave up on the host; the host need not answer.
    Lost,
}

/// How the host reported that an actor stopped; mirrors `StopCode` plus its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCode {
    /// Clean stop.
    Ok,
    /// The actor failed.
    Error {
        /// Error text from the host.
        message: Option<String>,
    },
}

/// The payload of an actor event from the host (envoy-protocol.md §5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorEvent {
    /// `ActorStateUpdate{Running}`.
    Running,
    /// `ActorStateUpdate{Stopped{code, message}}`.
    Stopped(StopCode),
    /// `ActorIntent{Sleep}`.
    SleepIntent,
    /// `ActorIntent{Stop}`.
    StopIntent,
    /// `ActorSetAlarm{alarmTs}`; `None` clears the alarm.
    SetAlarm(Option<Timestamp>),
}

/// Everything that can happen to an actor. The shell turns store callbacks, host messages, API
/// calls and due timers into these and feeds them to [`crate::lifecycle::step`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The allocator picked `host` after a [`Effect::RequestAllocation`].
    Allocated {
        /// The chosen host.
        host: HostKey,
    },
    /// The allocator found no host after a [`Effect::RequestAllocation`]; `error` is what the
    /// actor reports (normally [`ActorError::NoEnvoys`]).
    AllocationFailed {
        /// Error to expose on the actor and to waiting requests.
        error: ActorError,
    },
    /// An event the host sent for this actor, with its checkpoint.
    Event {
        /// The host whose socket delivered the event.
        host: HostKey,
        /// Checkpoint generation.
        generation: Generation,
        /// Checkpoint index (chosen by the host, strictly increasing per generation).
        index: i64,
        /// The event itself.
        event: ActorEvent,
    },
    /// A request wants the actor (gateway). `other_host_available` tells whether the pool has a
    /// connected, eligible host other than the one the actor is assigned to; with it, an actor
    /// whose host's socket is closed is moved at once instead of waiting for the lost threshold.
    Wake {
        /// Whether the allocator currently has an eligible host other than the actor's host.
        other_host_available: bool,
    },
    /// `POST /actors/{id}/sleep`.
    Sleep,
    /// `POST /actors/{id}/reschedule`.
    Reschedule,
    /// `DELETE /actors/{id}`.
    Destroy,
    /// The host's socket closed.
    HostDisconnected {
        /// The host whose socket closed.
        host: HostKey,
    },
    /// The same host key connected again.
    HostReconnected {
        /// The host that came back.
        host: HostKey,
    },
    /// The shell decided at host level that the host is lost (its last ping is older than the
    /// lost threshold). The record also tracks this itself through its own deadline.
    HostLost {
        /// The host that is lost.
        host: HostKey,
    },
    /// The host announced it is shutting down (`ToRivetStopping`), or is drained for a version
    /// upgrade; the shell paces these per the pool's eviction settings.
    HostDraining {
        /// The draining host.
        host: HostKey,
    },
    /// The serverless start request of `generation` failed; the actor backs off and retries.
    StartFailed {
        /// The generation the request started.
        generation: Generation,
        /// What the actor reports.
        error: ActorError,
    },
    /// A deadline of the record ([`ActorRecord::next_deadline`]) is due.
    Tick,
}

/// A command for the host, before the shell adds the actor's static data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `CommandStartActor`. The shell fills `config.name`, `config.key` and `config.input` from
    /// the actor's immutable data and `hibernatingRequests` from the gateway.
    StartActor {
        /// `config.createTs`: the time of this allocation.
        create_ts: Timestamp,
    },
    /// `CommandStopActor`.
    StopActor {
        /// Why.
        reason: StopReason,
    },
}

/// What a waiting gateway request learns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitOutcome {
    /// The actor is connectable on `host` with `generation`.
    Ready {
        /// Host to tunnel to.
        host: HostKey,
        /// Generation the request is for.
        generation: Generation,
    },
    /// The start failed; the gateway answers with this actor error (or re-wakes, bounded).
    Failed(ActorError),
    /// The actor was destroyed (`actor.destroyed_while_waiting_for_ready`).
    Destroyed,
}

/// Something the shell must do once the transition is committed (or, where noted, inside the
/// same transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Store the command under the host's pending commands (inside the transaction, so it is
    /// replayed after a reconnect) and send it after commit.
    SendCommand {
        /// Target host.
        host: HostKey,
        /// Checkpoint generation.
        generation: Generation,
        /// Checkpoint index: 1 for StartActor, then 2, 3… per generation.
        index: i64,
        /// The command.
        command: Command,
    },
    /// Ask the allocator for a host of `pool` (highest version among hosts with a fresh ping,
    /// spreading load) and feed back [`Input::Allocated`] or [`Input::AllocationFailed`].
    RequestAllocation {
        /// The actor's pool (`runner_name_selector`).
        pool: String,
    },
    /// Answer every gateway request waiting for this actor.
    ReleaseWaiters {
        /// What they learn.
        outcome: WaitOutcome,
    },
    /// Delete the actor's KV and SQLite data (after commit; may run in the background).
    DeleteActorData,
    /// Free the actor's key in the key index (inside the same transaction as the record).
    ClearKeyIndex,
}

impl Effect {
    /// Whether the shell must apply this effect inside the transaction that writes the record
    /// (store writes that must be atomic with the transition) rather than after commit.
    /// `SendCommand` is both: persisted as a pending command in the transaction, sent after.
    pub fn in_transaction(&self) -> bool {
        matches!(self, Effect::ClearKeyIndex | Effect::SendCommand { .. })
    }
}

/// Where the actor is in its lifecycle. Phases with a host are *live*: a generation is started and
/// not yet known to be stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for the allocator's answer; `retry_at` re-requests it if the shell never answers.
    Allocating {
        /// When the request was made.
        since: Timestamp,
        /// When to ask again if no answer came.
        retry_at: Timestamp,
    },
    /// Allocation failed; the next attempt is at `retry_at` (`reschedule_ts`).
    Backoff {
        /// Time of the next attempt.
        retry_at: Timestamp,
    },
    /// StartActor sent; waiting for Running.
    Starting {
        /// Host the actor was sent to.
        host: HostKey,
        /// Live generation.
        generation: Generation,
        /// Start timeout: no Running by then → failed.
        deadline: Timestamp,
    },
    /// Running and connectable.
    Running {
        /// Host it runs on.
        host: HostKey,
        /// Live generation.
        generation: Generation,
        /// `connectable_ts`.
        since: Timestamp,
    },
    /// StopActor sent; waiting for Stopped.
    Stopping {
        /// Host it runs on.
        host: HostKey,
        /// Live generation.
        generation: Generation,
        /// What happens after the stop (`Destroy` also when a destroy arrived mid-stop).
        reason: StopReason,
        /// Stop threshold: no Stopped by then → the engine gives up.
        deadline: Timestamp,
    },
    /// Not running; wakes on a request or at its alarm.
    Sleeping,
    /// Gone for good.
    Destroyed,
}

/// Per-actor settings the shell fills from the engine config (the record carries no config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// ms without Running after StartActor before the start counts as failed (reference ~30 s).
    pub start_timeout: i64,
    /// ms a stop may take (`actorStopThreshold`, 30 min).
    pub stop_threshold: i64,
    /// ms after a host's socket closed before its actors are lost (`envoyLostThreshold`).
    pub lost_threshold: i64,
    /// ms to wait for the allocator's answer before asking again.
    pub allocation_timeout: i64,
    /// First allocation retry delay, ms; doubles per failed attempt.
    pub backoff_base: i64,
    /// Cap of the allocation retry delay, ms.
    pub backoff_max: i64,
}

impl Config {
    /// The reference engine's values.
    pub const DEFAULT: Config = Config {
        start_timeout: 30_000,
        stop_threshold: 1_800_000,
        lost_threshold: 15_000,
        allocation_timeout: 10_000,
        backoff_base: 1_000,
        backoff_max: 30_000,
    };

    /// Delay before allocation attempt number `attempt + 1` after `attempt` failures (≥ 1).
    pub fn backoff(&self, attempt: u32) -> i64 {
        let shift = attempt.saturating_sub(1).min(30);
        self.backoff_base
            .saturating_mul(1_i64 << shift)
            .min(self.backoff_max)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Parameters of a new actor (`POST /actors`, `PUT /actors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateActor {
    /// Pool (`runner_name_selector`).
    pub pool: String,
    /// Whether the actor has a key (then destroy frees it).
    pub has_key: bool,
    /// Crash policy as stored (envoy pools: `Sleep`).
    pub crash_policy: CrashPolicy,
}

/// The durable state of one actor's lifecycle. Immutable identity (id, name, key, input,
/// namespace) lives next to it in the store; this holds what changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// Pool (`runner_name_selector`).
    pub pool: String,
    /// Whether the actor holds a key in the key index.
    pub has_key: bool,
    /// Crash policy.
    pub crash_policy: CrashPolicy,
    /// Current phase.
    pub phase: Phase,
    /// Highest generation ever allocated (0 before the first allocation). A live phase always
    /// carries exactly this generation.
    pub generation: Generation,
    /// Next command index for `generation` (StartActor took 1).
    pub next_command_index: i64,
    /// Highest event index accepted for the live generation.
    pub last_event_index: Option<i64>,
    /// Set when the live generation's host closed its socket: the time at which its actors count
    /// as lost unless the same key reconnects first.
    pub host_lost_at: Option<Timestamp>,
    /// Failed allocation attempts since the last Running (drives the backoff).
    pub allocation_attempts: u32,
    /// The one alarm of the actor (`EventActorSetAlarm`).
    pub alarm: Option<Timestamp>,
    /// A wake arrived while stopping for sleep: start the next generation right after Stopped.
    pub wake_pending: bool,
    /// `create_ts`.
    pub create_ts: Timestamp,
    /// `start_ts`: first time the actor ever became running.
    pub start_ts: Option<Timestamp>,
    /// `sleep_ts`.
    pub sleep_ts: Option<Timestamp>,
    /// `destroy_ts`.
    pub destroy_ts: Option<Timestamp>,
    /// `error`.
    pub error: Option<ActorError>,
    /// The host of the last generation (for skip-ready-wait forwarding), kept after it stops.
    pub last_host: Option<HostKey>,
}

/// Coarse state as clients derive it from the actor JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorState {
    /// `destroy_ts` set.
    Destroyed,
    /// `connectable_ts` set.
    Running,
    /// `sleep_ts` set.
    Sleeping,
    /// Anything else: allocating or starting (or stopping, not for sleep).
    Pending,
}

/// Why an input was not applied. An `Err` from [`crate::lifecycle::step`] always means: record
/// unchanged, no effects; the shell skips the write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The actor is destroyed (DELETE answers `{}`, the gateway `actor.not_found`).
    #[error("actor is destroyed")]
    Destroyed,
    /// A destroy is already under way.
    #[error("actor is already being destroyed")]
    AlreadyDestroying,
    /// The event is not for the live generation on its host (stale generation, other host, or no
    /// live generation at all).
    #[error("event for generation {generation} from host {host:?} is stale")]
    StaleEvent {
        /// Generation the event carried.
        generation: Generation,
        /// Host that sent it.
        host: HostKey,
    },
    /// The event index is not above the highest accepted one for this generation.
    #[error("event index {index} is not above {last}")]
    DuplicateEvent {
        /// Index the event carried.
        index: i64,
        /// Highest accepted index.
        last: i64,
    },
    /// The input does not apply in the current phase (e.g. an allocation answer nobody asked for,
    /// a host notice for another host, a tick with nothing due, sleep while sleeping).
    #[error("{input} does not apply while {phase}")]
    NotApplicable {
        /// Input kind.
        input: &'static str,
        /// Phase kind.
        phase: &'static str,
    },
}
