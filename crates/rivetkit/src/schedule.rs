//! Scheduled actions, kept in the actor's storage and woken by the engine's alarm.
//!
//! Entries are saved with the turn that made them (like the state); after every save the
//! earliest due time is given to the engine as the actor's alarm, so a sleeping actor is
//! started when one falls due. An entry is removed in the same save as the state changes of
//! the action it ran: a crash in between runs it again (at least once).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::Error;

/// One scheduled action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    /// Id returned by `after`/`at`, for `cancel`.
    pub id: String,
    /// Due time, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Action to call.
    pub action: String,
    /// CBOR of the argument array.
    #[serde(with = "cbor_bytes")]
    pub args: Vec<u8>,
}

/// Byte strings as CBOR byte strings rather than arrays of numbers.
mod cbor_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let v = ciborium::Value::deserialize(d)?;
        match v {
            ciborium::Value::Bytes(b) => Ok(b),
            _ => Err(serde::de::Error::custom("expected a byte string")),
        }
    }
}

#[derive(Default)]
pub(crate) struct ScheduleState {
    pub entries: Vec<ScheduledEvent>,
    /// Changed since the last save.
    pub dirty: bool,
    /// The alarm last given to the engine (`None` = cleared); `Some(None)`-like "unknown" is
    /// represented by `alarm_known = false`.
    pub alarm: Option<i64>,
    pub alarm_known: bool,
}

impl ScheduleState {
    /// The earliest due time.
    pub fn next_due(&self) -> Option<i64> {
        self.entries.iter().map(|e| e.at_ms).min()
    }

    /// Removes and returns the entries due at `now_ms`, earliest first.
    pub fn take_due(&mut self, now_ms: i64) -> Vec<ScheduledEvent> {
        let (mut due, keep): (Vec<_>, Vec<_>) =
            self.entries.drain(..).partition(|e| e.at_ms <= now_ms);
        self.entries = keep;
        if !due.is_empty() {
            self.dirty = true;
        }
        due.sort_by_key(|e| e.at_ms);
        due
    }
}

/// Schedules actions of the current actor (`ctx.schedule()`).
pub struct Schedule<'a> {
    pub(crate) state: &'a mut ScheduleState,
}

impl Schedule<'_> {
    /// Calls `action` with `args` (a tuple or one value) after `delay`. Returns the entry's id.
    pub fn after<T: Serialize>(
        &mut self,
        delay: Duration,
        action: &str,
        args: &T,
    ) -> Result<String, Error> {
        let at = now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        self.at(at, action, args)
    }

    /// Calls `action` with `args` at `at_ms` (milliseconds since the Unix epoch).
    pub fn at<T: Serialize>(
        &mut self,
        at_ms: i64,
        action: &str,
        args: &T,
    ) -> Result<String, Error> {
        let value = rivet_client_protocol::to_value(args)
            .map_err(|e| Error::internal(format!("schedule arguments not serializable: {e}")))?;
        let id = format!("{:016x}", rand::random::<u64>());
        self.state.entries.push(ScheduledEvent {
            id: id.clone(),
            at_ms,
            action: action.to_string(),
            args: rivet_client_protocol::encode_payload(&value),
        });
        self.state.dirty = true;
        Ok(id)
    }

    /// Cancels a scheduled action; `false` if there is none with this id.
    pub fn cancel(&mut self, id: &str) -> bool {
        let before = self.state.entries.len();
        self.state.entries.retain(|e| e.id != id);
        let removed = self.state.entries.len() != before;
        self.state.dirty |= removed;
        removed
    }

    /// The scheduled actions, earliest first.
    pub fn list(&self) -> Vec<ScheduledEvent> {
        let mut all = self.state.entries.clone();
        all.sort_by_key(|e| e.at_ms);
        all
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
