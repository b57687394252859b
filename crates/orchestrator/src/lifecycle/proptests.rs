//! Property tests: random but well-formed input sequences (events for the live or stale
//! generations, host disconnects and reconnects, timers, API calls) checked against invariants
//! after every step.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const HOSTS: [&str; 3] = ["h0", "h1", "h2"];

fn host(i: u8) -> HostKey {
    HostKey::from(HOSTS[usize::from(i) % HOSTS.len()])
}

#[derive(Debug, Clone)]
enum EvKind {
    Running,
    StoppedOk,
    StoppedError,
    SleepIntent,
    StopIntent,
    /// Alarm at `now + offset` (may be in the past).
    SetAlarm(i64),
    ClearAlarm,
}

/// An abstract input, turned into a concrete [`Input`] against the current record so that most
/// inputs make sense (events for the live generation with a fresh index, hosts that exist).
#[derive(Debug, Clone)]
enum Choice {
    Allocate(u8),
    AllocFail,
    /// An event for the live generation, index `last + delta` (≤ 0 deltas are duplicates). An
    /// unsolicited Stopped{Ok} or stop intent (which destroy the actor) is only sent when the
    /// salt allows it (1 in 4); otherwise it becomes Running.
    LiveEvent(i64, EvKind, u8),
    /// An event for an arbitrary generation near the current one, from any host.
    StaleEvent(u8, u8, i64, EvKind),
    Wake(bool),
    Sleep,
    Reschedule,
    Destroy,
    /// Disconnect the live host (or host `i` when nothing is live).
    Disconnect(u8),
    Reconnect(u8),
    Lost(u8),
    Drain(u8),
    /// Let time pass to the record's next deadline, then tick.
    TickDue,
    /// Let some milliseconds pass, then tick (often rejected as not due).
    Advance(u32),
}

fn ev_kind() -> impl Strategy<Value = EvKind> {
    prop_oneof![
        6 => Just(EvKind::Running),
        3 => Just(EvKind::StoppedOk),
        2 => Just(EvKind::StoppedError),
        4 => Just(EvKind::SleepIntent),
        1 => Just(EvKind::StopIntent),
        4 => (-2_000i64..40_000).prop_map(EvKind::SetAlarm),
        1 => Just(EvKind::ClearAlarm),
    ]
}

// Weights keep destructive inputs rare enough that sequences spend time in every phase.
fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        12 => (0u8..3).prop_map(Choice::Allocate),
        3 => Just(Choice::AllocFail),
        30 => (-1i64..4, ev_kind(), any::<u8>()).prop_map(|(d, e, s)| Choice::LiveEvent(d, e, s)),
        6 => (0u8..4, 0u8..3, -1i64..10, ev_kind()).prop_map(|(g, h, i, e)| Choice::StaleEvent(g, h, i, e)),
        10 => any::<bool>().prop_map(Choice::Wake),
        4 => Just(Choice::Sleep),
        3 => Just(Choice::Reschedule),
        1 => Just(Choice::Destroy),
        4 => (0u8..3).prop_map(Choice::Disconnect),
        4 => (0u8..3).prop_map(Choice::Reconnect),
        2 => (0u8..3).prop_map(Choice::Lost),
        2 => (0u8..3).prop_map(Choice::Drain),
        10 => Just(Choice::TickDue),
        6 => (0u32..20_000).prop_map(Choice::Advance),
    ]
}

/// A world where the allocator mostly fails: long failure streaks exercise the backoff.
fn flaky_choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        6 => Just(Choice::AllocFail),
        6 => Just(Choice::TickDue),
        1 => (0u8..3).prop_map(Choice::Allocate),
        2 => (0i64..2, ev_kind(), any::<u8>()).prop_map(|(d, e, s)| Choice::LiveEvent(d, e, s)),
        1 => any::<bool>().prop_map(Choice::Wake),
        1 => Just(Choice::Sleep),
        1 => Just(Choice::Reschedule),
    ]
}

/// Thresholds small enough that random sequences reach the backoff cap and every timeout.
const TEST_CONFIG: Config = Config {
    start_timeout: 3_000,
    stop_threshold: 20_000,
    lost_threshold: 2_000,
    allocation_timeout: 1_000,
    backoff_base: 100,
    backoff_max: 1_000,
};

fn event(kind: &EvKind, now: Timestamp) -> ActorEvent {
    match kind {
        EvKind::Running => ActorEvent::Running,
        EvKind::StoppedOk => ActorEvent::Stopped(StopCode::Ok),
        EvKind::StoppedError => ActorEvent::Stopped(StopCode::Error {
            message: Some("boom".into()),
        }),
        EvKind::SleepIntent => ActorEvent::SleepIntent,
        EvKind::StopIntent => ActorEvent::StopIntent,
        EvKind::SetAlarm(offset) => ActorEvent::SetAlarm(Some(now + offset)),
        EvKind::ClearAlarm => ActorEvent::SetAlarm(None),
    }
}

