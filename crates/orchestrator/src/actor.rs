//! Actor data: the immutable identity ([`ActorMeta`]), the lifecycle record, the key and name
//! indexes, and the actor JSON of the REST API (engine-api.md §6). Transitions go through
//! [`crate::shell`]; this module only reads and writes records.

use rivet_store::{RangeOptions, Tx};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::id::Id;
use crate::keys;
use crate::lifecycle::{ActorError, ActorRecord, CrashPolicy, Timestamp};

/// Longest actor key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Most ids in one `GET /actors` by-id query.
pub const MAX_ACTOR_IDS: usize = 32;
/// Default page size of actor listings.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// What never changes about an actor after creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorMeta {
    /// The actor id (text form).
    pub actor_id: String,
    /// Owning namespace id (text form).
    pub namespace_id: String,
    /// Actor type name.
    pub name: String,
    /// Serialized key, if any.
    pub key: Option<String>,
    /// Datacenter name.
    pub datacenter: String,
    /// Pool (`runner_name_selector`).
    pub pool: String,
    /// Creation time.
    pub create_ts: Timestamp,
}

impl ActorMeta {
    /// The parsed namespace id.
    pub fn namespace(&self) -> Result<Id, DataError> {
        parse_id(&self.namespace_id, "actor meta")
    }

    /// The parsed actor id.
    pub fn id(&self) -> Result<Id, DataError> {
        parse_id(&self.actor_id, "actor meta")
    }
}

pub(crate) fn parse_id(text: &str, what: &'static str) -> Result<Id, DataError> {
    text.parse().map_err(|_| DataError::Corrupt {
        what,
        source: serde::de::Error::custom("bad id"),
    })
}

pub(crate) fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, DataError> {
    serde_json::to_vec(value).map_err(|source| DataError::Corrupt { what, source })
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<T, DataError> {
    serde_json::from_slice(bytes).map_err(|source| DataError::Corrupt { what, source })
}

/// The actor JSON of the REST API, fields in the reference's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorView {
    /// Actor id.
    pub actor_id: String,
    /// Type name.
    pub name: String,
    /// Serialized key.
    pub key: Option<String>,
    /// Namespace id.
    pub namespace_id: String,
    /// Datacenter name.
    pub datacenter: String,
    /// Pool.
    pub runner_name_selector: String,
    /// Always `sleep` on envoy pools.
    pub crash_policy: CrashPolicy,
    /// Creation time.
    pub create_ts: Timestamp,
    /// First time it ever ran.
    pub start_ts: Option<Timestamp>,
    /// Legacy pools only.
    pub pending_allocation_ts: Option<Timestamp>,
    /// Set while running.
    pub connectable_ts: Option<Timestamp>,
    /// Set while sleeping.
    pub sleep_ts: Option<Timestamp>,
    /// Next allocation attempt while backing off.
    pub reschedule_ts: Option<Timestamp>,
    /// Set when destroyed.
    pub destroy_ts: Option<Timestamp>,
    /// Last failure; omitted when none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<ActorError>,
}

impl ActorView {
    /// The JSON view of an actor.
    pub fn new(meta: &ActorMeta, record: &ActorRecord) -> ActorView {
        ActorView {
            actor_id: meta.actor_id.clone(),
            name: meta.name.clone(),
            key: meta.key.clone(),
            namespace_id: meta.namespace_id.clone(),
            datacenter: meta.datacenter.clone(),
            runner_name_selector: meta.pool.clone(),
            crash_policy: record.crash_policy,
            create_ts: meta.create_ts,
            start_ts: record.start_ts,
            pending_allocation_ts: record.pending_allocation_ts(),
            connectable_ts: record.connectable_ts(),
            sleep_ts: record.sleep_ts,
            reschedule_ts: record.reschedule_ts(),
            destroy_ts: record.destroy_ts,
            error: record.error.clone(),
        }
    }
}

/// Reads an actor's identity.
pub async fn load_meta(tx: &Tx, id: Id) -> Result<Option<ActorMeta>, DataError> {
    match tx.get(&keys::actor_meta(id)).await? {
        Some(bytes) => decode(&bytes, "actor meta").map(Some),
        None => Ok(None),
    }
}

/// Reads an actor's lifecycle record.
pub async fn load_record(tx: &Tx, id: Id) -> Result<Option<ActorRecord>, DataError> {
    match tx.get(&keys::actor_record(id)).await? {
        Some(bytes) => decode(&bytes, "actor record").map(Some),
        None => Ok(None),
    }
}

/// Reads an actor's creation input.
pub async fn load_input(tx: &Tx, id: Id) -> Result<Option<Vec<u8>>, DataError> {
    Ok(tx.get(&keys::actor_input(id)).await?)
}

/// Reads meta and record together; `None` when the actor never existed.
pub async fn load(tx: &Tx, id: Id) -> Result<Option<(ActorMeta, ActorRecord)>, DataError> {
    let (meta, record) = (load_meta(tx, id).await?, load_record(tx, id).await?);
    Ok(meta.zip(record))
}

