//! Per-actor key-value storage: the KV requests of the actor-host socket (`envoy-protocol.md`
//! §5.5, §10) and the REST read of one key.
//!
//! Key layout (tuple-encoded prefix, see `rivet_store::tuple`):
//! - `("kv", Id(uuid), label, "d")` ‖ raw user key → `[1] ‖ update_ts (i64 LE) ‖ value`. The
//!   user's key bytes follow the packed prefix unescaped, so the store's byte order is the user's
//!   key order and every List query is one store range scan.
//! - `("kv", Id(uuid), label, "size")` → little-endian i64, the sum of `key.len() + value.len()`
//!   over the actor's entries. It changes through atomic `add` only, so writers of different
//!   keys never conflict on it; the 10 GiB check reads it as a snapshot (no read conflict), which
//!   makes the limit approximate under concurrent writers, as a quota may be.
//!
//! Every function runs inside the caller's transaction so the caller can fence the actor's
//! generation in the same transaction. A request that fails validation writes nothing, so a caller
//! that commits after answering `KvErrorResponse` commits no partial change.

use std::collections::HashMap;

use rivet_envoy_protocol::{
    KvDeleteRangeRequest, KvDeleteRequest, KvEntries, KvGetRequest, KvListQuery, KvListRequest,
    KvMetadata, KvPutRequest, KvRequestData, KvResponseData,
};
use rivet_store::tuple::{self, Subspace};
use rivet_store::{RangeOptions, StoreError, Tx, TxError};

use crate::id::Id;

/// Most keys one Get, Put or Delete request may name.
pub const MAX_KEYS: usize = 128;
/// Longest key, in bytes.
pub const MAX_KEY_SIZE: usize = 2048;
/// Largest value, in bytes (128 KiB).
pub const MAX_VALUE_SIZE: usize = 128 * 1024;
/// Largest sum of key and value sizes in one Put (976 KiB).
pub const MAX_PUT_PAYLOAD_SIZE: usize = 976 * 1024;
/// Largest sum of key and value sizes over all entries of one actor (10 GiB).
pub const MAX_STORAGE_SIZE: i64 = 10 * 1024 * 1024 * 1024;
/// `KvMetadata.version` of every entry: the reference engine version this engine answers as.
pub const METADATA_VERSION: &[u8] = b"2.3.19";

/// Format byte of a stored entry; lets a later layout be told apart from this one.
const ENTRY_FORMAT: u8 = 1;
const ENTRY_HEADER: usize = 1 + 8;

/// Why a KV request failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// A Get or Delete named more than [`MAX_KEYS`] keys.
    #[error("a maximum of 128 keys is allowed")]
    TooManyKeys,
    /// A Put broke a limit. The reference answers every such case "transaction failed"; the
    /// precise reason is kept here for logs.
    #[error("put rejected: {reason}")]
    PutRejected {
        /// What was wrong, e.g. `value 3 is 131073 bytes, more than 131072`.
        reason: String,
    },
    /// A stored entry does not have the expected shape.
    #[error("corrupt kv entry: {0}")]
    Corrupt(String),
    /// The store failed; conflicts are retried by the caller's `Db::txn`.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KvError {
    /// The text for `KvErrorResponse.message`.
    pub fn message(&self) -> String {
        match self {
            KvError::TooManyKeys => self.to_string(),
            KvError::PutRejected { .. } => "transaction failed".to_string(),
            KvError::Corrupt(_) | KvError::Store(_) => "internal error".to_string(),
        }
    }
}

impl TxError for KvError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            KvError::Store(error) => Some(error),
            _ => None,
        }
    }
}

fn actor_space(actor: &Id) -> Subspace {
    Subspace::new(&("kv", tuple::Id(actor.uuid()), i64::from(actor.label())))
}

/// The prefix every entry key of the actor starts with.
fn data_prefix(actor: &Id) -> Vec<u8> {
    actor_space(actor).pack(&("d",))
}

fn size_key(actor: &Id) -> Vec<u8> {
    actor_space(actor).pack(&("size",))
}

fn entry_key(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + key.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(key);
    out
}

/// The first store key after every key that starts with `prefix`. The packed actor prefix
/// holds bytes below 0xFF, so the increment always exists.
fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    tuple::strinc(prefix).unwrap_or_else(|| {
        let mut end = prefix.to_vec();
        end.push(0xFF);
        end
    })
}

