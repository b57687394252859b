//! Unit tests: one per transition of envoy-protocol.md §8–9 and engine-api.md §7.4–7.5, §9.

use super::*;

const A: &str = "host-a";
const B: &str = "host-b";

fn h(key: &str) -> HostKey {
    HostKey::from(key)
}

fn create(has_key: bool, crash_policy: CrashPolicy) -> ActorRecord {
    let (rec, effects) = ActorRecord::create(
        CreateActor {
            pool: "default".into(),
            has_key,
            crash_policy,
        },
        0,
        &Config::DEFAULT,
    );
    assert_eq!(
        effects,
        vec![Effect::RequestAllocation {
            pool: "default".into()
        }]
    );
    rec
}

fn ok(rec: &ActorRecord, input: Input, now: Timestamp) -> (ActorRecord, Vec<Effect>) {
    match step(rec, input.clone(), now) {
        Ok(next) => next,
        Err(e) => panic!("{input:?} at {now} rejected in {:?}: {e}", rec.phase),
    }
}

fn ev(host: &str, generation: Generation, index: i64, event: ActorEvent) -> Input {
    Input::Event {
        host: h(host),
        generation,
        index,
        event,
    }
}

fn cmd(host: &str, generation: Generation, index: i64, command: Command) -> Effect {
    Effect::SendCommand {
        host: h(host),
        generation,
        index,
        command,
    }
}

fn stop(host: &str, generation: Generation, index: i64, reason: StopReason) -> Effect {
    cmd(host, generation, index, Command::StopActor { reason })
}

fn ready(host: &str, generation: Generation) -> Effect {
    Effect::ReleaseWaiters {
        outcome: WaitOutcome::Ready {
            host: h(host),
            generation,
        },
    }
}

fn failed(error: ActorError) -> Effect {
    Effect::ReleaseWaiters {
        outcome: WaitOutcome::Failed(error),
    }
}

fn alloc() -> Effect {
    Effect::RequestAllocation {
        pool: "default".into(),
    }
}

fn destroyed_effects(has_key: bool) -> Vec<Effect> {
    let mut v = vec![Effect::DeleteActorData];
    if has_key {
        v.push(Effect::ClearKeyIndex);
    }
    v.push(Effect::ReleaseWaiters {
        outcome: WaitOutcome::Destroyed,
    });
    v
}

/// Created at 0, allocated to A at 10, Running (event index 0) at 20.
fn running() -> ActorRecord {
    let rec = create(true, CrashPolicy::Sleep);
    let (rec, _) = ok(&rec, Input::Allocated { host: h(A) }, 10);
    let (rec, _) = ok(&rec, ev(A, 1, 0, ActorEvent::Running), 20);
    rec
}

/// `running()`, then a sleep intent (event 1) at 100 and Stopped (event 2) at 200.
fn sleeping() -> ActorRecord {
    let (rec, _) = ok(&running(), ev(A, 1, 1, ActorEvent::SleepIntent), 100);
    let (rec, _) = ok(&rec, ev(A, 1, 2, ActorEvent::Stopped(StopCode::Ok)), 200);
    assert_eq!(rec.phase, Phase::Sleeping);
    rec
}

#[test]
fn create_requests_allocation_and_is_pending() {
    let rec = create(false, CrashPolicy::Sleep);
    assert!(matches!(rec.phase, Phase::Allocating { .. }));
    assert_eq!(rec.state(), ActorState::Pending);
    assert_eq!(rec.create_ts, 0);
    assert_eq!(rec.generation, 0);
    assert_eq!(
        (
            rec.start_ts,
            rec.connectable_ts(),
            rec.sleep_ts,
            rec.destroy_ts
        ),
        (None, None, None, None)
    );
    assert_eq!(rec.pending_allocation_ts(), None);
}

#[test]
fn allocated_sends_start_actor_with_generation_1_index_1() {
    let rec = create(false, CrashPolicy::Sleep);
    let (rec, effects) = ok(&rec, Input::Allocated { host: h(A) }, 10);
    assert_eq!(
        effects,
        vec![cmd(A, 1, 1, Command::StartActor { create_ts: 10 })]
    );
    assert_eq!(
        rec.phase,
        Phase::Starting {
            host: h(A),
            generation: 1,
            deadline: 10 + Config::DEFAULT.start_timeout
        }
    );
    assert_eq!(rec.state(), ActorState::Pending);
    assert_eq!(rec.last_host, Some(h(A)));
}

#[test]
fn running_makes_connectable_and_releases_waiters() {
    let rec = create(false, CrashPolicy::Sleep);
    let (rec, _) = ok(&rec, Input::Allocated { host: h(A) }, 10);
    let (rec, effects) = ok(&rec, ev(A, 1, 0, ActorEvent::Running), 20);
    assert_eq!(effects, vec![ready(A, 1)]);
    assert_eq!(rec.connectable_ts(), Some(20));
    assert_eq!(rec.start_ts, Some(20));
    assert_eq!(rec.state(), ActorState::Running);
    assert_eq!(rec.ready_target(), Some((h(A), 1)));
    assert_eq!(rec.next_deadline(), None);
}

