//! Cumulative transaction counters and the commit-latency histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the commit-latency histogram buckets (a final `+Inf` bucket is
/// implied by [`Histogram::count`]).
pub const COMMIT_LATENCY_BOUNDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A snapshot of the store's cumulative counters since `Db::open`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreStats {
    /// Transactions committed with writes (read-only transactions are not counted).
    pub commits: u64,
    /// Commit attempts rejected because of a conflict or a too-old read version.
    pub conflicts: u64,
    /// Times `Db::txn` ran a closure again after a retryable error.
    pub retries: u64,
    /// Latency of commits that reached the driver, successful or not.
    pub commit_latency: Histogram,
}

/// A Prometheus-style histogram snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// `(upper bound in seconds, cumulative count of observations <= bound)`, ascending.
    pub buckets: Vec<(f64, u64)>,
    /// Total number of observations (the `+Inf` bucket).
    pub count: u64,
    /// Sum of all observations in seconds.
    pub sum_seconds: f64,
}

/// The live counters behind [`StoreStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) retries: AtomicU64,
    buckets: [AtomicU64; COMMIT_LATENCY_BOUNDS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Counters {
    /// Records one commit's latency.
    pub(crate) fn observe_commit(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = COMMIT_LATENCY_BOUNDS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// A consistent-enough copy for export (counters are read one by one).
    pub(crate) fn snapshot(&self) -> StoreStats {
        let mut cumulative = 0;
        let buckets = COMMIT_LATENCY_BOUNDS
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            commit_latency: Histogram {
                buckets,
                count: self.count.load(Ordering::Relaxed),
                sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let c = Counters::default();
        c.observe_commit(Duration::from_micros(50));
        c.observe_commit(Duration::from_millis(3));
        c.observe_commit(Duration::from_secs(20));
        let s = c.snapshot().commit_latency;
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.0001, 1));
        assert_eq!(s.buckets[5], (0.005, 2));
        assert_eq!(s.buckets.last().unwrap().1, 2);
        assert!((s.sum_seconds - 20.00305).abs() < 1e-9);
    }
}
