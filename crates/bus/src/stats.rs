//! Cumulative counters the engine exports as metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a [`crate::Bus`]'s cumulative counters (since `connect`, shared by its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Messages published, including requests and replies.
    pub published: u64,
    /// Messages handed to subscriptions of this bus (each subscriber counts once; replies
    /// awaited by [`crate::Bus::request`] are not counted).
    pub received: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed with [`crate::BusError::NoResponders`].
    pub no_responders: u64,
    /// Requests that failed with [`crate::BusError::Timeout`].
    pub timeouts: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) no_responders: AtomicU64,
    pub(crate) timeouts: AtomicU64,
}

impl Counters {
    pub(crate) fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BusStats {
        BusStats {
            published: self.published.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            no_responders: self.no_responders.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
        }
    }
}
