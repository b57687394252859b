//! The actor: reminders scheduled with `ctx.schedule()`. The schedule is saved with the state
//! and handed to the engine as the actor's alarm, so a reminder fires even if the actor is
//! asleep, or the whole process was restarted, when it falls due.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rivetkit::{actor, Ctx, Error, UserError};
use serde::{Deserialize, Serialize};

/// How far ahead a reminder may be set.
const MAX_AHEAD_MS: i64 = 365 * 24 * 3600 * 1000;
/// How many fired reminders the state keeps.
const FIRED_KEPT: usize = 100;

/// A reminder waiting to fire, as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reminder {
    /// Our id (`r1`, `r2`, …), for `cancel`.
    pub id: String,
    /// What to remind of.
    pub text: String,
    /// When it is due, milliseconds since the Unix epoch.
    pub due_at: i64,
}

/// A reminder that fired: the `reminder` event's payload and an entry of `fired()`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fired {
    /// The reminder's id.
    pub id: String,
    /// What it reminded of.
    pub text: String,
    /// When it was due.
    pub due_at: i64,
    /// When it fired (at or after `due_at`; later if the process was down at the time).
    pub fired_at: i64,
}

/// A pending reminder in the state, with the schedule entry that will fire it.
#[derive(Serialize, Deserialize)]
struct Pending {
    reminder: Reminder,
    schedule_id: String,
}

/// The state: pending reminders (the schedule holds only "call `fire` with this id at that
/// time") and the last fired ones.
#[derive(Default, Serialize, Deserialize)]
pub struct Reminders {
    next_id: u64,
    pending: Vec<Pending>,
    fired: Vec<Fired>,
}

#[actor(rename_all = "camelCase")]
impl Reminders {
    /// Reminds of `text` in `ms` milliseconds.
    async fn remind_in(
        &mut self,
        ctx: &mut Ctx<Self>,
        ms: u64,
        text: String,
    ) -> Result<Reminder, Error> {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        self.add(ctx, now_ms().saturating_add(ms), text)
    }

    /// Reminds of `text` at `unix_ms` (milliseconds since the Unix epoch; a time already
    /// past fires at once).
    async fn remind_at(
        &mut self,
        ctx: &mut Ctx<Self>,
        unix_ms: i64,
        text: String,
    ) -> Result<Reminder, Error> {
        self.add(ctx, unix_ms, text)
    }

    /// Cancels a pending reminder; `false` if there is none with this id.
    async fn cancel(&mut self, ctx: &mut Ctx<Self>, id: String) -> bool {
        let Some(at) = self.pending.iter().position(|p| p.reminder.id == id) else {
            return false;
        };
        let pending = self.pending.remove(at);
        ctx.schedule().cancel(&pending.schedule_id);
        true
    }

    /// Pending reminders, soonest first.
    async fn pending(&self) -> Vec<Reminder> {
        let mut all: Vec<Reminder> = self.pending.iter().map(|p| p.reminder.clone()).collect();
        all.sort_by_key(|r| r.due_at);
        all
    }

    /// The last fired reminders, oldest first.
    async fn fired(&self) -> Vec<Fired> {
        self.fired.clone()
    }

    /// Called by the schedule when reminder `id` is due. Scheduled actions are ordinary
    /// actions, so clients could call it too: they are refused (a scheduled call has no
    /// connection). A reminder already fired or cancelled is ignored, which also makes a
    /// repeated run harmless (the schedule runs an action at least once).
    async fn fire(&mut self, ctx: &mut Ctx<Self>, id: String) -> Result<(), UserError> {
        if ctx.conn().is_some() {
            return Err(UserError::with_code(
                "not_callable",
                "fire is called by the schedule; use remindIn or remindAt",
            ));
        }
        let Some(at) = self.pending.iter().position(|p| p.reminder.id == id) else {
            return Ok(());
        };
        let Reminder { id, text, due_at } = self.pending.remove(at).reminder;
        let fired = Fired {
            id,
            text,
            due_at,
            fired_at: now_ms(),
        };
        // The example's terminal shows it; a real application would notify someone here.
        println!(
            "reminder fired: [{}] {} {:?} (due at {}, fired at {})",
            ctx.key().unwrap_or_default(),
            fired.id,
            fired.text,
            fired.due_at,
            fired.fired_at
        );
        ctx.broadcast("reminder", &fired);
        self.fired.push(fired);
        if self.fired.len() > FIRED_KEPT {
            self.fired.remove(0);
        }
        Ok(())
    }
}

impl Reminders {
    fn add(&mut self, ctx: &mut Ctx<Self>, due_at: i64, text: String) -> Result<Reminder, Error> {
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(UserError::with_code("empty_text", "what should I remind you of?").into());
        }
        if due_at.saturating_sub(now_ms()) > MAX_AHEAD_MS {
            return Err(UserError::with_code("too_far", "at most 365 days ahead").into());
        }
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        // Saved with this action's state change, before the reply leaves.
        let schedule_id = ctx.schedule().at(due_at, "fire", &(id.clone(),))?;
        let reminder = Reminder { id, text, due_at };
        self.pending.push(Pending {
            reminder: reminder.clone(),
            schedule_id,
        });
        Ok(reminder)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(i64::MAX)
}
