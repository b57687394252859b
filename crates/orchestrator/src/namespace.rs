//! Namespaces: creation with the reference's name rules, lookup and listing.
//!
//! Key layout (tuple-encoded, see `rivet_store::tuple`):
//! - `("ns", "by_id", Id(uuid), label)` → the [`Namespace`] record as JSON. Listing scans this
//!   range, so the list is in internal id order, as the reference's is.
//! - `("ns", "by_name", name)` → the namespace id (30-character text). The create transaction
//!   reads this key, so two nodes creating the same name conflict and one of them then sees the
//!   other's record: exactly one namespace per name.

use rivet_store::tuple::{self, Subspace};
use rivet_store::{Db, RangeOptions, Tx};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::id::Id;

/// Name of the namespace every engine has.
pub const DEFAULT_NAME: &str = "default";
/// Display name of the default namespace.
pub const DEFAULT_DISPLAY_NAME: &str = "Default";
/// Longest namespace name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest display name.
pub const MAX_DISPLAY_NAME_LEN: usize = 128;

/// A namespace, in its wire (and stored) shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// The namespace id (30-character text form).
    pub namespace_id: String,
    /// Unique name.
    pub name: String,
    /// Human-readable name.
    pub display_name: String,
    /// Creation time, ms since the epoch.
    pub create_ts: i64,
}

impl Namespace {
    /// The parsed id.
    pub fn id(&self) -> Result<Id, DataError> {
        self.namespace_id.parse().map_err(|_| DataError::Corrupt {
            what: "namespace",
            source: serde::de::Error::custom("bad namespace id"),
        })
    }
}

fn by_id() -> Subspace {
    Subspace::new(&("ns", "by_id"))
}

fn by_name() -> Subspace {
    Subspace::new(&("ns", "by_name"))
}

fn id_key(id: Id) -> Vec<u8> {
    by_id().pack(&(tuple::Id(id.uuid()), i64::from(id.label())))
}

