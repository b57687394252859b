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
        // Consecutive scans in which something failed: the next scan waits longer, so a store
        // that keeps failing is not hammered in a tight loop.
        let mut failing: u32 = 0;
        loop {
            if *stop.borrow() {
                return;
            }
            // Forget what woke us: a timer armed from now on, even a later one than the last
            // notice, must wake the wait below (the scan sees everything committed before).
            self.inner.next_timer.send_replace(None);
            next.borrow_and_update();
            let (fired, failed) = match self.fire_due_timers().await {
                Ok(counts) => counts,
                Err(error) => {
                    tracing::warn!(%error, "timer scan failed");
                    (0, 1)
                }
            };
            if failed > 0 {
                failing = failing.saturating_add(1);
                let pause = Duration::from_millis(50u64 << failing.min(5)).min(POLL);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                continue;
            }
            failing = 0;
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

    /// Fires every timer due now (up to [`BATCH`]); returns how many it looked at and how many
    /// failed.
    async fn fire_due_timers(&self) -> Result<(usize, usize), DataError> {
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
        let mut failed = 0;
        for (key, _) in &rows {
            let elements = space.unpack(key)?;
            let (Some(Element::Int(due)), Some(actor)) =
                (elements.first(), keys::id_at(&elements, 1))
            else {
                continue;
            };
            if let Err(error) = self.fire_timer(*due, actor).await {
                tracing::warn!(%error, %actor, "timer failed");
                failed += 1;
            }
        }
        Ok((rows.len(), failed))
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
