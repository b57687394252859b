//! Pure host choice for an allocation (envoy-protocol.md §8.6): among the pool's eligible hosts
//! (connected, not draining, pinged recently) only the highest `version` counts, and among those
//! the least-loaded host wins, so actors spread over the pool. No clock or randomness: the shell
//! passes `now` and a tie-break value (e.g. a counter or a random number it drew).

use serde::{Deserialize, Serialize};

use crate::lifecycle::{HostKey, Timestamp};

/// A host is eligible only while its last pong is younger than this (ms).
pub const PING_FRESHNESS_MS: i64 = 10_000;

/// What the allocator knows about one host of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCandidate {
    /// The envoy key.
    pub key: HostKey,
    /// The host's `version` (higher versions take all new actors).
    pub version: u32,
    /// Last time the host answered a ping.
    pub last_ping_ts: Timestamp,
    /// The socket is open.
    pub connected: bool,
    /// The host sent `ToRivetStopping` or is being drained.
    pub draining: bool,
    /// Actors currently assigned to the host (the Envoy JSON's `slots`).
    pub actors: u32,
}

impl HostCandidate {
    /// Whether the host may receive new actors at `now`.
    pub fn eligible(&self, now: Timestamp) -> bool {
        self.connected
            && !self.draining
            && now.saturating_sub(self.last_ping_ts) < PING_FRESHNESS_MS
    }
}

/// Picks the host for a new allocation, or `None` when the pool has no eligible host (the actor
/// then gets [`crate::lifecycle::ActorError::NoEnvoys`]). Ties among equally loaded hosts of
/// the highest version are broken by `tiebreak`.
pub fn choose_host(candidates: &[HostCandidate], now: Timestamp, tiebreak: u64) -> Option<HostKey> {
    let eligible = || candidates.iter().filter(|c| c.eligible(now));
    let version = eligible().map(|c| c.version).max()?;
    let load = eligible()
        .filter(|c| c.version == version)
        .map(|c| c.actors)
        .min()?;
    let mut best: Vec<&HostKey> = eligible()
        .filter(|c| c.version == version && c.actors == load)
        .map(|c| &c.key)
        .collect();
    // Order by key so that the choice depends only on the set of hosts, not on their order.
    best.sort();
    let len = u64::try_from(best.len()).ok()?;
    let pick = usize::try_from(tiebreak % len).ok()?;
    best.get(pick).map(|k| (*k).clone())
}

/// Whether a host other than `current` could take an actor now: the shell passes this as
/// [`crate::lifecycle::Input::Wake::other_host_available`].
pub fn other_host_available(
    candidates: &[HostCandidate],
    now: Timestamp,
    current: &HostKey,
) -> bool {
    candidates
        .iter()
        .any(|c| c.key != *current && c.eligible(now))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn host(key: &str, version: u32, last_ping_ts: Timestamp, actors: u32) -> HostCandidate {
        HostCandidate {
            key: HostKey::from(key),
            version,
            last_ping_ts,
            connected: true,
            draining: false,
            actors,
        }
    }

    #[test]
    fn empty_pool_has_no_host() {
        assert_eq!(choose_host(&[], 0, 0), None);
    }

    #[test]
    fn stale_disconnected_and_draining_hosts_are_skipped() {
        let now = 100_000;
        let mut gone = host("gone", 1, now, 0);
        gone.connected = false;
        let mut leaving = host("leaving", 1, now, 0);
        leaving.draining = true;
        let stale = host("stale", 1, now - PING_FRESHNESS_MS, 0);
        let hosts = [gone, leaving, stale];
        assert_eq!(choose_host(&hosts, now, 7), None);
        let fresh = host("fresh", 1, now - PING_FRESHNESS_MS + 1, 50);
        let mut with_fresh = hosts.to_vec();
        with_fresh.push(fresh);
        assert_eq!(
            choose_host(&with_fresh, now, 7),
            Some(HostKey::from("fresh"))
        );
    }

    #[test]
    fn highest_version_wins_even_when_busier() {
        let hosts = [host("old", 1, 0, 0), host("new", 2, 0, 100)];
        assert_eq!(choose_host(&hosts, 1, 0), Some(HostKey::from("new")));
    }

    #[test]
    fn least_loaded_wins_and_ties_rotate() {
        let hosts = [host("a", 1, 0, 3), host("b", 1, 0, 1), host("c", 1, 0, 1)];
        assert_eq!(choose_host(&hosts, 1, 0), Some(HostKey::from("b")));
        assert_eq!(choose_host(&hosts, 1, 1), Some(HostKey::from("c")));
        assert_eq!(choose_host(&hosts, 1, 2), Some(HostKey::from("b")));
    }

    #[test]
    fn other_host_excludes_the_current_one() {
        let hosts = [host("a", 1, 0, 0)];
        assert!(!other_host_available(&hosts, 1, &HostKey::from("a")));
        assert!(other_host_available(&hosts, 1, &HostKey::from("z")));
    }

    fn candidate() -> impl Strategy<Value = HostCandidate> {
        (
            0u8..6,
            1u32..4,
            0i64..30_000,
            any::<bool>(),
            any::<bool>(),
            0u32..5,
        )
            .prop_map(
                |(k, version, ping, connected, draining, actors)| HostCandidate {
                    key: HostKey(format!("h{k}")),
                    version,
                    last_ping_ts: ping,
                    connected,
                    draining,
                    actors,
                },
            )
    }

    proptest! {
        #[test]
        fn choice_is_eligible_newest_and_least_loaded(
            hosts in prop::collection::vec(candidate(), 0..8),
            tiebreak in any::<u64>(),
        ) {
            let now = 30_000;
            let eligible: Vec<&HostCandidate> = hosts.iter().filter(|c| c.eligible(now)).collect();
            match choose_host(&hosts, now, tiebreak) {
                None => prop_assert!(eligible.is_empty()),
                Some(key) => {
                    let chosen: Vec<&&HostCandidate> = eligible.iter().filter(|c| c.key == key).collect();
                    prop_assert!(!chosen.is_empty(), "chose an ineligible host");
                    let max_version = eligible.iter().map(|c| c.version).max().unwrap();
                    let min_load = eligible
                        .iter()
                        .filter(|c| c.version == max_version)
                        .map(|c| c.actors)
                        .min()
                        .unwrap();
                    prop_assert!(chosen
                        .iter()
                        .any(|c| c.version == max_version && c.actors == min_load));
                }
            }
        }
    }
}
