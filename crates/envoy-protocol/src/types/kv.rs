//! Actor KV requests and responses.

use serde::Serialize;

use crate::bare::{Reader, Writer};
use crate::error::Result;
use crate::view;
use crate::wire::{bad_tag, Wire};

/// Metadata stored with every KV entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KvMetadata {
    /// Engine version string as UTF-8 bytes, e.g. `2.3.19`.
    #[serde(serialize_with = "view::hex")]
    pub version: Vec<u8>,
    /// ms of the last write.
    #[serde(serialize_with = "view::int")]
    pub update_ts: i64,
}

impl Wire for KvMetadata {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.data(&self.version)?;
        w.i64(self.update_ts);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            version: r.data()?,
            update_ts: r.i64()?,
        })
    }
}

/// `[start, end]` or `[start, end)` key range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvListRangeQuery {
    /// Inclusive start.
    #[serde(serialize_with = "view::hex")]
    pub start: Vec<u8>,
    /// End, excluded when `exclusive`.
    #[serde(serialize_with = "view::hex")]
    pub end: Vec<u8>,
    /// Whether `end` is excluded.
    pub exclusive: bool,
}

/// All keys with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvListPrefixQuery {
    /// Prefix bytes.
    #[serde(serialize_with = "view::hex")]
    pub key: Vec<u8>,
}

/// What a list request selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum KvListQuery {
    /// Tag 0: every key.
    #[serde(rename = "KvListAllQuery")]
    All,
    /// Tag 1.
    #[serde(rename = "KvListRangeQuery")]
    Range(KvListRangeQuery),
    /// Tag 2.
    #[serde(rename = "KvListPrefixQuery")]
    Prefix(KvListPrefixQuery),
}

impl Wire for KvListQuery {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        match self {
            Self::All => w.u8(0),
            Self::Range(q) => {
                w.u8(1);
                w.data(&q.start)?;
                w.data(&q.end)?;
                w.bool(q.exclusive);
            }
            Self::Prefix(q) => {
                w.u8(2);
                w.data(&q.key)?;
            }
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::All,
            1 => Self::Range(KvListRangeQuery {
                start: r.data()?,
                end: r.data()?,
                exclusive: r.bool()?,
            }),
            2 => Self::Prefix(KvListPrefixQuery { key: r.data()? }),
            t => return Err(bad_tag("KvListQuery", t, r)),
        })
    }
}

/// Read keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvGetRequest {
    /// Keys to read (≤ 128).
    #[serde(serialize_with = "view::vec_hex")]
    pub keys: Vec<Vec<u8>>,
}

/// List keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvListRequest {
    /// Selection.
    pub query: KvListQuery,
    /// Descending order when true; absent = false.
    pub reverse: Option<bool>,
    /// Maximum number of entries; absent = no limit.
    #[serde(serialize_with = "view::opt_int")]
    pub limit: Option<u64>,
}

/// Write entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvPutRequest {
    /// Keys (≤ 128).
    #[serde(serialize_with = "view::vec_hex")]
    pub keys: Vec<Vec<u8>>,
    /// Values, parallel to `keys`.
    #[serde(serialize_with = "view::vec_hex")]
    pub values: Vec<Vec<u8>>,
}

/// Delete keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvDeleteRequest {
    /// Keys to delete.
    #[serde(serialize_with = "view::vec_hex")]
    pub keys: Vec<Vec<u8>>,
}

/// Delete `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvDeleteRangeRequest {
    /// Inclusive start.
    #[serde(serialize_with = "view::hex")]
    pub start: Vec<u8>,
    /// Exclusive end.
    #[serde(serialize_with = "view::hex")]
    pub end: Vec<u8>,
}

/// A KV operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum KvRequestData {
    /// Tag 0.
    #[serde(rename = "KvGetRequest")]
    Get(KvGetRequest),
    /// Tag 1.
    #[serde(rename = "KvListRequest")]
    List(KvListRequest),
    /// Tag 2.
    #[serde(rename = "KvPutRequest")]
    Put(KvPutRequest),
    /// Tag 3.
    #[serde(rename = "KvDeleteRequest")]
    Delete(KvDeleteRequest),
    /// Tag 4.
    #[serde(rename = "KvDeleteRangeRequest")]
    DeleteRange(KvDeleteRangeRequest),
    /// Tag 5: delete every key of the actor.
    #[serde(rename = "KvDropRequest")]
    Drop,
}

fn keys(w: &mut Writer, keys: &[Vec<u8>]) -> Result<()> {
    w.list(keys, |w, k| w.data(k))
}