fn live_host_or(rec: &ActorRecord, i: u8) -> HostKey {
    rec.phase.live().map(|(h, _)| h.clone()).unwrap_or(host(i))
}

/// The concrete input and the time it happens at.
fn concretize(rec: &ActorRecord, choice: &Choice, now: Timestamp) -> (Input, Timestamp) {
    let input = match choice {
        Choice::Allocate(i) => Input::Allocated { host: host(*i) },
        Choice::AllocFail => Input::AllocationFailed {
            error: ActorError::NoEnvoys,
        },
        Choice::LiveEvent(delta, kind, salt) => {
            let destructive = matches!(kind, EvKind::StoppedOk | EvKind::StopIntent)
                && !matches!(rec.phase, Phase::Stopping { .. });
            let kind = if destructive && salt % 4 != 0 {
                &EvKind::Running
            } else {
                kind
            };
            let (h, g) = rec
                .phase
                .live()
                .map(|(h, g)| (h.clone(), g))
                .unwrap_or((host(0), rec.generation));
            Input::Event {
                host: h,
                generation: g,
                index: rec.last_event_index.unwrap_or(-1) + delta,
                event: event(kind, now),
            }
        }
        Choice::StaleEvent(g, h, index, kind) => Input::Event {
            host: host(*h),
            generation: rec.generation.saturating_sub(u32::from(*g) % 3) + u32::from(*g / 3),
            index: *index,
            event: event(kind, now),
        },
        Choice::Wake(other) => Input::Wake {
            other_host_available: *other,
        },
        Choice::Sleep => Input::Sleep,
        Choice::Reschedule => Input::Reschedule,
        Choice::Destroy => Input::Destroy,
        Choice::Disconnect(i) => Input::HostDisconnected {
            host: live_host_or(rec, *i),
        },
        Choice::Reconnect(i) => Input::HostReconnected {
            host: live_host_or(rec, *i),
        },
        Choice::Lost(i) => Input::HostLost {
            host: if *i == 0 {
                host(2)
            } else {
                live_host_or(rec, *i)
            },
        },
        Choice::Drain(i) => Input::HostDraining {
            host: live_host_or(rec, *i),
        },
        Choice::TickDue => {
            return (Input::Tick, rec.next_deadline().unwrap_or(now).max(now));
        }
        Choice::Advance(ms) => return (Input::Tick, now + i64::from(*ms)),
    };
    (input, now)
}

/// What the test remembers across steps to check the invariants.
#[derive(Default)]
struct Model {
    /// Generations started and not yet known stopped (by an accepted Stopped or a Lost command).
    live: BTreeSet<Generation>,
    /// Highest generation ever sent a StartActor.
    max_started: Generation,
    /// Last command index per generation.
    last_index: BTreeMap<Generation, i64>,
    /// Backoff delay of the last failed attempt since the last Running.
    last_backoff: Option<i64>,
    /// The actor was destroyed.
    destroyed: bool,
}

/// The record is internally consistent and agrees with the state clients derive.
fn check_valid(rec: &ActorRecord) -> Result<(), TestCaseError> {
    prop_assert_eq!(rec.phase == Phase::Destroyed, rec.destroy_ts.is_some());
    if let Some((_, g)) = rec.phase.live() {
        prop_assert!(
            g >= 1 && g == rec.generation,
            "live gen {} vs {}",
            g,
            rec.generation
        );
        prop_assert!(rec.next_command_index >= 2);
    } else {
        prop_assert!(
            rec.host_lost_at.is_none(),
            "lost deadline without live host"
        );
    }
    if rec.wake_pending {
        let stopping_for_sleep = matches!(
            rec.phase,
            Phase::Stopping {
                reason: StopReason::SleepIntent,
                ..
            }
        );
        prop_assert!(stopping_for_sleep, "wake pending in {:?}", rec.phase);
    }
    match &rec.phase {
        Phase::Running { .. } => {
            prop_assert!(rec.sleep_ts.is_none() && rec.start_ts.is_some());
            prop_assert_eq!(rec.state(), ActorState::Running);
        }
        Phase::Starting { .. } => prop_assert!(rec.sleep_ts.is_none()),
        Phase::Stopping {
            reason: StopReason::SleepIntent,
            ..
        }
        | Phase::Sleeping => prop_assert_eq!(rec.state(), ActorState::Sleeping),
        Phase::Backoff { .. } => {
            prop_assert_eq!(rec.state(), ActorState::Sleeping);
            prop_assert!(rec.error.is_some() && rec.allocation_attempts >= 1);
        }
        Phase::Destroyed => {
            prop_assert_eq!(rec.state(), ActorState::Destroyed);
            prop_assert!(rec.alarm.is_none());
        }
        Phase::Stopping { .. } => prop_assert!(rec.sleep_ts.is_none()),
        Phase::Allocating { .. } => {}
    }
    // Every transient phase has a deadline: nothing can hang.
    let transient = matches!(
        rec.phase,
        Phase::Allocating { .. }
            | Phase::Backoff { .. }
            | Phase::Starting { .. }
            | Phase::Stopping { .. }
    );
    if transient {
        prop_assert!(
            rec.next_deadline().is_some(),
            "no deadline in {:?}",
            rec.phase
        );
    }
    // No alarm lost: a sleeping actor with an alarm is due no later than the alarm.
    if let (Phase::Sleeping, Some(alarm)) = (&rec.phase, rec.alarm) {
        prop_assert!(rec.next_deadline().is_some_and(|d| d <= alarm));
    }
    Ok(())
}