/// Writes a new actor's identity, input and name index.
pub(crate) fn insert(
    tx: &Tx,
    id: Id,
    meta: &ActorMeta,
    input: Option<&[u8]>,
) -> Result<(), DataError> {
    tx.set(&keys::actor_meta(id), &encode(meta, "actor meta")?)?;
    if let Some(input) = input {
        tx.set(&keys::actor_input(id), input)?;
    }
    let ns = meta.namespace()?;
    tx.set(
        &keys::actor_by_name(ns, &meta.name).pack(&(meta.create_ts, id)),
        &[],
    )?;
    Ok(())
}

/// Writes the lifecycle record.
pub(crate) fn save_record(tx: &Tx, id: Id, record: &ActorRecord) -> Result<(), DataError> {
    tx.set(&keys::actor_record(id), &encode(record, "actor record")?)?;
    Ok(())
}

/// The actor holding `key` among the non-destroyed actors of `name` (a conflict-checked read,
/// so two transactions claiming one key cannot both commit).
pub async fn by_key(tx: &Tx, ns: Id, name: &str, key: &str) -> Result<Option<Id>, DataError> {
    match tx.get(&keys::actor_key(ns, name, key)).await? {
        Some(bytes) => parse_id(&String::from_utf8_lossy(&bytes), "actor key index").map(Some),
        None => Ok(None),
    }
}

pub(crate) fn set_key(tx: &Tx, ns: Id, name: &str, key: &str, id: Id) -> Result<(), DataError> {
    tx.set(&keys::actor_key(ns, name, key), id.to_string().as_bytes())?;
    Ok(())
}

/// Frees the key if it still points at `id`.
pub(crate) async fn clear_key(tx: &Tx, meta: &ActorMeta, id: Id) -> Result<(), DataError> {
    let Some(key) = &meta.key else {
        return Ok(());
    };
    let ns = meta.namespace()?;
    if by_key(tx, ns, &meta.name, key).await? == Some(id) {
        tx.clear(&keys::actor_key(ns, &meta.name, key));
    }
    Ok(())
}

/// Actors of `name` in `ns`, newest first, created strictly before `before` when given.
pub async fn list_by_name(
    tx: &Tx,
    ns: Id,
    name: &str,
    before: Option<Timestamp>,
    include_destroyed: bool,
    limit: usize,
) -> Result<Vec<(ActorMeta, ActorRecord)>, DataError> {
    list_by_name_and_key(tx, ns, name, None, before, include_destroyed, limit).await
}

/// [`list_by_name`] restricted to actors whose key is `key` when given (`GET /actors` by key
/// with `include_destroyed`: every actor that ever held the key).
pub async fn list_by_name_and_key(
    tx: &Tx,
    ns: Id,
    name: &str,
    key: Option<&str>,
    before: Option<Timestamp>,
    include_destroyed: bool,
    limit: usize,
) -> Result<Vec<(ActorMeta, ActorRecord)>, DataError> {
    let space = keys::actor_by_name(ns, name);
    let (begin, mut end) = space.range();
    if let Some(before) = before {
        end = space.pack(&(before,));
    }
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    // Scan in pages: destroyed actors are skipped, so one page may not fill the result.
    let mut cursor_end = end;
    loop {
        let page = tx
            .get_range(
                &begin,
                &cursor_end,
                RangeOptions::new().reverse().limit(256),
            )
            .await?;
        let Some((last_key, _)) = page.last() else {
            break;
        };
        cursor_end = last_key.clone();
        let full = page.len() == 256;
        for (row, _) in &page {
            let elements = space.unpack(row)?;
            let Some(id) = keys::id_at(&elements, 1) else {
                continue;
            };
            let Some((meta, record)) = load(tx, id).await? else {
                continue;
            };
            if record.destroy_ts.is_some() && !include_destroyed {
                continue;
            }
            if key.is_some_and(|k| meta.key.as_deref() != Some(k)) {
                continue;
            }
            out.push((meta, record));
            if out.len() == limit {
                return Ok(out);
            }
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

/// Actor names reported by hosts (`GET /actors/names`), in name order after `after`.
pub async fn list_names(
    tx: &Tx,
    ns: Id,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, serde_json::Value)>, DataError> {
    let space = keys::actor_names(ns);
    let (mut begin, end) = space.range();
    if let Some(after) = after {
        // Just past `after` itself.
        begin = space.pack(&(after,));
        begin.push(0);
    }
    let rows = tx
        .get_range(&begin, &end, RangeOptions::new().limit(limit))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (key, value) in rows {
        if let Some(rivet_store::tuple::Element::String(name)) = space.unpack(&key)?.first() {
            out.push((name.clone(), decode(&value, "actor name")?));
        }
    }
    Ok(out)
}