fn encode_entry(value: &[u8], update_ts: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_HEADER + value.len());
    out.push(ENTRY_FORMAT);
    out.extend_from_slice(&update_ts.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// Splits a stored entry into the user's value and its `update_ts`.
fn decode_entry(mut stored: Vec<u8>) -> Result<(Vec<u8>, i64), KvError> {
    if stored.len() < ENTRY_HEADER || stored[0] != ENTRY_FORMAT {
        return Err(KvError::Corrupt(format!(
            "entry of {} bytes with format byte {:?}",
            stored.len(),
            stored.first()
        )));
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&stored[1..ENTRY_HEADER]);
    let value = stored.split_off(ENTRY_HEADER);
    Ok((value, i64::from_le_bytes(ts)))
}

/// The size an entry counts for against the actor's storage limit.
fn entry_size(key: &[u8], stored: &[u8]) -> i64 {
    (key.len() + stored.len().saturating_sub(ENTRY_HEADER)) as i64
}

fn metadata(update_ts: i64) -> KvMetadata {
    KvMetadata {
        version: METADATA_VERSION.to_vec(),
        update_ts,
    }
}

/// Answers one KV request of `actor` inside `tx`. `now_ms` is the write time stored with put
/// entries. Validation failures write nothing.
pub async fn handle(
    tx: &Tx,
    actor: &Id,
    request: &KvRequestData,
    now_ms: i64,
) -> Result<KvResponseData, KvError> {
    match request {
        KvRequestData::Get(req) => get(tx, actor, req).await.map(KvResponseData::Get),
        KvRequestData::List(req) => list(tx, actor, req).await.map(KvResponseData::List),
        KvRequestData::Put(req) => {
            put(tx, actor, req, now_ms).await?;
            Ok(KvResponseData::Put)
        }
        KvRequestData::Delete(req) => {
            delete(tx, actor, req).await?;
            Ok(KvResponseData::Delete)
        }
        KvRequestData::DeleteRange(req) => {
            delete_range(tx, actor, req).await?;
            Ok(KvResponseData::Delete)
        }
        KvRequestData::Drop => {
            drop_all(tx, actor);
            Ok(KvResponseData::Drop)
        }
    }
}

/// Reads one key for the REST route `GET /actors/{id}/kv/keys/{key}`: the value and its
/// `update_ts`, or `None` when the key does not exist.
pub async fn get_one(
    tx: &Tx,
    actor: &Id,
    key: &[u8],
) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
    match tx.get(&entry_key(&data_prefix(actor), key)).await? {
        Some(stored) => match decode_entry(stored) {
            Ok(entry) => Ok(Some(entry)),
            Err(error) => Err(StoreError::Corrupt(error.to_string())),
        },
        None => Ok(None),
    }
}

/// The bytes the actor's entries take against the 10 GiB limit (keys plus values).
pub async fn storage_used(tx: &Tx, actor: &Id) -> Result<i64, StoreError> {
    Ok(read_counter(
        tx.get_snapshot(&size_key(actor)).await?.as_deref(),
    ))
}

fn read_counter(bytes: Option<&[u8]>) -> i64 {
    match bytes {
        Some(b) if b.len() == 8 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(b);
            i64::from_le_bytes(raw)
        }
        _ => 0,
    }
}

/// Removes every entry and the size counter of `actor` (used when the actor is destroyed).
pub fn clear_actor(tx: &Tx, actor: &Id) {
    let prefix = actor_space(actor).bytes().to_vec();
    tx.clear_range(&prefix, &after_prefix(&prefix));
}

async fn get(tx: &Tx, actor: &Id, req: &KvGetRequest) -> Result<KvEntries, KvError> {
    if req.keys.len() > MAX_KEYS {
        return Err(KvError::TooManyKeys);
    }
    let prefix = data_prefix(actor);
    let mut out = KvEntries {
        keys: Vec::new(),
        values: Vec::new(),
        metadata: Vec::new(),
    };
    for key in &req.keys {
        // A key over the limit can never have been written; asking the store for it could
        // exceed the store's own key limit.
        if key.len() > MAX_KEY_SIZE {
            continue;
        }
        if let Some(stored) = tx.get(&entry_key(&prefix, key)).await? {
            let (value, update_ts) = decode_entry(stored)?;
            out.keys.push(key.clone());
            out.values.push(value);
            out.metadata.push(metadata(update_ts));
        }
    }
    Ok(out)
}