/// Applies one input and checks every invariant. Returns the new record.
fn checked_step(
    config: &Config,
    model: &mut Model,
    rec: &ActorRecord,
    input: Input,
    now: Timestamp,
) -> Result<ActorRecord, TestCaseError> {
    let result = step_with(config, rec, input.clone(), now);
    let (next, effects) = match result {
        Err(rejection) => {
            if model.destroyed {
                prop_assert_eq!(rejection, Rejection::Destroyed);
            }
            return Ok(rec.clone());
        }
        Ok(ok) => ok,
    };
    prop_assert!(!model.destroyed, "destroyed actor accepted {:?}", input);

    // An accepted Stopped ends its generation.
    if let Input::Event {
        generation,
        event: ActorEvent::Stopped(_),
        ..
    } = &input
    {
        model.live.remove(generation);
    }
    for effect in &effects {
        match effect {
            Effect::SendCommand {
                host,
                generation,
                index,
                command,
            } => {
                let last = model.last_index.get(generation).copied().unwrap_or(0);
                prop_assert!(
                    *index > last,
                    "index {} after {} in gen {}",
                    index,
                    last,
                    generation
                );
                model.last_index.insert(*generation, *index);
                match command {
                    Command::StartActor { create_ts } => {
                        prop_assert_eq!(*index, 1);
                        prop_assert_eq!(*create_ts, now);
                        prop_assert!(*generation > model.max_started, "generation did not grow");
                        model.max_started = *generation;
                        prop_assert!(
                            model.live.is_empty(),
                            "start of {} while {:?} live",
                            generation,
                            model.live
                        );
                        model.live.insert(*generation);
                        prop_assert_eq!(next.phase.live(), Some((host, *generation)));
                    }
                    Command::StopActor { reason } => {
                        prop_assert!(
                            model.live.contains(generation),
                            "stop for dead gen {}",
                            generation
                        );
                        if *reason == StopReason::Lost {
                            model.live.remove(generation);
                        }
                    }
                }
            }
            Effect::ReleaseWaiters {
                outcome: WaitOutcome::Ready { host, generation },
            } => {
                prop_assert_eq!(next.ready_target(), Some((host.clone(), *generation)));
            }
            Effect::DeleteActorData | Effect::ClearKeyIndex => {
                prop_assert_eq!(&next.phase, &Phase::Destroyed);
            }
            Effect::ReleaseWaiters { .. } | Effect::RequestAllocation { .. } => {}
        }
    }
    // Never two live generations, and the record agrees with the commands sent.
    prop_assert!(model.live.len() <= 1);
    prop_assert_eq!(
        model.live.iter().next().copied(),
        next.live_generation(),
        "model vs record after {:?}",
        input
    );

    // Backoff grows and is capped.
    if matches!(next.phase, Phase::Running { .. }) {
        model.last_backoff = None;
    }
    if let Phase::Backoff { retry_at } = next.phase {
        if !matches!(rec.phase, Phase::Backoff { .. }) {
            let delay = retry_at - now;
            prop_assert!(delay >= config.backoff_base && delay <= config.backoff_max);
            if let Some(prev) = model.last_backoff {
                prop_assert!(delay >= prev, "backoff shrank {} -> {}", prev, delay);
            }
            model.last_backoff = Some(delay);
        }
    }
    // Entering sleep never leaves a due alarm behind.
    if next.phase == Phase::Sleeping && rec.phase != Phase::Sleeping {
        prop_assert!(
            next.alarm.is_none_or(|a| a > now),
            "due alarm left at sleep"
        );
    }
    check_valid(&next)?;
    if next.phase == Phase::Destroyed {
        model.destroyed = true;
    }
    Ok(next)
}