#[test]
fn start_ts_is_the_first_start_and_error_clears_on_next_start() {
    let (rec, _) = ok(
        &running(),
        ev(
            A,
            1,
            1,
            ActorEvent::Stopped(StopCode::Error { message: None }),
        ),
        50,
    );
    assert!(rec.error.is_some());
    let (rec, _) = ok(
        &rec,
        Input::Wake {
            other_host_available: false,
        },
        60,
    );
    let (rec, _) = ok(&rec, Input::Allocated { host: h(B) }, 70);
    let (rec, _) = ok(&rec, ev(B, 2, 0, ActorEvent::Running), 80);
    assert_eq!(rec.start_ts, Some(20));
    assert_eq!(rec.connectable_ts(), Some(80));
    assert_eq!(rec.error, None);
}

#[test]
fn no_pool_gives_no_envoys_error_and_backs_off_with_cap() {
    let cfg = Config::DEFAULT;
    let mut rec = create(false, CrashPolicy::Sleep);
    let mut now = 0;
    let mut delays = Vec::new();
    for _ in 0..8 {
        let (next, effects) = ok(
            &rec,
            Input::AllocationFailed {
                error: ActorError::NoEnvoys,
            },
            now,
        );
        assert_eq!(effects, vec![failed(ActorError::NoEnvoys)]);
        assert_eq!(next.error, Some(ActorError::NoEnvoys));
        assert_eq!(next.state(), ActorState::Sleeping);
        let retry_at = next.reschedule_ts().unwrap();
        assert_eq!(next.next_deadline(), Some(retry_at));
        delays.push(retry_at - now);
        // Nothing happens before the retry time.
        assert!(matches!(
            step(&next, Input::Tick, retry_at - 1),
            Err(Rejection::NotApplicable { .. })
        ));
        now = retry_at;
        let (next, effects) = ok(&next, Input::Tick, now);
        assert_eq!(effects, vec![alloc()]);
        rec = next;
    }
    assert_eq!(
        delays,
        vec![1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
    );
    assert!(delays.iter().all(|d| *d <= cfg.backoff_max));
    // A success resets the backoff.
    let (rec, _) = ok(&rec, Input::Allocated { host: h(A) }, now);
    let (rec, _) = ok(&rec, ev(A, 1, 0, ActorEvent::Running), now);
    assert_eq!(rec.allocation_attempts, 0);
    assert_eq!(rec.error, None);
}

#[test]
fn wake_during_backoff_retries_at_once() {
    let rec = create(false, CrashPolicy::Sleep);
    let (rec, _) = ok(
        &rec,
        Input::AllocationFailed {
            error: ActorError::NoEnvoys,
        },
        0,
    );
    let (rec, effects) = ok(
        &rec,
        Input::Wake {
            other_host_available: true,
        },
        5,
    );
    assert_eq!(effects, vec![alloc()]);
    assert!(matches!(rec.phase, Phase::Allocating { .. }));
}

#[test]
fn lost_allocator_answer_is_requested_again() {
    let rec = create(false, CrashPolicy::Sleep);
    let due = Config::DEFAULT.allocation_timeout;
    assert_eq!(rec.next_deadline(), Some(due));
    let (rec, effects) = ok(&rec, Input::Tick, due);
    assert_eq!(effects, vec![alloc()]);
    assert_eq!(rec.next_deadline(), Some(2 * due));
}

#[test]
fn sleep_intent_stops_then_sleeps_and_wake_starts_next_generation() {
    let (rec, effects) = ok(&running(), ev(A, 1, 1, ActorEvent::SleepIntent), 100);
    assert_eq!(effects, vec![stop(A, 1, 2, StopReason::SleepIntent)]);
    assert_eq!(rec.sleep_ts, Some(100));
    assert_eq!(rec.connectable_ts(), None);
    assert_eq!(rec.state(), ActorState::Sleeping);
    let (rec, effects) = ok(&rec, ev(A, 1, 2, ActorEvent::Stopped(StopCode::Ok)), 200);
    assert_eq!(effects, vec![]);
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.sleep_ts, Some(100));
    assert_eq!(rec.error, None);
    assert_eq!(rec.next_deadline(), None);

    let (rec, effects) = ok(
        &rec,
        Input::Wake {
            other_host_available: false,
        },
        300,
    );
    assert_eq!(effects, vec![alloc()]);
    assert_eq!(rec.sleep_ts, None);
    let (rec, effects) = ok(&rec, Input::Allocated { host: h(B) }, 310);
    assert_eq!(
        effects,
        vec![cmd(B, 2, 1, Command::StartActor { create_ts: 310 })]
    );
    // Events of the new generation start over at any index.
    let (rec, effects) = ok(&rec, ev(B, 2, 0, ActorEvent::Running), 320);
    assert_eq!(effects, vec![ready(B, 2)]);
    assert_eq!(rec.sleep_ts, None);
}

#[test]
fn sleep_api_is_a_sleep_intent() {
    let (rec, effects) = ok(&running(), Input::Sleep, 100);
    assert_eq!(effects, vec![stop(A, 1, 2, StopReason::SleepIntent)]);
    assert_eq!(rec.sleep_ts, Some(100));
    // Asking again while stopping or sleeping changes nothing.
    assert!(matches!(
        step(&rec, Input::Sleep, 101),
        Err(Rejection::NotApplicable { .. })
    ));
    assert!(matches!(
        step(&sleeping(), Input::Sleep, 300),
        Err(Rejection::NotApplicable { .. })
    ));
}

