//! The transition function: one input applied to a copy of the record.

use super::types::{
    ActorError, ActorEvent, ActorRecord, Command, Config, CrashPolicy, Effect, Generation, HostKey,
    Input, Phase, Rejection, StopCode, StopReason, Timestamp, WaitOutcome,
};

/// Applies `input` at `now` with the reference engine's thresholds ([`Config::DEFAULT`]).
pub fn step(
    record: &ActorRecord,
    input: Input,
    now: Timestamp,
) -> Result<(ActorRecord, Vec<Effect>), Rejection> {
    step_with(&Config::DEFAULT, record, input, now)
}

/// Applies `input` at `now` with explicit thresholds. `Err` means nothing changed.
pub fn step_with(
    config: &Config,
    record: &ActorRecord,
    input: Input,
    now: Timestamp,
) -> Result<(ActorRecord, Vec<Effect>), Rejection> {
    let mut tx = Tx {
        config,
        now,
        rec: record.clone(),
        effects: Vec::new(),
    };
    tx.apply(input)?;
    Ok((tx.rec, tx.effects))
}

/// Why a live generation is given up without its Stopped event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abandon {
    /// The host stayed disconnected past the lost threshold.
    Lost,
    /// No Running within the start timeout.
    StartTimeout,
    /// No Stopped within the stop threshold.
    StopTimeout,
    /// A request arrived while the host's socket is closed and another host is available.
    Relocate,
}

struct Tx<'a> {
    config: &'a Config,
    now: Timestamp,
    rec: ActorRecord,
    effects: Vec<Effect>,
}

fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::Allocated { .. } => "allocated",
        Input::AllocationFailed { .. } => "allocation_failed",
        Input::Event { .. } => "event",
        Input::Wake { .. } => "wake",
        Input::Sleep => "sleep",
        Input::Reschedule => "reschedule",
        Input::Destroy => "destroy",
        Input::HostDisconnected { .. } => "host_disconnected",
        Input::HostReconnected { .. } => "host_reconnected",
        Input::HostLost { .. } => "host_lost",
        Input::HostDraining { .. } => "host_draining",
        Input::StartFailed { .. } => "start_failed",
        Input::Tick => "tick",
    }
}