/// A cooperative world: hosts answer, the allocator finds a host, timers fire. Drives the record
/// until `done` holds, checking invariants on the way.
fn drive(
    config: &Config,
    model: &mut Model,
    mut rec: ActorRecord,
    mut now: Timestamp,
    done: impl Fn(&ActorRecord) -> bool,
) -> Result<ActorRecord, TestCaseError> {
    for _ in 0..20 {
        if done(&rec) {
            return Ok(rec);
        }
        let index = rec.last_event_index.unwrap_or(-1) + 1;
        let input = match &rec.phase {
            Phase::Allocating { .. } => Input::Allocated { host: host(1) },
            Phase::Starting {
                host, generation, ..
            } => Input::Event {
                host: host.clone(),
                generation: *generation,
                index,
                event: ActorEvent::Running,
            },
            Phase::Stopping {
                host, generation, ..
            } => Input::Event {
                host: host.clone(),
                generation: *generation,
                index,
                event: ActorEvent::Stopped(StopCode::Ok),
            },
            Phase::Backoff { retry_at } => {
                now = now.max(*retry_at);
                Input::Tick
            }
            Phase::Running { .. } | Phase::Sleeping => Input::Wake {
                other_host_available: true,
            },
            Phase::Destroyed => break,
        };
        if rec.host_lost_at.is_some() {
            // Reconnect first, so that the cooperative host is reachable.
            rec = checked_step(
                config,
                model,
                &rec,
                Input::HostReconnected {
                    host: rec.phase.live().map(|(h, _)| h.clone()).unwrap_or(host(0)),
                },
                now,
            )?;
            continue;
        }
        now += 1;
        rec = checked_step(config, model, &rec, input, now)?;
    }
    prop_assert!(done(&rec), "did not settle: {:?}", rec.phase);
    Ok(rec)
}

fn run(config: Config, choices: Vec<Choice>, has_key: bool) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let (mut rec, _) = ActorRecord::create(
        CreateActor {
            pool: "default".into(),
            has_key,
            crash_policy: CrashPolicy::Sleep,
        },
        0,
        &config,
    );
    check_valid(&rec)?;
    let mut now = 0;
    for choice in &choices {
        let (input, at) = concretize(&rec, choice, now);
        now = at;
        rec = checked_step(&config, &mut model, &rec, input, now)?;
    }
    // Every actor reaches a valid resting state: woken by a cooperative world it runs…
    if !model.destroyed {
        let mut wake_model = Model {
            live: model.live.clone(),
            max_started: model.max_started,
            last_index: model.last_index.clone(),
            ..Model::default()
        };
        // (A stop or destroy already under way ends in destroyed instead.)
        drive(&config, &mut wake_model, rec.clone(), now, |r| {
            matches!(r.phase, Phase::Running { .. } | Phase::Destroyed)
        })?;
    }
    // …and destroyed, it ends destroyed and stays so.
    if !model.destroyed {
        now += 1;
        rec = checked_step(&config, &mut model, &rec, Input::Destroy, now)?;
        rec = drive(&config, &mut model, rec, now, |r| {
            r.phase == Phase::Destroyed
        })?;
    }
    for input in [
        Input::Wake {
            other_host_available: true,
        },
        Input::Allocated { host: host(0) },
        Input::Tick,
    ] {
        prop_assert_eq!(
            step_with(&config, &rec, input, now + 100_000),
            Err(Rejection::Destroyed)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_sequences_keep_the_invariants(
        choices in prop::collection::vec(choice(), 0..80),
        has_key in any::<bool>(),
    ) {
        run(Config::DEFAULT, choices.clone(), has_key)?;
        run(TEST_CONFIG, choices, has_key)?;
    }

    #[test]
    fn allocation_failure_streaks_back_off_up_to_the_cap(
        choices in prop::collection::vec(flaky_choice(), 0..80),
    ) {
        run(TEST_CONFIG, choices, false)?;
    }

    #[test]
    fn record_cbor_round_trip_after_random_sequence(choices in prop::collection::vec(choice(), 0..40)) {
        let (mut rec, _) = ActorRecord::create(
            CreateActor { pool: "p".into(), has_key: true, crash_policy: CrashPolicy::Sleep },
            0,
            &Config::DEFAULT,
        );
        let mut now = 0;
        for choice in &choices {
            let (input, at) = concretize(&rec, choice, now);
            now = at;
            if let Ok((next, _)) = step(&rec, input, now) {
                rec = next;
            }
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(&rec, &mut bytes).unwrap();
        let back: ActorRecord = ciborium::from_reader(bytes.as_slice()).unwrap();
        prop_assert_eq!(back, rec);
    }
}
