//! The actor's key-value storage (`ctx.kv()`), beside the state.
//!
//! User keys live under their own prefix of the actor's engine KV space, apart from the
//! state and schedule records.

use std::sync::Arc;

use rivet_envoy_protocol::{
    KvDeleteRangeRequest, KvDeleteRequest, KvGetRequest, KvListPrefixQuery, KvListQuery,
    KvListRangeQuery, KvListRequest, KvPutRequest, KvRequestData, KvResponseData,
};

use crate::error::KvError;
use crate::host::Host;

/// Prefix of the state record's chunks.
pub(crate) const STATE_PREFIX: u8 = 0x01;
/// The schedule record.
pub(crate) const SCHEDULE_KEY: &[u8] = &[0x02];
/// Prefix of user keys.
const USER_PREFIX: u8 = 0x03;
/// Prefix of saved hibernatable connections.
pub(crate) const CONN_PREFIX: u8 = 0x04;

/// Handle to the actor's key-value storage. Every call is one round trip to the engine and
/// is durable when it returns.
#[derive(Clone)]
pub struct Kv {
    host: Arc<Host>,
    actor_id: Arc<str>,
}

fn user_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(USER_PREFIX);
    k.extend_from_slice(key);
    k
}

impl Kv {
    pub(crate) fn new(host: Arc<Host>, actor_id: Arc<str>) -> Kv {
        Kv { host, actor_id }
    }

    /// The value of `key`.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, KvError> {
        let found = self
            .request(KvRequestData::Get(KvGetRequest {
                keys: vec![user_key(key.as_ref())],
            }))
            .await?;
        match found {
            KvResponseData::Get(mut e) => Ok(e.values.pop()),
            other => Err(unexpected(&other)),
        }
    }

    /// Stores `value` under `key`.
    pub async fn put(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Vec<u8>>,
    ) -> Result<(), KvError> {
        self.request(KvRequestData::Put(KvPutRequest {
            keys: vec![user_key(key.as_ref())],
            values: vec![value.into()],
        }))
        .await
        .map(drop)
    }

    /// Deletes `key` (no error if absent).
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<(), KvError> {
        self.request(KvRequestData::Delete(KvDeleteRequest {
            keys: vec![user_key(key.as_ref())],
        }))
        .await
        .map(drop)
    }

    /// Deletes every key in `[start, end)`.
    pub async fn delete_range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
    ) -> Result<(), KvError> {
        self.request(KvRequestData::DeleteRange(KvDeleteRangeRequest {
            start: user_key(start.as_ref()),
            end: user_key(end.as_ref()),
        }))
        .await
        .map(drop)
    }

    /// Entries whose key starts with `prefix`, ascending, at most `limit`.
    pub async fn list_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
        limit: Option<u64>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, KvError> {
        self.list(
            KvListQuery::Prefix(KvListPrefixQuery {
                key: user_key(prefix.as_ref()),
            }),
            false,
            limit,
        )
        .await
    }

    /// Entries with `start <= key < end`, ascending (descending with `reverse`).
    pub async fn list_range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
        reverse: bool,
        limit: Option<u64>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, KvError> {
        self.list(
            KvListQuery::Range(KvListRangeQuery {
                start: user_key(start.as_ref()),
                end: user_key(end.as_ref()),
                exclusive: true,
            }),
            reverse,
            limit,
        )
        .await
    }

    async fn list(
        &self,
        query: KvListQuery,
        reverse: bool,
        limit: Option<u64>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, KvError> {
        let found = self
            .request(KvRequestData::List(KvListRequest {
                query,
                reverse: Some(reverse),
                limit,
            }))
            .await?;
        match found {
            KvResponseData::List(e) => Ok(e
                .keys
                .into_iter()
                .zip(e.values)
                .map(|(k, v)| (k.get(1..).map(<[u8]>::to_vec).unwrap_or_default(), v))
                .collect()),
            other => Err(unexpected(&other)),
        }
    }

    async fn request(&self, data: KvRequestData) -> Result<KvResponseData, KvError> {
        self.host.kv(&self.actor_id, data).await
    }
}

fn unexpected(answer: &KvResponseData) -> KvError {
    KvError::Engine(format!("unexpected answer {answer:?}"))
}