#[test]
fn sleep_during_backoff_stops_the_retries() {
    let rec = create(false, CrashPolicy::Sleep);
    let (rec, _) = ok(
        &rec,
        Input::AllocationFailed {
            error: ActorError::NoEnvoys,
        },
        0,
    );
    let (rec, effects) = ok(&rec, Input::Sleep, 10);
    assert_eq!(effects, vec![]);
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.next_deadline(), None);
    assert_eq!(rec.error, Some(ActorError::NoEnvoys));
}

#[test]
fn stop_intent_ends_destroyed_with_data_deleted_and_key_freed() {
    let (rec, effects) = ok(&running(), ev(A, 1, 1, ActorEvent::StopIntent), 100);
    assert_eq!(effects, vec![stop(A, 1, 2, StopReason::StopIntent)]);
    assert_eq!(rec.state(), ActorState::Pending);
    let (rec, effects) = ok(&rec, ev(A, 1, 2, ActorEvent::Stopped(StopCode::Ok)), 200);
    assert_eq!(effects, destroyed_effects(true));
    assert_eq!(rec.destroy_ts, Some(200));
    assert_eq!(rec.state(), ActorState::Destroyed);
}

#[test]
fn stop_intent_answered_with_error_sleeps_crashed() {
    let (rec, _) = ok(&running(), ev(A, 1, 1, ActorEvent::StopIntent), 100);
    let message = Some("boom".to_owned());
    let (rec, effects) = ok(
        &rec,
        ev(
            A,
            1,
            2,
            ActorEvent::Stopped(StopCode::Error {
                message: message.clone(),
            }),
        ),
        200,
    );
    let error = ActorError::Crashed { message };
    assert_eq!(effects, vec![failed(error.clone())]);
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.error, Some(error));
    assert_eq!(rec.sleep_ts, Some(200));
}

#[test]
fn unsolicited_stopped_ok_destroys() {
    let (rec, effects) = ok(
        &running(),
        ev(A, 1, 1, ActorEvent::Stopped(StopCode::Ok)),
        50,
    );
    assert_eq!(effects, destroyed_effects(true));
    assert_eq!(rec.phase, Phase::Destroyed);
    assert_eq!(rec.destroy_ts, Some(50));
}

#[test]
fn unsolicited_stopped_error_sleeps_with_crashed_error() {
    let message = Some("kaboom".to_owned());
    let (rec, effects) = ok(
        &running(),
        ev(
            A,
            1,
            1,
            ActorEvent::Stopped(StopCode::Error {
                message: message.clone(),
            }),
        ),
        50,
    );
    let error = ActorError::Crashed { message };
    assert_eq!(effects, vec![failed(error.clone())]);
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.sleep_ts, Some(50));
    assert_eq!(rec.error, Some(error));
    // Woken again by the next request.
    let (_, effects) = ok(
        &rec,
        Input::Wake {
            other_host_available: false,
        },
        60,
    );
    assert_eq!(effects, vec![alloc()]);
}

#[test]
fn crash_policies_destroy_and_restart() {
    let crash = ActorEvent::Stopped(StopCode::Error { message: None });
    for (policy, expect_destroyed) in [(CrashPolicy::Destroy, true), (CrashPolicy::Restart, false)]
    {
        let rec = create(false, policy);
        let (rec, _) = ok(&rec, Input::Allocated { host: h(A) }, 10);
        let (rec, _) = ok(&rec, ev(A, 1, 0, ActorEvent::Running), 20);
        let (rec, _) = ok(&rec, ev(A, 1, 1, crash.clone()), 30);
        assert_eq!(
            rec.phase == Phase::Destroyed,
            expect_destroyed,
            "{policy:?}"
        );
        if !expect_destroyed {
            assert_eq!(rec.reschedule_ts(), Some(30 + Config::DEFAULT.backoff_base));
            let (_, effects) = ok(&rec, Input::Tick, 30 + Config::DEFAULT.backoff_base);
            assert_eq!(effects, vec![alloc()]);
        }
    }
}

#[test]
fn destroy_while_running_stops_then_destroys() {
    let (rec, effects) = ok(&running(), Input::Destroy, 100);
    assert_eq!(effects, vec![stop(A, 1, 2, StopReason::Destroy)]);
    assert_eq!(rec.destroy_ts, None);
    let (rec, effects) = ok(
        &rec,
        ev(
            A,
            1,
            1,
            ActorEvent::Stopped(StopCode::Error { message: None }),
        ),
        200,
    );
    assert_eq!(effects, destroyed_effects(true));
    assert_eq!(rec.destroy_ts, Some(200));
}

#[test]
fn destroy_while_starting_sends_destroy_stop() {
    let rec = create(false, CrashPolicy::Sleep);
    let (rec, _) = ok(&rec, Input::Allocated { host: h(A) }, 10);
    let (rec, effects) = ok(&rec, Input::Destroy, 15);
    assert_eq!(effects, vec![stop(A, 1, 2, StopReason::Destroy)]);
    let (rec, effects) = ok(&rec, ev(A, 1, 0, ActorEvent::Stopped(StopCode::Ok)), 20);
    assert_eq!(effects, destroyed_effects(false));
    assert_eq!(rec.phase, Phase::Destroyed);
}

