//! Actor hosts ("envoys"): the stored record of each host key, the pool membership used by the
//! allocator, and the Envoy JSON of `GET /envoys` (engine-api.md §6).

use rivet_store::{RangeOptions, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actor::{decode, encode};
use crate::allocation::HostCandidate;
use crate::error::DataError;
use crate::id::Id;
use crate::keys;
use crate::lifecycle::{HostKey, Timestamp};

/// What the engine knows about one host key. It survives disconnects, so `create_ts` is kept
/// across reconnects and the lost threshold can be judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvoyRecord {
    /// The host's key.
    pub envoy_key: String,
    /// Pool it serves.
    pub pool: String,
    /// The application's build version (`version` query parameter).
    pub version: u32,
    /// Protocol version of its socket.
    pub protocol_version: u16,
    /// First connection of this key.
    pub create_ts: Timestamp,
    /// Last pong (or the connection time).
    pub last_ping_ts: Timestamp,
    /// Last round-trip time, ms.
    pub last_rtt: i64,
    /// The socket currently holding the key; `None` while disconnected.
    pub connection: Option<String>,
    /// The host announced it is stopping (or is drained).
    pub draining: bool,
    /// The JSON the host sent in its metadata message.
    pub metadata: Option<Value>,
}

impl EnvoyRecord {
    /// Whether a socket holds the key.
    pub fn connected(&self) -> bool {
        self.connection.is_some()
    }
}

/// The Envoy JSON of the REST API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvoyView {
    /// Host key.
    pub envoy_key: String,
    /// Namespace id.
    pub namespace_id: String,
    /// Datacenter name.
    pub datacenter: String,
    /// Pool.
    pub pool_name: String,
    /// Application version.
    pub version: u32,
    /// Actors assigned.
    pub slots: i64,
    /// First connection.
    pub create_ts: Timestamp,
    /// Always null for listed (connected) hosts.
    pub stop_ts: Option<Timestamp>,
    /// Last pong.
    pub last_ping_ts: Timestamp,
    /// Null, as the reference reports it.
    pub last_connected_ts: Option<Timestamp>,
    /// Round trip, ms.
    pub last_rtt: i64,
    /// Host metadata.
    pub metadata: Option<Value>,
}

/// Reads a host record.
pub async fn load(tx: &Tx, ns: Id, key: &str) -> Result<Option<EnvoyRecord>, DataError> {
    match tx.get(&keys::envoy(ns, key)).await? {
        Some(bytes) => decode(&bytes, "envoy").map(Some),
        None => Ok(None),
    }
}

/// Writes a host record and its pool membership.
pub fn save(tx: &Tx, ns: Id, record: &EnvoyRecord) -> Result<(), DataError> {
    tx.set(
        &keys::envoy(ns, &record.envoy_key),
        &encode(record, "envoy")?,
    )?;
    tx.set(
        &keys::pool_envoys(ns, &record.pool).pack(&(record.envoy_key.as_str(),)),
        &[],
    )?;
    Ok(())
}

/// Actors currently assigned to a host (snapshot read: a count for display and load spreading).
pub async fn slots(tx: &Tx, ns: Id, key: &str) -> Result<i64, DataError> {
    let bytes = tx.get_snapshot(&keys::envoy_slots(ns, key)).await?;
    Ok(bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(i64::from_le_bytes)
        .unwrap_or(0))
}

/// The allocator's view of a pool, read without conflicts: pings and slot counts change all the
/// time and must not make every allocation retry.
pub async fn candidates(tx: &Tx, ns: Id, pool: &str) -> Result<Vec<HostCandidate>, DataError> {
    let space = keys::pool_envoys(ns, pool);
    let (begin, end) = space.range();
    let members = tx
        .get_range(&begin, &end, RangeOptions::new().snapshot())
        .await?;
    let mut out = Vec::with_capacity(members.len());
    for (member, _) in members {
        let elements = space.unpack(&member)?;
        let Some(rivet_store::tuple::Element::String(key)) = elements.first() else {
            continue;
        };
        let Some(bytes) = tx.get_snapshot(&keys::envoy(ns, key)).await? else {
            continue;
        };
        let record: EnvoyRecord = decode(&bytes, "envoy")?;
        out.push(HostCandidate {
            key: HostKey(record.envoy_key.clone()),
            version: record.version,
            last_ping_ts: record.last_ping_ts,
            connected: record.connected(),
            draining: record.draining,
            actors: u32::try_from(slots(tx, ns, key).await?.max(0)).unwrap_or(u32::MAX),
        });
    }
    Ok(out)
}

/// Connected, non-draining hosts of `ns` (optionally of one pool / some keys), in key order.
pub async fn list(
    tx: &Tx,
    ns: Id,
    pool: Option<&str>,
    keys_filter: &[String],
    limit: usize,
) -> Result<Vec<(EnvoyRecord, i64)>, DataError> {
    let space = keys::envoys(ns);
    let (begin, end) = space.range();
    let records = tx.get_range(&begin, &end, RangeOptions::new()).await?;
    let mut out = Vec::new();
    for (_, bytes) in records {
        if out.len() >= limit {
            break;
        }
        let record: EnvoyRecord = decode(&bytes, "envoy")?;
        if !record.connected() || record.draining {
            continue;
        }
        if pool.is_some_and(|p| p != record.pool) {
            continue;
        }
        if !keys_filter.is_empty() && !keys_filter.contains(&record.envoy_key) {
            continue;
        }
        let slots = slots(tx, ns, &record.envoy_key).await?;
        out.push((record, slots));
    }
    Ok(out)
}

/// Actors whose live generation is on the host.
pub async fn actors(tx: &Tx, ns: Id, key: &str) -> Result<Vec<Id>, DataError> {
    let space = keys::envoy_actors(ns, key);
    let (begin, end) = space.range();
    let rows = tx.get_range(&begin, &end, RangeOptions::new()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (row, _) in rows {
        if let Some(id) = keys::id_at(&space.unpack(&row)?, 0) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Records the pool's protocol version (the last host that connected decides).
pub fn set_pool_protocol(tx: &Tx, ns: Id, pool: &str, version: u16) -> Result<(), DataError> {
    tx.set(
        &keys::pool_protocol(ns, pool),
        version.to_string().as_bytes(),
    )?;
    Ok(())
}

/// The pool's protocol version, if a host or serverless metadata reported one.
pub async fn pool_protocol(tx: &Tx, ns: Id, pool: &str) -> Result<Option<u16>, DataError> {
    Ok(tx
        .get(&keys::pool_protocol(ns, pool))
        .await?
        .and_then(|b| String::from_utf8_lossy(&b).parse().ok()))
}
