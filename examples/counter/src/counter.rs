//! The actor: one number per key, changed by `increment`, pushed to connected clients.

use rivetkit::{actor, Ctx, UserError};
use serde::{Deserialize, Serialize};

/// A counter's state. The struct is what gets saved: after every action that changed it, and
/// before the action's reply leaves, so an acknowledged increment is never lost.
#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    count: i64,
}

// `camelCase`: clients call `increment` and `getCount`, as in npm rivetkit's counter example.
#[actor(rename_all = "camelCase")]
impl Counter {
    /// Adds `amount` (1 when left out) and tells every connection subscribed to `newCount`.
    async fn increment(
        &mut self,
        ctx: &mut Ctx<Self>,
        amount: Option<i64>,
    ) -> Result<i64, UserError> {
        let amount = amount.unwrap_or(1);
        self.count = self.count.checked_add(amount).ok_or_else(|| {
            UserError::with_code("overflow", format!("{} + {amount} overflows", self.count))
        })?;
        ctx.broadcast("newCount", &self.count);
        Ok(self.count)
    }

    /// The current count.
    async fn get_count(&self) -> i64 {
        self.count
    }
}
