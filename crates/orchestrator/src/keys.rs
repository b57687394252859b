//! Where actor and host data live in the store (ARCHITECTURE.md, storage layout). Every key is a
//! tuple; ids pack as (uuid, label) like namespace keys, so a prefix is a range scan.
//!
//! - `("actor", id, "meta")` → [`crate::actor::ActorMeta`] JSON (immutable identity)
//! - `("actor", id, "input")` → the creation input bytes (absent when none)
//! - `("actor", id, "rec")` → [`crate::lifecycle::ActorRecord`] JSON (what changes)
//! - `("actor_key", ns, name, key)` → id text: the key index of non-destroyed actors
//! - `("actor_name", ns, name, create_ts, id)` → empty: listing by name, newest last
//! - `("actor_names", ns, name)` → metadata JSON reported by hosts (`GET /actors/names`)
//! - `("timer", due_ms, id)` → empty: the durable due-time index (alarms and lifecycle deadlines)
//! - `("envoy", ns, envoy_key)` → [`crate::envoy::EnvoyRecord`] JSON
//! - `("envoy_slots", ns, envoy_key)` → little-endian i64, actors assigned (atomic add)
//! - `("pool_envoy", ns, pool, envoy_key)` → empty: the hosts of a pool
//! - `("envoy_actor", ns, envoy_key, id)` → empty: actors whose live generation is on the host
//! - `("envoy_cmd", ns, envoy_key, id, generation, index)` → command JSON, until acknowledged
//! - `("pool_protocol", ns, pool)` → the pool's actor-host protocol version (decimal text)

use rivet_store::tuple::{self, Subspace};

use crate::id::Id;

pub(crate) fn actor_meta(id: Id) -> Vec<u8> {
    tuple::pack(&("actor", id, "meta"))
}

pub(crate) fn actor_input(id: Id) -> Vec<u8> {
    tuple::pack(&("actor", id, "input"))
}

pub(crate) fn actor_record(id: Id) -> Vec<u8> {
    tuple::pack(&("actor", id, "rec"))
}

pub(crate) fn actor_key(ns: Id, name: &str, key: &str) -> Vec<u8> {
    tuple::pack(&("actor_key", ns, name, key))
}

pub(crate) fn actor_by_name(ns: Id, name: &str) -> Subspace {
    Subspace::new(&("actor_name", ns, name))
}

pub(crate) fn actor_names(ns: Id) -> Subspace {
    Subspace::new(&("actor_names", ns))
}

pub(crate) fn timers() -> Subspace {
    Subspace::new(&("timer",))
}

pub(crate) fn timer(due: i64, id: Id) -> Vec<u8> {
    timers().pack(&(due, id))
}

pub(crate) fn envoy(ns: Id, key: &str) -> Vec<u8> {
    tuple::pack(&("envoy", ns, key))
}

pub(crate) fn envoys(ns: Id) -> Subspace {
    Subspace::new(&("envoy", ns))
}

pub(crate) fn envoy_slots(ns: Id, key: &str) -> Vec<u8> {
    tuple::pack(&("envoy_slots", ns, key))
}

pub(crate) fn pool_envoys(ns: Id, pool: &str) -> Subspace {
    Subspace::new(&("pool_envoy", ns, pool))
}

pub(crate) fn envoy_actors(ns: Id, key: &str) -> Subspace {
    Subspace::new(&("envoy_actor", ns, key))
}

pub(crate) fn envoy_commands(ns: Id, key: &str) -> Subspace {
    Subspace::new(&("envoy_cmd", ns, key))
}

pub(crate) fn pool_protocol(ns: Id, pool: &str) -> Vec<u8> {
    tuple::pack(&("pool_protocol", ns, pool))
}

/// The id at `at` (two elements) of an unpacked key.
pub(crate) fn id_at(elements: &[tuple::Element], at: usize) -> Option<Id> {
    Id::from_elements(elements.get(at)?, elements.get(at + 1)?)
}

/// `("actor_hws", id, gateway_id, request_id)` → empty: the actor's hibernating WebSockets,
/// restored by the next StartActor (`hibernatingRequests`).
pub(crate) fn hibernating(id: Id) -> Subspace {
    Subspace::new(&("actor_hws", id))
}