#[test]
fn destroy_while_sleeping_or_allocating_is_immediate() {
    let (rec, effects) = ok(&sleeping(), Input::Destroy, 300);
    assert_eq!(effects, destroyed_effects(true));
    assert_eq!(rec.destroy_ts, Some(300));
    assert_eq!(rec.sleep_ts, None);
    let (rec, effects) = ok(&create(false, CrashPolicy::Sleep), Input::Destroy, 1);
    assert_eq!(effects, destroyed_effects(false));
    // A late allocator answer is refused.
    assert_eq!(
        step(&rec, Input::Allocated { host: h(A) }, 2),
        Err(Rejection::Destroyed)
    );
}

#[test]
fn destroy_while_destroying_or_destroyed_is_rejected() {
    let (rec, _) = ok(&running(), Input::Destroy, 100);
    assert_eq!(
        step(&rec, Input::Destroy, 101),
        Err(Rejection::AlreadyDestroying)
    );
    let (rec, _) = ok(&rec, ev(A, 1, 1, ActorEvent::Stopped(StopCode::Ok)), 200);
    assert_eq!(step(&rec, Input::Destroy, 300), Err(Rejection::Destroyed));
    assert_eq!(
        step(
            &rec,
            Input::Wake {
                other_host_available: true
            },
            300
        ),
        Err(Rejection::Destroyed)
    );
}

#[test]
fn destroy_during_sleep_stop_needs_no_second_command() {
    let (rec, _) = ok(&running(), Input::Sleep, 100);
    let (rec, _) = ok(
        &rec,
        Input::Wake {
            other_host_available: false,
        },
        110,
    );
    let (rec, effects) = ok(&rec, Input::Destroy, 120);
    assert_eq!(effects, vec![]);
    assert!(!rec.wake_pending);
    assert_eq!(rec.sleep_ts, None);
    assert!(rec.is_current(&h(A), 1));
    let (rec, effects) = ok(&rec, ev(A, 1, 1, ActorEvent::Stopped(StopCode::Ok)), 130);
    assert_eq!(effects, destroyed_effects(true));
    assert_eq!(rec.phase, Phase::Destroyed);
}

#[test]
fn reschedule_and_drain_restart_with_next_generation() {
    for input in [Input::Reschedule, Input::HostDraining { host: h(A) }] {
        let (rec, effects) = ok(&running(), input, 100);
        assert_eq!(effects, vec![stop(A, 1, 2, StopReason::GoingAway)]);
        assert_eq!(rec.sleep_ts, None);
        let (rec, effects) = ok(&rec, ev(A, 1, 1, ActorEvent::Stopped(StopCode::Ok)), 200);
        assert_eq!(effects, vec![alloc()]);
        let (rec, effects) = ok(&rec, Input::Allocated { host: h(B) }, 210);
        assert_eq!(
            effects,
            vec![cmd(B, 2, 1, Command::StartActor { create_ts: 210 })]
        );
        assert_eq!(rec.generation, 2);
    }
}

#[test]
fn going_away_with_no_other_host_sleeps_with_no_envoys_and_retries() {
    let (rec, _) = ok(&running(), Input::HostDraining { host: h(A) }, 100);
    let (rec, _) = ok(&rec, ev(A, 1, 1, ActorEvent::Stopped(StopCode::Ok)), 200);
    let (rec, _) = ok(
        &rec,
        Input::AllocationFailed {
            error: ActorError::NoEnvoys,
        },
        200,
    );
    assert_eq!(rec.state(), ActorState::Sleeping);
    assert_eq!(rec.error, Some(ActorError::NoEnvoys));
    assert_eq!(rec.reschedule_ts(), Some(1_200));
}

#[test]
fn drain_of_another_host_or_while_stopping_is_rejected() {
    assert!(matches!(
        step(&running(), Input::HostDraining { host: h(B) }, 100),
        Err(Rejection::NotApplicable { .. })
    ));
    let (rec, _) = ok(&running(), Input::Sleep, 100);
    assert!(matches!(
        step(&rec, Input::HostDraining { host: h(A) }, 101),
        Err(Rejection::NotApplicable { .. })
    ));
}

#[test]
fn stale_generation_and_other_host_events_are_ignored() {
    let (rec, _) = ok(&running(), Input::Reschedule, 100);
    let (rec, _) = ok(&rec, ev(A, 1, 1, ActorEvent::Stopped(StopCode::Ok)), 200);
    let (rec, _) = ok(&rec, Input::Allocated { host: h(B) }, 210);
    // The old generation's late events, even with high indexes.
    for event in [
        ActorEvent::Running,
        ActorEvent::Stopped(StopCode::Ok),
        ActorEvent::SleepIntent,
        ActorEvent::SetAlarm(Some(5)),
    ] {
        assert_eq!(
            step(&rec, ev(A, 1, 99, event.clone()), 220),
            Err(Rejection::StaleEvent {
                generation: 1,
                host: h(A)
            })
        );
        // The right generation from the wrong host.
        assert!(matches!(
            step(&rec, ev(A, 2, 99, event.clone()), 220),
            Err(Rejection::StaleEvent { .. })
        ));
        // A future generation.
        assert!(matches!(
            step(&rec, ev(B, 3, 0, event), 220),
            Err(Rejection::StaleEvent { .. })
        ));
    }
    // Nothing is live while sleeping: every event is stale.
    assert!(matches!(
        step(&sleeping(), ev(A, 1, 50, ActorEvent::Running), 300),
        Err(Rejection::StaleEvent { .. })
    ));
}

