//! The durable due-time index at work: alarms, start/stop timeouts, lost thresholds and
//! allocation retries all live under `("timer", due, actor)` and fire after a restart too.
//!
//! Every node scans the index. A local commit that arms an earlier timer wakes the scan at
//! once; timers armed by other nodes are found by a poll at least every [`POLL`]. Firing is a
//! transaction that re-checks the record, so two nodes firing the same timer produce one
//! outcome, and a stale index entry is simply removed.

use std::time::Duration;

use rivet_store::tuple::Element;
use rivet_store::RangeOptions;
use tokio::sync::watch;

use super::{now_ms, After, Shell};
use crate::actor;
use crate::error::DataError;
use crate::id::Id;
use crate::keys;
use crate::lifecycle::{Input, Timestamp};

/// Longest pause between scans.
const POLL: Duration = Duration::from_secs(1);
/// Timers fired per scan before scanning again.
const BATCH: usize = 256;

impl Shell {
    pub(super) async fn timer_task(
        self,
        mut next: watch::Receiver<Option<Timestamp>>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            next.borrow_and_update();
            let fired = match self.fire_due_timers().await {
                Ok(fired) => fired,
                Err(error) => {
                    tracing::warn!(%error, "timer scan failed");
                    0
                }
            };
            if fired == BATCH {
                continue;
            }
            let now = now_ms();
            let wait = match self.earliest_timer().await {
                Ok(Some(due)) => Duration::from_millis(u64::try_from(due - now).unwrap_or(0)),
                Ok(None) => POLL,
                Err(_) => POLL,
            }
            .min(POLL);
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = next.changed() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn earliest_timer(&self) -> Result<Option<Timestamp>, DataError> {
        let (begin, end) = keys::timers().range();
        let first = self
            .inner
            .db
            .txn(|tx| {
                let (begin, end) = (begin.clone(), end.clone());
                async move {
                    tx.get_range(&begin, &end, RangeOptions::new().snapshot().limit(1))
                        .await
                }
            })
            .await?;
        Ok(first
            .first()
            .and_then(|(key, _)| match keys::timers().unpack(key).ok()?.first()? {
                Element::Int(due) => Some(*due),
                _ => None,
            }))
    }

    /// Fires every timer due now (up to [`BATCH`]); returns how many it looked at.
    async fn fire_due_timers(&self) -> Result<usize, DataError> {
        let now = now_ms();
        let space = keys::timers();
        let (begin, _) = space.range();
        let end = space.pack(&(now.saturating_add(1),));
        let rows = self
            .inner
            .db
            .txn(|tx| {
                let (begin, end) = (begin.clone(), end.clone());
                async move {
                    tx.get_range(&begin, &end, RangeOptions::new().snapshot().limit(BATCH))
                        .await
                }
            })
            .await?;
        for (key, _) in &rows {
            let elements = space.unpack(key)?;
            let (Some(Element::Int(due)), Some(actor)) =
                (elements.first(), keys::id_at(&elements, 1))
            else {
                continue;
            };
            if let Err(error) = self.fire_timer(*due, actor).await {
                tracing::warn!(%error, %actor, "timer failed");
            }
        }
        Ok(rows.len())
    }

    async fn fire_timer(&self, due: Timestamp, actor: Id) -> Result<(), DataError> {
        let after = self
            .inner
            .db
            .txn(|tx| async move {
                let record = actor::load_record(&tx, actor).await?;
                if record.and_then(|r| r.next_deadline()) != Some(due) {
                    // Another node fired it first, or the record moved on.
                    tx.clear(&keys::timer(due, actor));
                    return Ok::<_, DataError>(After::default());
                }
                match self.apply_in(&tx, actor, Input::Tick, now_ms()).await {
                    Ok((_, _, after)) => Ok(after),
                    Err(DataError::Rejected(rejection)) => {
                        tracing::debug!(%actor, %rejection, "timer had nothing to do");
                        tx.clear(&keys::timer(due, actor));
                        Ok(After::default())
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        self.perform(after).await;
        Ok(())
    }
}