impl Tx<'_> {
    fn not_applicable(&self, input: &'static str) -> Rejection {
        Rejection::NotApplicable {
            input,
            phase: self.rec.phase.kind(),
        }
    }

    /// Whether the live generation runs on `host`.
    fn live_on(&self, host: &HostKey) -> bool {
        self.rec.phase.live().is_some_and(|(h, _)| h == host)
    }

    fn apply(&mut self, input: Input) -> Result<(), Rejection> {
        if self.rec.phase == Phase::Destroyed {
            return Err(Rejection::Destroyed);
        }
        let kind = input_kind(&input);
        match input {
            Input::Allocated { host } => match self.rec.phase {
                Phase::Allocating { .. } => {
                    self.start_generation(host);
                    Ok(())
                }
                _ => Err(self.not_applicable(kind)),
            },
            Input::AllocationFailed { error } => match self.rec.phase {
                Phase::Allocating { .. } => {
                    self.enter_backoff(error);
                    Ok(())
                }
                _ => Err(self.not_applicable(kind)),
            },
            Input::Event {
                host,
                generation,
                index,
                event,
            } => self.on_event(host, generation, index, event),
            Input::Wake {
                other_host_available,
            } => {
                self.wake(other_host_available);
                Ok(())
            }
            Input::Sleep => self.sleep_request(kind),
            Input::Reschedule => self.reschedule(kind),
            Input::Destroy => self.destroy(),
            Input::HostDisconnected { host } => {
                if self.live_on(&host) && self.rec.host_lost_at.is_none() {
                    self.rec.host_lost_at =
                        Some(self.now.saturating_add(self.config.lost_threshold));
                    Ok(())
                } else {
                    Err(self.not_applicable(kind))
                }
            }
            Input::HostReconnected { host } => {
                if self.live_on(&host) && self.rec.host_lost_at.is_some() {
                    // Pending commands are replayed by the shell; nothing restarts.
                    self.rec.host_lost_at = None;
                    self.release_if_ready();
                    Ok(())
                } else {
                    Err(self.not_applicable(kind))
                }
            }
            Input::HostLost { host } => {
                if self.live_on(&host) {
                    self.abandon(Abandon::Lost);
                    Ok(())
                } else {
                    Err(self.not_applicable(kind))
                }
            }
            Input::HostDraining { host } => match &self.rec.phase {
                Phase::Starting { host: h, .. } | Phase::Running { host: h, .. } if *h == host => {
                    self.begin_stop(StopReason::GoingAway);
                    Ok(())
                }
                _ => Err(self.not_applicable(kind)),
            },
            Input::StartFailed { generation, error } => match &self.rec.phase {
                Phase::Starting {
                    host,
                    generation: g,
                    ..
                } if host.is_serverless() && *g == generation => {
                    self.enter_backoff(error);
                    Ok(())
                }
                _ => Err(self.not_applicable(kind)),
            },
            Input::Tick => self.tick(kind),
        }
    }

    // ---- building blocks -------------------------------------------------------------------

    /// Queues a command for the live generation with the next index.
    fn send(&mut self, host: HostKey, generation: Generation, command: Command) {
        let index = self.rec.next_command_index;
        self.rec.next_command_index += 1;
        self.effects.push(Effect::SendCommand {
            host,
            generation,
            index,
            command,
        });
    }

    /// Replaces a serverless stand-in with the host that reported the generation.
    fn adopt(&mut self, host: HostKey) {
        match &mut self.rec.phase {
            Phase::Starting { host: h, .. }
            | Phase::Running { host: h, .. }
            | Phase::Stopping { host: h, .. } => *h = host.clone(),
            _ => return,
        }
        self.rec.last_host = Some(host);
    }

    /// Requests that waited while a running actor's host was away can go now.
    fn release_if_ready(&mut self) {
        if let Some((host, generation)) = self.rec.ready_target() {
            self.release(WaitOutcome::Ready { host, generation });
        }
    }

    fn release(&mut self, outcome: WaitOutcome) {
        self.effects.push(Effect::ReleaseWaiters { outcome });
    }

    /// Asks the allocator for a host. An alarm that is due is consumed by this start.
    fn request_allocation(&mut self) {
        if self.rec.alarm.is_some_and(|a| a <= self.now) {
            self.rec.alarm = None;
        }
        self.rec.wake_pending = false;
        self.rec.host_lost_at = None;
        self.rec.phase = Phase::Allocating {
            since: self.now,
            retry_at: self.now.saturating_add(self.config.allocation_timeout),
        };
        self.effects.push(Effect::RequestAllocation {
            pool: self.rec.pool.clone(),
        });
    }

    /// Sleeping → allocating: `sleep_ts` is cleared on wake.
    fn wake_from_sleep(&mut self) {
        self.rec.sleep_ts = None;
        self.request_allocation();
    }

    fn start_generation(&mut self, host: HostKey) {
        let generation = self.rec.generation.saturating_add(1);
        self.rec.generation = generation;
        self.rec.next_command_index = 1;
        self.rec.last_event_index = None;
        self.rec.host_lost_at = None;
        self.rec.last_host = Some(host.clone());
        // Backoff retries keep `sleep_ts` (the actor "ends up sleeping" while retrying); a host
        // taking the actor ends that.
        self.rec.sleep_ts = None;
        self.rec.phase = Phase::Starting {
            host: host.clone(),
            generation,
            deadline: self.now.saturating_add(self.config.start_timeout),
        };
        self.send(
            host,
            generation,
            Command::StartActor {
                create_ts: self.now,
            },
        );
    }

    fn enter_backoff(&mut self, error: ActorError) {
        self.rec.allocation_attempts = self.rec.allocation_attempts.saturating_add(1);
        let retry_at = self
            .now
            .saturating_add(self.config.backoff(self.rec.allocation_attempts));
        self.rec.phase = Phase::Backoff { retry_at };
        self.rec.host_lost_at = None;
        self.rec.sleep_ts.get_or_insert(self.now);
        self.rec.error = Some(error.clone());
        self.release(WaitOutcome::Failed(error));
    }

    /// Sleeping, unless a wake is pending or the alarm is already due: then start right away.
    fn enter_sleep(&mut self) {
        self.rec.phase = Phase::Sleeping;
        self.rec.host_lost_at = None;
        self.rec.sleep_ts.get_or_insert(self.now);
        let wake = std::mem::take(&mut self.rec.wake_pending);
        if wake || self.rec.alarm.is_some_and(|a| a <= self.now) {
            self.wake_from_sleep();
        }
    }

    fn destroy_now(&mut self) {
        self.rec.phase = Phase::Destroyed;
        self.rec.destroy_ts = Some(self.now);
        self.rec.sleep_ts = None;
        self.rec.alarm = None;
        self.rec.wake_pending = false;
        self.rec.host_lost_at = None;
        self.effects.push(Effect::DeleteActorData);
        if self.rec.has_key {
            self.effects.push(Effect::ClearKeyIndex);
        }
        self.release(WaitOutcome::Destroyed);
    }

    /// The actor failed; its crash policy decides what follows.
    fn crash(&mut self, message: Option<String>) {
        let error = ActorError::Crashed { message };
        self.rec.error = Some(error.clone());
        match self.rec.crash_policy {
            CrashPolicy::Sleep => {
                self.release(WaitOutcome::Failed(error));
                self.enter_sleep();
            }
            CrashPolicy::Destroy => self.destroy_now(),
            CrashPolicy::Restart => self.enter_backoff(error),
        }
    }

    /// Starting/Running → Stopping with a StopActor command.
    fn begin_stop(&mut self, reason: StopReason) {
        let Some((host, generation)) = self.rec.phase.live().map(|(h, g)| (h.clone(), g)) else {
            return;
        };
        if reason == StopReason::SleepIntent {
            self.rec.sleep_ts = Some(self.now);
        }
        self.rec.phase = Phase::Stopping {
            host: host.clone(),
            generation,
            reason,
            deadline: self.now.saturating_add(self.config.stop_threshold),
        };
        self.send(host, generation, Command::StopActor { reason });
    }

    /// Gives up the live generation without its Stopped event: tells the host `Lost` (stored and
    /// replayed if it comes back, so a zombie stops) and moves on as the stop would have.
    fn abandon(&mut self, cause: Abandon) {
        let Some((host, generation)) = self.rec.phase.live().map(|(h, g)| (h.clone(), g)) else {
            return;
        };
        let phase = self.rec.phase.clone();
        self.send(
            host.clone(),
            generation,
            Command::StopActor {
                reason: StopReason::Lost,
            },
        );
        self.rec.host_lost_at = None;
        let error = match cause {
            Abandon::Lost => Some(ActorError::EnvoyConnectionLost { envoy_key: host.0 }),
            Abandon::StartTimeout | Abandon::StopTimeout => Some(ActorError::EnvoyNoResponse),
            Abandon::Relocate => None,
        };
        match phase {
            Phase::Stopping {
                reason: StopReason::Destroy | StopReason::StopIntent,
                ..
            } => self.destroy_now(),
            Phase::Stopping {
                reason: StopReason::GoingAway,
                ..
            } => self.request_allocation(),
            Phase::Stopping { .. } => {
                // Stopping for sleep: the sleep happens; a relocation means someone wants it.
                if cause == Abandon::Relocate {
                    self.rec.wake_pending = true;
                }
                if let Some(error) = error {
                    self.rec.error = Some(error);
                }
                self.enter_sleep();
            }
            _ => match error {
                None => self.request_allocation(),
                Some(error) => {
                    self.rec.error = Some(error.clone());
                    self.release(WaitOutcome::Failed(error));
                    self.enter_sleep();
                }
            },
        }
    }

    // ---- inputs ----------------------------------------------------------------------------

    fn on_event(
        &mut self,
        host: HostKey,
        generation: Generation,
        index: i64,
        event: ActorEvent,
    ) -> Result<(), Rejection> {
        match self.rec.phase.live() {
            Some((h, g)) if *h == host && g == generation => {}
            // A serverless start: the first host to report the generation is its host.
            Some((h, g)) if h.is_serverless() && g == generation && !host.is_serverless() => {
                self.adopt(host.clone());
            }
            _ => return Err(Rejection::StaleEvent { generation, host }),
        }
        if let Some(last) = self.rec.last_event_index {
            if index <= last {
                return Err(Rejection::DuplicateEvent { index, last });
            }
        }
        self.rec.last_event_index = Some(index);
        // An event arrived over the host's socket, so the host is connected again: requests that
        // waited for a running actor's host go now, unless this very event stops the actor.
        let was_running_away = self.rec.host_lost_at.take().is_some()
            && matches!(self.rec.phase, Phase::Running { .. });
        match event {
            ActorEvent::Running => {
                if let Phase::Starting { .. } = self.rec.phase {
                    self.rec.phase = Phase::Running {
                        host: host.clone(),
                        generation,
                        since: self.now,
                    };
                    self.rec.start_ts.get_or_insert(self.now);
                    self.rec.sleep_ts = None;
                    self.rec.error = None;
                    self.rec.allocation_attempts = 0;
                    self.release(WaitOutcome::Ready { host, generation });
                }
            }
            ActorEvent::Stopped(code) => self.on_stopped(code),
            ActorEvent::SleepIntent => {
                if !matches!(self.rec.phase, Phase::Stopping { .. }) {
                    self.begin_stop(StopReason::SleepIntent);
                }
            }
            ActorEvent::StopIntent => {
                if !matches!(self.rec.phase, Phase::Stopping { .. }) {
                    self.begin_stop(StopReason::StopIntent);
                }
            }
            ActorEvent::SetAlarm(alarm) => self.rec.alarm = alarm,
        }
        if was_running_away {
            self.release_if_ready();
        }
        Ok(())
    }

    fn on_stopped(&mut self, code: StopCode) {
        let reason = match &self.rec.phase {
            Phase::Stopping { reason, .. } => Some(*reason),
            _ => None,
        };
        match (reason, code) {
            // Unsolicited: Ok means the actor finished, Error is a crash.
            (None, StopCode::Ok) => self.destroy_now(),
            (None, StopCode::Error { message }) => self.crash(message),
            (Some(StopReason::SleepIntent | StopReason::Lost), code) => {
                if let StopCode::Error { message } = code {
                    self.rec.error = Some(ActorError::Crashed { message });
                }
                self.enter_sleep();
            }
            (Some(StopReason::StopIntent), StopCode::Ok) => self.destroy_now(),
            (Some(StopReason::StopIntent), StopCode::Error { message }) => self.crash(message),
            (Some(StopReason::Destroy), _) => self.destroy_now(),
            (Some(StopReason::GoingAway), _) => self.request_allocation(),
        }
    }

    fn wake(&mut self, other_host_available: bool) {
        let host_down = self.rec.host_lost_at.is_some();
        match &self.rec.phase {
            Phase::Sleeping => self.wake_from_sleep(),
            Phase::Backoff { .. } => self.request_allocation(),
            Phase::Allocating { .. } | Phase::Destroyed => {}
            Phase::Starting { .. } | Phase::Running { .. } if host_down && other_host_available => {
                self.abandon(Abandon::Relocate)
            }
            Phase::Running {
                host, generation, ..
            } => {
                if !host_down {
                    let outcome = WaitOutcome::Ready {
                        host: host.clone(),
                        generation: *generation,
                    };
                    self.release(outcome);
                }
            }
            Phase::Starting { .. } => {}
            Phase::Stopping { reason, .. } => match reason {
                StopReason::SleepIntent | StopReason::GoingAway
                    if host_down && other_host_available =>
                {
                    self.abandon(Abandon::Relocate)
                }
                StopReason::SleepIntent => self.rec.wake_pending = true,
                // Going away restarts anyway; a stop or destroy ends in destroyed.
                _ => {}
            },
        }
    }

    fn sleep_request(&mut self, kind: &'static str) -> Result<(), Rejection> {
        match self.rec.phase {
            Phase::Starting { .. } | Phase::Running { .. } => {
                self.begin_stop(StopReason::SleepIntent);
                Ok(())
            }
            Phase::Allocating { .. } | Phase::Backoff { .. } => {
                self.enter_sleep();
                Ok(())
            }
            _ => Err(self.not_applicable(kind)),
        }
    }

    fn reschedule(&mut self, kind: &'static str) -> Result<(), Rejection> {
        match self.rec.phase {
            Phase::Starting { .. } | Phase::Running { .. } => {
                self.begin_stop(StopReason::GoingAway);
                Ok(())
            }
            Phase::Backoff { .. } => {
                self.request_allocation();
                Ok(())
            }
            _ => Err(self.not_applicable(kind)),
        }
    }

    fn destroy(&mut self) -> Result<(), Rejection> {
        match self.rec.phase {
            Phase::Sleeping | Phase::Allocating { .. } | Phase::Backoff { .. } => {
                self.destroy_now();
                Ok(())
            }
            Phase::Starting { .. } | Phase::Running { .. } => {
                self.begin_stop(StopReason::Destroy);
                Ok(())
            }
            Phase::Stopping {
                reason: StopReason::Destroy,
                ..
            } => Err(Rejection::AlreadyDestroying),
            // A stop is already under way: it now ends in destroyed. The host is not sent a second
            // stop (hosts handle one stop per generation); destroy hooks do not run, exactly as
            // for a sleeping actor that is destroyed without being started.
            Phase::Stopping { .. } => {
                if let Phase::Stopping { reason, .. } = &mut self.rec.phase {
                    *reason = StopReason::Destroy;
                }
                // It will not sleep any more.
                self.rec.sleep_ts = None;
                self.rec.wake_pending = false;
                Ok(())
            }
            Phase::Destroyed => Err(Rejection::Destroyed),
        }
    }

    fn tick(&mut self, kind: &'static str) -> Result<(), Rejection> {
        let now = self.now;
        if self.rec.host_lost_at.is_some_and(|t| t <= now) && self.rec.phase.live().is_some() {
            self.abandon(Abandon::Lost);
            return Ok(());
        }
        match self.rec.phase {
            Phase::Allocating { since, retry_at } if retry_at <= now => {
                // The shell never answered (crashed between commit and allocation): ask again.
                self.rec.phase = Phase::Allocating {
                    since,
                    retry_at: now.saturating_add(self.config.allocation_timeout),
                };
                self.effects.push(Effect::RequestAllocation {
                    pool: self.rec.pool.clone(),
                });
            }
            Phase::Backoff { retry_at } if retry_at <= now => self.request_allocation(),
            Phase::Starting { deadline, .. } if deadline <= now => {
                self.abandon(Abandon::StartTimeout)
            }
            Phase::Stopping { deadline, .. } if deadline <= now => {
                self.abandon(Abandon::StopTimeout)
            }
            Phase::Sleeping if self.rec.alarm.is_some_and(|a| a <= now) => self.wake_from_sleep(),
            _ => return Err(self.not_applicable(kind)),
        }
        Ok(())
    }
}