#[test]
fn duplicate_and_out_of_order_event_indexes_are_ignored() {
    let rec = running(); // accepted index 0
    let (rec, _) = ok(&rec, ev(A, 1, 5, ActorEvent::SetAlarm(Some(1_000))), 30);
    assert_eq!(rec.last_event_index, Some(5));
    for index in [0, 3, 5] {
        assert_eq!(
            step(&rec, ev(A, 1, index, ActorEvent::Stopped(StopCode::Ok)), 40),
            Err(Rejection::DuplicateEvent { index, last: 5 })
        );
    }
    let (rec, _) = ok(&rec, ev(A, 1, 6, ActorEvent::SetAlarm(None)), 40);
    assert_eq!(rec.alarm, None);
}

#[test]
fn wake_during_sleep_stop_starts_next_generation_right_after_stopped() {
    let (rec, _) = ok(&running(), ev(A, 1, 1, ActorEvent::SleepIntent), 100);
    let (rec, effects) = ok(
        &rec,
        Input::Wake {
            other_host_available: false,
        },
        150,
    );
    assert_eq!(effects, vec![]);
    assert!(rec.wake_pending);
    let (rec, effects) = ok(&rec, ev(A, 1, 2, ActorEvent::Stopped(StopCode::Ok)), 200);
    assert_eq!(effects, vec![alloc()]);
    assert!(matches!(rec.phase, Phase::Allocating { .. }));
    assert_eq!(rec.sleep_ts, None);
    assert!(!rec.wake_pending);
}

#[test]
fn wake_while_running_answers_at_once() {
    let (rec, effects) = ok(
        &running(),
        Input::Wake {
            other_host_available: false,
        },
        100,
    );
    assert_eq!(effects, vec![ready(A, 1)]);
    assert_eq!(rec, running());
}

#[test]
fn host_reconnect_within_threshold_restarts_nothing() {
    let (rec, effects) = ok(&running(), Input::HostDisconnected { host: h(A) }, 1_000);
    assert_eq!(effects, vec![]);
    let lost_at = 1_000 + Config::DEFAULT.lost_threshold;
    assert_eq!(rec.next_deadline(), Some(lost_at));
    assert_eq!(rec.ready_target(), None);
    // Still running from the API's point of view.
    assert_eq!(rec.state(), ActorState::Running);
    assert!(matches!(
        step(&rec, Input::Tick, lost_at - 1),
        Err(Rejection::NotApplicable { .. })
    ));
    let (rec, effects) = ok(&rec, Input::HostReconnected { host: h(A) }, lost_at - 1);
    // Requests that waited meanwhile are released; no command, no new generation.
    assert_eq!(effects, vec![ready(A, 1)]);
    assert_eq!(rec, running());
    assert!(matches!(
        step(&rec, Input::Tick, lost_at),
        Err(Rejection::NotApplicable { .. })
    ));
}

#[test]
fn host_lost_after_threshold_sleeps_with_connection_lost() {
    let (rec, _) = ok(&running(), Input::HostDisconnected { host: h(A) }, 1_000);
    let lost_at = 1_000 + Config::DEFAULT.lost_threshold;
    let (rec, effects) = ok(&rec, Input::Tick, lost_at);
    let error = ActorError::EnvoyConnectionLost {
        envoy_key: A.into(),
    };
    assert_eq!(
        effects,
        vec![stop(A, 1, 2, StopReason::Lost), failed(error.clone())]
    );
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.sleep_ts, Some(lost_at));
    assert_eq!(rec.error, Some(error));
    // Started again, with a new generation, on the next wake.
    let (rec, _) = ok(
        &rec,
        Input::Wake {
            other_host_available: false,
        },
        lost_at + 1,
    );
    let (rec, effects) = ok(&rec, Input::Allocated { host: h(B) }, lost_at + 2);
    assert_eq!(
        effects,
        vec![cmd(
            B,
            2,
            1,
            Command::StartActor {
                create_ts: lost_at + 2
            }
        )]
    );
    assert_eq!(rec.generation, 2);
}

#[test]
fn explicit_host_lost_from_the_shell() {
    let (rec, effects) = ok(&running(), Input::HostLost { host: h(A) }, 500);
    assert_eq!(effects[0], stop(A, 1, 2, StopReason::Lost));
    assert_eq!(rec.phase, Phase::Sleeping);
    assert!(matches!(
        step(&rec, Input::HostLost { host: h(A) }, 501),
        Err(Rejection::NotApplicable { .. })
    ));
}

#[test]
fn lost_while_stopping_completes_the_stop() {
    // Destroy: destroyed.
    let (rec, _) = ok(&running(), Input::Destroy, 100);
    let (rec, effects) = ok(&rec, Input::HostLost { host: h(A) }, 200);
    assert_eq!(effects[0], stop(A, 1, 3, StopReason::Lost));
    assert_eq!(rec.phase, Phase::Destroyed);
    // Going away: restart elsewhere.
    let (rec, _) = ok(&running(), Input::Reschedule, 100);
    let (rec, effects) = ok(&rec, Input::HostLost { host: h(A) }, 200);
    assert_eq!(effects, vec![stop(A, 1, 3, StopReason::Lost), alloc()]);
    assert!(matches!(rec.phase, Phase::Allocating { .. }));
    // Sleep: sleeping.
    let (rec, _) = ok(&running(), Input::Sleep, 100);
    let (rec, _) = ok(&rec, Input::HostLost { host: h(A) }, 200);
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.sleep_ts, Some(100));
}