async fn list(tx: &Tx, actor: &Id, req: &KvListRequest) -> Result<KvEntries, KvError> {
    let prefix = data_prefix(actor);
    let (begin, end) = match &req.query {
        KvListQuery::All => (prefix.clone(), after_prefix(&prefix)),
        KvListQuery::Range(range) => {
            let mut end = entry_key(&prefix, &range.end);
            if !range.exclusive {
                // The smallest key after `end`: includes `end` itself and nothing else above it.
                end.push(0x00);
            }
            (entry_key(&prefix, &range.start), end)
        }
        KvListQuery::Prefix(p) => {
            let begin = entry_key(&prefix, &p.key);
            let end = after_prefix(&begin);
            (begin, end)
        }
    };
    let mut opts = RangeOptions::new();
    if let Some(limit) = req.limit {
        opts = opts.limit(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    if req.reverse.unwrap_or(false) {
        opts = opts.reverse();
    }
    let pairs = tx.get_range(&begin, &end, opts).await?;
    let mut out = KvEntries {
        keys: Vec::with_capacity(pairs.len()),
        values: Vec::with_capacity(pairs.len()),
        metadata: Vec::with_capacity(pairs.len()),
    };
    for (key, stored) in pairs {
        let user_key = key.get(prefix.len()..).unwrap_or_default().to_vec();
        let (value, update_ts) = decode_entry(stored)?;
        out.keys.push(user_key);
        out.values.push(value);
        out.metadata.push(metadata(update_ts));
    }
    Ok(out)
}

/// Checks a Put against the per-request limits, in the reference's order.
fn validate_put(req: &KvPutRequest) -> Result<(), String> {
    if req.keys.len() != req.values.len() {
        return Err(format!(
            "{} keys but {} values",
            req.keys.len(),
            req.values.len()
        ));
    }
    if req.keys.len() > MAX_KEYS {
        return Err(format!("{} keys, more than {MAX_KEYS}", req.keys.len()));
    }
    let mut payload = 0usize;
    for (i, (key, value)) in req.keys.iter().zip(&req.values).enumerate() {
        if key.len() > MAX_KEY_SIZE {
            return Err(format!(
                "key {i} is {} bytes, more than {MAX_KEY_SIZE}",
                key.len()
            ));
        }
        if value.len() > MAX_VALUE_SIZE {
            return Err(format!(
                "value {i} is {} bytes, more than {MAX_VALUE_SIZE}",
                value.len()
            ));
        }
        payload += key.len() + value.len();
    }
    if payload > MAX_PUT_PAYLOAD_SIZE {
        return Err(format!(
            "payload is {payload} bytes, more than {MAX_PUT_PAYLOAD_SIZE}"
        ));
    }
    Ok(())
}

fn reject_put(actor: &Id, reason: String) -> KvError {
    tracing::warn!(actor_id = %actor, %reason, "kv put rejected");
    KvError::PutRejected { reason }
}

async fn put(tx: &Tx, actor: &Id, req: &KvPutRequest, now_ms: i64) -> Result<(), KvError> {
    validate_put(req).map_err(|reason| reject_put(actor, reason))?;
    put_checked(tx, actor, req, now_ms, MAX_STORAGE_SIZE).await
}

/// Writes a validated Put unless it would take the actor over `max_storage` bytes.
async fn put_checked(
    tx: &Tx,
    actor: &Id,
    req: &KvPutRequest,
    now_ms: i64,
    max_storage: i64,
) -> Result<(), KvError> {
    let prefix = data_prefix(actor);
    // A key named twice takes its last value, so only the last occurrence is written.
    let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(req.keys.len());
    for (i, key) in req.keys.iter().enumerate() {
        last.insert(key.as_slice(), i);
    }
    // Read everything first: the limit is checked before anything is written.
    let mut delta = 0i64;
    let mut writes = Vec::with_capacity(last.len());
    for (i, key) in req.keys.iter().enumerate() {
        if last.get(key.as_slice()) != Some(&i) {
            continue;
        }
        let store_key = entry_key(&prefix, key);
        let old = tx
            .get(&store_key)
            .await?
            .map_or(0, |stored| entry_size(key, &stored));
        delta += (key.len() + req.values[i].len()) as i64 - old;
        writes.push((store_key, i));
    }
    if delta > 0 {
        let used = storage_used(tx, actor).await?;
        if used.saturating_add(delta) > max_storage {
            return Err(reject_put(
                actor,
                format!(
                    "storage would grow to {} bytes, more than {max_storage}",
                    used.saturating_add(delta)
                ),
            ));
        }
    }
    for (store_key, i) in writes {
        tx.set(&store_key, &encode_entry(&req.values[i], now_ms))?;
    }
    if delta != 0 {
        tx.add(&size_key(actor), delta)?;
    }
    Ok(())
}

async fn delete(tx: &Tx, actor: &Id, req: &KvDeleteRequest) -> Result<(), KvError> {
    if req.keys.len() > MAX_KEYS {
        return Err(KvError::TooManyKeys);
    }
    let prefix = data_prefix(actor);
    let mut freed = 0i64;
    for key in &req.keys {
        if key.len() > MAX_KEY_SIZE {
            continue;
        }
        let store_key = entry_key(&prefix, key);
        // Reading the old entry both sizes it and tells a repeated key from a present one.
        if let Some(stored) = tx.get(&store_key).await? {
            freed += entry_size(key, &stored);
            tx.clear(&store_key);
        }
    }
    if freed != 0 {
        tx.add(&size_key(actor), -freed)?;
    }
    Ok(())
}

async fn delete_range(tx: &Tx, actor: &Id, req: &KvDeleteRangeRequest) -> Result<(), KvError> {
    if req.start >= req.end {
        return Ok(());
    }
    let prefix = data_prefix(actor);
    let begin = entry_key(&prefix, &req.start);
    let end = entry_key(&prefix, &req.end);
    // The size counter needs the sizes of what goes away, so the range is read before it is
    // cleared.
    let pairs = tx.get_range(&begin, &end, RangeOptions::new()).await?;
    let freed: i64 = pairs
        .iter()
        .map(|(key, stored)| entry_size(key.get(prefix.len()..).unwrap_or_default(), stored))
        .sum();
    tx.clear_range(&begin, &end);
    if freed != 0 {
        tx.add(&size_key(actor), -freed)?;
    }
    Ok(())
}

fn drop_all(tx: &Tx, actor: &Id) {
    let prefix = data_prefix(actor);
    tx.clear_range(&prefix, &after_prefix(&prefix));
    tx.clear(&size_key(actor));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivet_store::{Db, StoreConfig};

    #[tokio::test]
    async fn a_put_over_the_storage_limit_writes_nothing() {
        let db = Db::open(StoreConfig::Memory).await.unwrap();
        let actor = Id::new(1);
        let req = KvPutRequest {
            keys: vec![b"a".to_vec(), b"b".to_vec()],
            values: vec![vec![1; 10], vec![2; 10]],
        };
        db.txn(|tx| {
            let req = req.clone();
            async move { put_checked(&tx, &actor, &req, 1, 22).await }
        })
        .await
        .unwrap();
        let bigger = KvPutRequest {
            keys: vec![b"c".to_vec()],
            values: vec![vec![3; 10]],
        };
        let err = db
            .txn(|tx| {
                let req = bigger.clone();
                async move { put_checked(&tx, &actor, &req, 2, 30).await }
            })
            .await
            .unwrap_err();
        assert!(matches!(err, KvError::PutRejected { .. }), "{err}");
        assert_eq!(err.message(), "transaction failed");
        // Overwriting with a smaller value is allowed even at the limit.
        let shrink = KvPutRequest {
            keys: vec![b"a".to_vec()],
            values: vec![vec![1; 5]],
        };
        db.txn(|tx| {
            let req = shrink.clone();
            async move { put_checked(&tx, &actor, &req, 3, 22).await }
        })
        .await
        .unwrap();
        let used = db
            .txn(|tx| async move { storage_used(&tx, &actor).await })
            .await
            .unwrap();
        assert_eq!(used, 17);
    }
}
