//! The actor lifecycle as a pure state machine (ARCHITECTURE.md, principle 1).
//!
//! [`step`] takes the stored [`ActorRecord`], one [`Input`] and the current time, and returns the
//! new record plus the [`Effect`]s the shell performs once the record is committed. It does no
//! I/O, reads no clock and draws no random numbers: time comes in as `now`, host choice comes in
//! as [`Input::Allocated`] / [`Input::AllocationFailed`] after an [`Effect::RequestAllocation`].
//!
//! Contract with the shell:
//! - `Err(Rejection)` means the input changed nothing: do not write, perform nothing.
//! - Timers are not effects: after every committed step the shell (re)indexes the record under
//!   [`ActorRecord::next_deadline`] and feeds [`Input::Tick`] when that time passes. A `Tick`
//!   with nothing due is rejected, so spurious or duplicate timer firings are harmless.
//! - Gateway waiters: register the waiter, then step [`Input::Wake`]; [`Effect::ReleaseWaiters`]
//!   (now or in a later step) answers it. `ReleaseWaiters` may be emitted with nobody waiting.
//! - Generation fencing: every live phase carries the record's `generation`; KV, SQLite and
//!   tunnel traffic from any other generation must be refused by the shell
//!   ([`ActorRecord::is_current`]); events are refused here ([`Rejection::StaleEvent`],
//!   [`Rejection::DuplicateEvent`]). Refused events should still be acknowledged to the host so
//!   that it stops re-sending them.
//! - Allocation: [`Effect::RequestAllocation`] → the shell picks a host
//!   ([`crate::allocation::choose_host`]) and steps [`Input::Allocated`], or
//!   [`Input::AllocationFailed`] with [`ActorError::NoEnvoys`] when the pool has no eligible host
//!   (waiters get that error at once; retries back off, capped). The generation is only bumped
//!   when a host is given.
//! - Hosts: the shell fans host-level news out to the host's actors: [`Input::HostDisconnected`]
//!   (socket closed), [`Input::HostReconnected`] (same key back; the shell replays un-acked
//!   commands, nothing restarts), [`Input::HostDraining`] (paced GoingAway evictions). The lost
//!   threshold is tracked per actor as a deadline; [`Input::HostLost`] is there for a shell that
//!   prefers to decide it per host.

mod record;
mod transitions;
mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use transitions::{step, step_with};
pub use types::{
    ActorError, ActorEvent, ActorRecord, ActorState, Command, Config, CrashPolicy, CreateActor,
    Effect, Generation, HostKey, Input, Phase, Rejection, StopCode, StopReason, Timestamp,
    WaitOutcome,
};