#[test]
fn request_moves_actor_off_a_closed_host_at_once_when_another_is_connected() {
    let (rec, _) = ok(&running(), Input::HostDisconnected { host: h(A) }, 1_000);
    // No other host: keep waiting for A to come back (no release, no restart).
    let (same, effects) = ok(
        &rec,
        Input::Wake {
            other_host_available: false,
        },
        1_100,
    );
    assert_eq!(effects, vec![]);
    assert_eq!(same, rec);
    // Another host: fence the old generation and reallocate now.
    let (rec, effects) = ok(
        &rec,
        Input::Wake {
            other_host_available: true,
        },
        1_200,
    );
    assert_eq!(effects, vec![stop(A, 1, 2, StopReason::Lost), alloc()]);
    assert_eq!(rec.live_generation(), None);
    let (rec, effects) = ok(&rec, Input::Allocated { host: h(B) }, 1_210);
    assert_eq!(
        effects,
        vec![cmd(B, 2, 1, Command::StartActor { create_ts: 1_210 })]
    );
    // The zombie's events are refused.
    assert!(matches!(
        step(&rec, ev(A, 1, 10, ActorEvent::Stopped(StopCode::Ok)), 1_220),
        Err(Rejection::StaleEvent { .. })
    ));
}

#[test]
fn relocation_while_stopping_for_sleep_restarts_after() {
    let (rec, _) = ok(&running(), Input::Sleep, 100);
    let (rec, _) = ok(&rec, Input::HostDisconnected { host: h(A) }, 150);
    let (rec, effects) = ok(
        &rec,
        Input::Wake {
            other_host_available: true,
        },
        200,
    );
    assert_eq!(effects, vec![stop(A, 1, 3, StopReason::Lost), alloc()]);
    assert_eq!(rec.sleep_ts, None);
}

#[test]
fn alarm_fires_while_sleeping() {
    let (rec, _) = ok(
        &running(),
        ev(A, 1, 1, ActorEvent::SetAlarm(Some(5_000))),
        50,
    );
    let (rec, _) = ok(&rec, ev(A, 1, 2, ActorEvent::SleepIntent), 100);
    let (rec, effects) = ok(&rec, ev(A, 1, 3, ActorEvent::Stopped(StopCode::Ok)), 200);
    assert_eq!(effects, vec![]);
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.next_deadline(), Some(5_000));
    assert!(matches!(
        step(&rec, Input::Tick, 4_999),
        Err(Rejection::NotApplicable { .. })
    ));
    let (rec, effects) = ok(&rec, Input::Tick, 5_000);
    assert_eq!(effects, vec![alloc()]);
    assert_eq!(rec.alarm, None);
    assert_eq!(rec.sleep_ts, None);
    let (_, effects) = ok(&rec, Input::Allocated { host: h(A) }, 5_010);
    assert_eq!(
        effects,
        vec![cmd(A, 2, 1, Command::StartActor { create_ts: 5_010 })]
    );
}

#[test]
fn alarm_already_due_at_sleep_restarts_immediately() {
    let (rec, _) = ok(&running(), ev(A, 1, 1, ActorEvent::SetAlarm(Some(150))), 50);
    let (rec, _) = ok(&rec, ev(A, 1, 2, ActorEvent::SleepIntent), 100);
    let (rec, effects) = ok(&rec, ev(A, 1, 3, ActorEvent::Stopped(StopCode::Ok)), 200);
    assert_eq!(effects, vec![alloc()]);
    assert!(matches!(rec.phase, Phase::Allocating { .. }));
    assert_eq!(rec.alarm, None);
}

#[test]
fn cleared_alarm_does_not_wake() {
    let (rec, _) = ok(&running(), ev(A, 1, 1, ActorEvent::SetAlarm(Some(150))), 50);
    let (rec, _) = ok(&rec, ev(A, 1, 2, ActorEvent::SetAlarm(None)), 60);
    let (rec, _) = ok(&rec, ev(A, 1, 3, ActorEvent::SleepIntent), 100);
    let (rec, effects) = ok(&rec, ev(A, 1, 4, ActorEvent::Stopped(StopCode::Ok)), 200);
    assert_eq!(effects, vec![]);
    assert_eq!(rec.next_deadline(), None);
}

#[test]
fn start_timeout_fails_the_start() {
    let rec = create(false, CrashPolicy::Sleep);
    let (rec, _) = ok(&rec, Input::Allocated { host: h(A) }, 10);
    let deadline = 10 + Config::DEFAULT.start_timeout;
    assert_eq!(rec.next_deadline(), Some(deadline));
    let (rec, effects) = ok(&rec, Input::Tick, deadline);
    assert_eq!(
        effects,
        vec![
            stop(A, 1, 2, StopReason::Lost),
            failed(ActorError::EnvoyNoResponse)
        ]
    );
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.error, Some(ActorError::EnvoyNoResponse));
    // A Running that comes too late is stale.
    assert!(matches!(
        step(&rec, ev(A, 1, 0, ActorEvent::Running), deadline + 1),
        Err(Rejection::StaleEvent { .. })
    ));
}