/// Checks a name and display name against the reference's rules.
pub fn validate(name: &str, display_name: &str) -> Result<(), DataError> {
    let fail = |reason| Err(DataError::FailedToCreate { reason });
    if name.chars().count() > MAX_NAME_LEN {
        return fail("name too long");
    }
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        return fail("invalid name");
    }
    let display_len = display_name.chars().count();
    if display_len == 0 {
        return fail("display name too short");
    }
    if display_len > MAX_DISPLAY_NAME_LEN {
        return fail("display name too long");
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<Namespace, DataError> {
    serde_json::from_slice(bytes).map_err(|source| DataError::Corrupt {
        what: "namespace",
        source,
    })
}

fn encode(namespace: &Namespace) -> Result<Vec<u8>, DataError> {
    serde_json::to_vec(namespace).map_err(|source| DataError::Corrupt {
        what: "namespace",
        source,
    })
}

/// Reads a namespace by name inside a transaction.
pub async fn get_by_name_tx(tx: &Tx, name: &str) -> Result<Option<Namespace>, DataError> {
    let Some(id) = tx.get(&by_name().pack(&(name,))).await? else {
        return Ok(None);
    };
    let id: Id = String::from_utf8_lossy(&id)
        .parse()
        .map_err(|_| DataError::Corrupt {
            what: "namespace name index",
            source: serde::de::Error::custom("bad namespace id"),
        })?;
    match tx.get(&id_key(id)).await? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// Reads a namespace by id inside a transaction.
pub async fn get_by_id_tx(tx: &Tx, id: Id) -> Result<Option<Namespace>, DataError> {
    match tx.get(&id_key(id)).await? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// Reads a namespace by name.
pub async fn get_by_name(db: &Db, name: &str) -> Result<Option<Namespace>, DataError> {
    let name = name.to_string();
    db.txn(move |tx| {
        let name = name.clone();
        async move { get_by_name_tx(&tx, &name).await }
    })
    .await
}

/// Reads a namespace by name, or fails with [`DataError::NamespaceNotFound`].
pub async fn resolve(db: &Db, name: &str) -> Result<Namespace, DataError> {
    get_by_name(db, name)
        .await?
        .ok_or(DataError::NamespaceNotFound)
}

async fn insert(tx: &Tx, namespace: &Namespace, id: Id) -> Result<(), DataError> {
    tx.set(&id_key(id), &encode(namespace)?)?;
    tx.set(
        &by_name().pack(&(namespace.name.as_str(),)),
        namespace.namespace_id.as_bytes(),
    )?;
    Ok(())
}

/// Creates a namespace in datacenter `label` at time `now` (ms). Fails on a bad or taken name.
pub async fn create(
    db: &Db,
    label: u16,
    name: &str,
    display_name: &str,
    now: i64,
) -> Result<Namespace, DataError> {
    validate(name, display_name)?;
    let name = name.to_string();
    let display_name = display_name.to_string();
    let namespace = db
        .txn(move |tx| {
            let name = name.clone();
            let display_name = display_name.clone();
            async move {
                if get_by_name_tx(&tx, &name).await?.is_some() {
                    return Err(DataError::NameNotUnique);
                }
                let id = Id::new(label);
                let namespace = Namespace {
                    namespace_id: id.to_string(),
                    name,
                    display_name,
                    create_ts: now,
                };
                insert(&tx, &namespace, id).await?;
                Ok(namespace)
            }
        })
        .await?;
    tracing::info!(namespace = %namespace.name, namespace_id = %namespace.namespace_id, "namespace created");
    Ok(namespace)
}

/// Creates the `default` namespace unless it exists; returns it either way. Safe to run on
/// several nodes at once: the loser of the race conflicts, retries and finds the winner's record.
pub async fn ensure_default_namespace(
    db: &Db,
    label: u16,
    now: i64,
) -> Result<Namespace, DataError> {
    db.txn(move |tx| async move {
        if let Some(existing) = get_by_name_tx(&tx, DEFAULT_NAME).await? {
            return Ok(existing);
        }
        let id = Id::new(label);
        let namespace = Namespace {
            namespace_id: id.to_string(),
            name: DEFAULT_NAME.to_string(),
            display_name: DEFAULT_DISPLAY_NAME.to_string(),
            create_ts: now,
        };
        insert(&tx, &namespace, id).await?;
        Ok(namespace)
    })
    .await
}

/// What `GET /namespaces` filters on.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Most entries to return; `Some(0)` returns one entry, as the reference does.
    pub limit: Option<usize>,
    /// Only the namespace with this name.
    pub name: Option<String>,
    /// Only these ids (empty: no id filter).
    pub ids: Vec<Id>,
}

/// Default page size of the namespace list.
pub const DEFAULT_LIMIT: usize = 100;

/// Lists namespaces in internal id order.
pub async fn list(db: &Db, query: ListQuery) -> Result<Vec<Namespace>, DataError> {
    // The reference answers `limit=0` with one entry.
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).max(1);
    db.txn(move |tx| {
        let query = query.clone();
        async move {
            if let Some(name) = &query.name {
                let found = get_by_name_tx(&tx, name).await?;
                return Ok(found
                    .filter(|ns| {
                        query.ids.is_empty() || ns.id().is_ok_and(|id| query.ids.contains(&id))
                    })
                    .into_iter()
                    .collect());
            }
            if !query.ids.is_empty() {
                let mut ids = query.ids.clone();
                ids.sort();
                ids.dedup();
                let mut out = Vec::new();
                for id in ids {
                    if out.len() == limit {
                        break;
                    }
                    if let Some(bytes) = tx.get(&id_key(id)).await? {
                        out.push(decode(&bytes)?);
                    }
                }
                return Ok(out);
            }
            let (begin, end) = by_id().range();
            let pairs = tx
                .get_range(&begin, &end, RangeOptions::new().limit(limit))
                .await?;
            pairs.iter().map(|(_, value)| decode(value)).collect()
        }
    })
    .await
}
