//! The in-process driver: a registry lookup and a channel send per subscriber, no copies.

use std::sync::Arc;

use bytes::Bytes;

use crate::registry::Registry;

/// In-process bus state; every clone of the [`crate::Bus`] shares it.
#[derive(Default)]
pub(crate) struct MemoryDriver {
    pub(crate) registry: Arc<Registry>,
}

impl MemoryDriver {
    /// Delivers to local subscribers; returns how many got the message.
    pub(crate) fn publish(&self, subject: &str, reply: Option<Arc<str>>, payload: Bytes) -> usize {
        self.registry.deliver_all(subject, &payload, &reply)
    }
}