#[test]
fn stop_threshold_gives_up_on_the_stop() {
    let (rec, _) = ok(&running(), Input::Sleep, 100);
    let deadline = 100 + Config::DEFAULT.stop_threshold;
    assert_eq!(rec.next_deadline(), Some(deadline));
    let (rec, effects) = ok(&rec, Input::Tick, deadline);
    assert_eq!(effects, vec![stop(A, 1, 3, StopReason::Lost)]);
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.error, Some(ActorError::EnvoyNoResponse));
}

#[test]
fn command_indexes_count_per_generation() {
    let (rec, e1) = ok(&running(), Input::Sleep, 100);
    let (rec, e2) = ok(&rec, Input::HostLost { host: h(A) }, 200);
    let indexes: Vec<i64> = e1
        .iter()
        .chain(e2.iter())
        .filter_map(|e| match e {
            Effect::SendCommand { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(indexes, vec![2, 3]);
    let (rec, _) = ok(
        &rec,
        Input::Wake {
            other_host_available: false,
        },
        300,
    );
    let (_, e3) = ok(&rec, Input::Allocated { host: h(A) }, 300);
    assert_eq!(
        e3,
        vec![cmd(A, 2, 1, Command::StartActor { create_ts: 300 })]
    );
}

#[test]
fn unexpected_inputs_are_rejected_without_change() {
    let rec = running();
    for input in [
        Input::Allocated { host: h(B) },
        Input::AllocationFailed {
            error: ActorError::NoEnvoys,
        },
        Input::HostDisconnected { host: h(B) },
        Input::HostReconnected { host: h(A) },
        Input::Tick,
    ] {
        assert!(
            matches!(
                step(&rec, input.clone(), 100),
                Err(Rejection::NotApplicable { .. })
            ),
            "{input:?}"
        );
    }
}

#[test]
fn error_json_matches_the_api_shape() {
    let json = |e: &ActorError| serde_json::to_string(e).unwrap();
    assert_eq!(json(&ActorError::NoEnvoys), r#""no_envoys""#);
    assert_eq!(json(&ActorError::EnvoyNoResponse), r#""envoy_no_response""#);
    assert_eq!(
        json(&ActorError::Crashed {
            message: Some("kaboom".into())
        }),
        r#"{"crashed":{"message":"kaboom"}}"#
    );
    assert_eq!(
        json(&ActorError::EnvoyConnectionLost {
            envoy_key: "k".into()
        }),
        r#"{"envoy_connection_lost":{"envoy_key":"k"}}"#
    );
    assert_eq!(
        serde_json::to_string(&CrashPolicy::Sleep).unwrap(),
        r#""sleep""#
    );
}

#[test]
fn record_round_trips_through_cbor() {
    let (rec, _) = ok(&running(), Input::HostDisconnected { host: h(A) }, 1_000);
    let (rec, _) = ok(&rec, Input::Sleep, 1_001);
    let mut bytes = Vec::new();
    ciborium::into_writer(&rec, &mut bytes).unwrap();
    let back: ActorRecord = ciborium::from_reader(bytes.as_slice()).unwrap();
    assert_eq!(back, rec);
}

/// §9.3: the outcome of `Stopped{code}` for every stop reason, as a table.
#[test]
fn stopped_outcome_table() {
    let crashed = Some(ActorError::Crashed {
        message: Some("x".into()),
    });
    let error = StopCode::Error {
        message: Some("x".into()),
    };
    // (how the stop started, code, expected phase kind, expected error)
    let table: Vec<(Input, StopCode, &str, Option<ActorError>)> = vec![
        (Input::Sleep, StopCode::Ok, "sleeping", None),
        (Input::Sleep, error.clone(), "sleeping", crashed.clone()),
        (Input::Destroy, StopCode::Ok, "destroyed", None),
        (Input::Destroy, error.clone(), "destroyed", None),
        (Input::Reschedule, StopCode::Ok, "allocating", None),
        (Input::Reschedule, error.clone(), "allocating", None),
        (
            ev(A, 1, 1, ActorEvent::StopIntent),
            StopCode::Ok,
            "destroyed",
            None,
        ),
        (
            ev(A, 1, 1, ActorEvent::StopIntent),
            error.clone(),
            "sleeping",
            crashed.clone(),
        ),
    ];
    for (begin, code, phase, expected_error) in table {
        let (rec, _) = ok(&running(), begin.clone(), 100);
        assert!(matches!(rec.phase, Phase::Stopping { .. }), "{begin:?}");
        let (rec, _) = ok(&rec, ev(A, 1, 5, ActorEvent::Stopped(code.clone())), 200);
        assert_eq!(rec.phase.kind(), phase, "{begin:?} {code:?}");
        assert_eq!(rec.error, expected_error, "{begin:?} {code:?}");
        assert_eq!(rec.live_generation(), None);
    }
}

#[test]
fn events_while_stopping_are_accepted_but_change_nothing_but_the_alarm() {
    let (rec, _) = ok(&running(), Input::Sleep, 100);
    for (index, event) in [
        (1, ActorEvent::Running),
        (2, ActorEvent::SleepIntent),
        (3, ActorEvent::StopIntent),
    ] {
        let (next, effects) = ok(&rec, ev(A, 1, index, event), 110);
        assert_eq!(effects, vec![]);
        assert_eq!(next.phase, rec.phase);
        assert_eq!(next.last_event_index, Some(index));
    }
    // Sleep hooks may persist a schedule: the alarm set during the stop counts.
    let (rec, _) = ok(&rec, ev(A, 1, 4, ActorEvent::SetAlarm(Some(9_000))), 120);
    let (rec, _) = ok(&rec, ev(A, 1, 5, ActorEvent::Stopped(StopCode::Ok)), 130);
    assert_eq!(rec.next_deadline(), Some(9_000));
}

#[test]
fn an_event_from_a_closed_host_means_it_is_back() {
    let (rec, _) = ok(&running(), Input::HostDisconnected { host: h(A) }, 1_000);
    assert!(matches!(
        step(&rec, Input::HostDisconnected { host: h(A) }, 1_001),
        Err(Rejection::NotApplicable { .. })
    ));
    let (rec, effects) = ok(&rec, ev(A, 1, 1, ActorEvent::SetAlarm(None)), 1_002);
    assert_eq!(effects, vec![ready(A, 1)]);
    assert_eq!(rec.host_lost_at, None);
    assert_eq!(rec.ready_target(), Some((h(A), 1)));
}

#[test]
fn wake_while_stopping_for_destroy_or_going_away_changes_nothing() {
    for begin in [Input::Destroy, Input::Reschedule] {
        let (rec, _) = ok(&running(), begin, 100);
        let (next, effects) = ok(
            &rec,
            Input::Wake {
                other_host_available: true,
            },
            110,
        );
        assert_eq!(effects, vec![]);
        assert_eq!(next, rec);
    }
}

#[test]
fn reschedule_retries_a_backoff_and_is_rejected_while_sleeping() {
    let rec = create(false, CrashPolicy::Sleep);
    let (rec, _) = ok(
        &rec,
        Input::AllocationFailed {
            error: ActorError::NoEnvoys,
        },
        0,
    );
    let (_, effects) = ok(&rec, Input::Reschedule, 10);
    assert_eq!(effects, vec![alloc()]);
    assert!(matches!(
        step(&sleeping(), Input::Reschedule, 300),
        Err(Rejection::NotApplicable { .. })
    ));
}

#[test]
fn lost_while_starting_fails_waiters_and_sleeps() {
    let rec = create(false, CrashPolicy::Sleep);
    let (rec, _) = ok(&rec, Input::Allocated { host: h(A) }, 10);
    let (rec, _) = ok(&rec, Input::HostDisconnected { host: h(A) }, 20);
    let lost_at = 20 + Config::DEFAULT.lost_threshold;
    assert_eq!(rec.next_deadline(), Some(lost_at));
    let (rec, effects) = ok(&rec, Input::Tick, lost_at);
    let error = ActorError::EnvoyConnectionLost {
        envoy_key: A.into(),
    };
    assert_eq!(
        effects,
        vec![stop(A, 1, 2, StopReason::Lost), failed(error.clone())]
    );
    assert_eq!(rec.phase, Phase::Sleeping);
    assert_eq!(rec.start_ts, None);
}

// ---- serverless stand-in hosts ------------------------------------------------------------------

#[test]
fn a_serverless_start_is_adopted_by_the_first_host_reporting_the_generation() {
    let rec = create(false, CrashPolicy::Sleep);
    let stand_in = HostKey::serverless("req1");
    let (rec, _) = ok(
        &rec,
        Input::Allocated {
            host: stand_in.clone(),
        },
        1,
    );
    assert!(rec.is_current(&stand_in, 1));
    // Another generation from a real host is stale; the right one adopts.
    assert!(matches!(
        step(&rec, ev(A, 2, 0, ActorEvent::Running), 2),
        Err(Rejection::StaleEvent { .. })
    ));
    let (rec, effects) = ok(&rec, ev(A, 1, 0, ActorEvent::Running), 3);
    assert_eq!(effects, vec![ready(A, 1)]);
    assert!(rec.is_current(&h(A), 1));
    assert_eq!(rec.last_host, Some(h(A)));
    // Once adopted, another host is a stranger.
    assert!(matches!(
        step(&rec, ev(B, 1, 1, ActorEvent::SleepIntent), 4),
        Err(Rejection::StaleEvent { .. })
    ));
}

#[test]
fn a_failed_serverless_start_backs_off_with_the_pool_error() {
    let rec = create(false, CrashPolicy::Sleep);
    let (rec, _) = ok(
        &rec,
        Input::Allocated {
            host: HostKey::serverless("r"),
        },
        1,
    );
    let error = ActorError::RunnerPoolError {
        message: "503".into(),
        kind: "bad_status".into(),
    };
    // Only for the generation the request started.
    assert!(step(
        &rec,
        Input::StartFailed {
            generation: 2,
            error: error.clone()
        },
        2
    )
    .is_err());
    let (rec, effects) = ok(
        &rec,
        Input::StartFailed {
            generation: 1,
            error: error.clone(),
        },
        2,
    );
    assert_eq!(effects, vec![failed(error.clone())]);
    assert_eq!(rec.error, Some(error));
    assert!(matches!(rec.phase, Phase::Backoff { .. }));
    assert_eq!(
        serde_json::to_value(&rec.error).unwrap(),
        serde_json::json!({"runner_pool_error": {"message": "503", "kind": "bad_status"}})
    );
}