impl Wire for KvRequestData {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        match self {
            Self::Get(q) => {
                w.u8(0);
                keys(w, &q.keys)
            }
            Self::List(q) => {
                w.u8(1);
                q.query.encode(w)?;
                w.option(q.reverse.as_ref(), |w, b| {
                    w.bool(*b);
                    Ok(())
                })?;
                w.option(q.limit.as_ref(), |w, l| {
                    w.u64(*l);
                    Ok(())
                })
            }
            Self::Put(q) => {
                w.u8(2);
                keys(w, &q.keys)?;
                keys(w, &q.values)
            }
            Self::Delete(q) => {
                w.u8(3);
                keys(w, &q.keys)
            }
            Self::DeleteRange(q) => {
                w.u8(4);
                w.data(&q.start)?;
                w.data(&q.end)
            }
            Self::Drop => {
                w.u8(5);
                Ok(())
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::Get(KvGetRequest {
                keys: r.list(Reader::data)?,
            }),
            1 => Self::List(KvListRequest {
                query: KvListQuery::decode(r)?,
                reverse: r.option(Reader::bool)?,
                limit: r.option(Reader::u64)?,
            }),
            2 => Self::Put(KvPutRequest {
                keys: r.list(Reader::data)?,
                values: r.list(Reader::data)?,
            }),
            3 => Self::Delete(KvDeleteRequest {
                keys: r.list(Reader::data)?,
            }),
            4 => Self::DeleteRange(KvDeleteRangeRequest {
                start: r.data()?,
                end: r.data()?,
            }),
            5 => Self::Drop,
            t => return Err(bad_tag("KvRequestData", t, r)),
        })
    }
}

/// A failed KV request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvErrorResponse {
    /// Free text.
    pub message: String,
}

/// Entries found by a get or list: parallel lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvEntries {
    /// Keys.
    #[serde(serialize_with = "view::vec_hex")]
    pub keys: Vec<Vec<u8>>,
    /// Values, parallel to `keys`.
    #[serde(serialize_with = "view::vec_hex")]
    pub values: Vec<Vec<u8>>,
    /// Metadata, parallel to `keys`.
    pub metadata: Vec<KvMetadata>,
}

/// Answer to a get: only keys that exist, in request order.
pub type KvGetResponse = KvEntries;
/// Answer to a list: ascending (descending if reversed).
pub type KvListResponse = KvEntries;

impl Wire for KvEntries {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        keys(w, &self.keys)?;
        keys(w, &self.values)?;
        w.list(&self.metadata, |w, m| m.encode(w))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            keys: r.list(Reader::data)?,
            values: r.list(Reader::data)?,
            metadata: r.list(KvMetadata::decode)?,
        })
    }
}

/// Result of a KV operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tag", content = "val")]
pub enum KvResponseData {
    /// Tag 0.
    #[serde(rename = "KvErrorResponse")]
    Error(KvErrorResponse),
    /// Tag 1.
    #[serde(rename = "KvGetResponse")]
    Get(KvGetResponse),
    /// Tag 2.
    #[serde(rename = "KvListResponse")]
    List(KvListResponse),
    /// Tag 3.
    #[serde(rename = "KvPutResponse")]
    Put,
    /// Tag 4 (answers Delete and DeleteRange).
    #[serde(rename = "KvDeleteResponse")]
    Delete,
    /// Tag 5.
    #[serde(rename = "KvDropResponse")]
    Drop,
}

impl Wire for KvResponseData {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        match self {
            Self::Error(e) => {
                w.u8(0);
                w.str(&e.message)
            }
            Self::Get(e) => {
                w.u8(1);
                e.encode(w)
            }
            Self::List(e) => {
                w.u8(2);
                e.encode(w)
            }
            Self::Put => {
                w.u8(3);
                Ok(())
            }
            Self::Delete => {
                w.u8(4);
                Ok(())
            }
            Self::Drop => {
                w.u8(5);
                Ok(())
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::Error(KvErrorResponse { message: r.str()? }),
            1 => Self::Get(KvEntries::decode(r)?),
            2 => Self::List(KvEntries::decode(r)?),
            3 => Self::Put,
            4 => Self::Delete,
            5 => Self::Drop,
            t => return Err(bad_tag("KvResponseData", t, r)),
        })
    }
}

/// Host KV request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToRivetKvRequest {
    /// Actor whose key space is addressed.
    pub actor_id: String,
    /// Chosen by the host, echoed in the response.
    pub request_id: u32,
    /// The operation.
    pub data: KvRequestData,
}

impl Wire for ToRivetKvRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.actor_id)?;
        w.u32(self.request_id);
        self.data.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            actor_id: r.str()?,
            request_id: r.u32()?,
            data: KvRequestData::decode(r)?,
        })
    }
}

/// Engine KV response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToEnvoyKvResponse {
    /// The request's id.
    pub request_id: u32,
    /// The result.
    pub data: KvResponseData,
}

impl Wire for ToEnvoyKvResponse {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u32(self.request_id);
        self.data.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            request_id: r.u32()?,
            data: KvResponseData::decode(r)?,
        })
    }
}
