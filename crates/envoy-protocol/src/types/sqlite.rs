//! SQLite page store (single-shot and staged commits) and remote SQL execution.

use serde::{Serialize, Serializer};

use crate::bare::{Reader, Writer};
use crate::error::Result;
use crate::view;
use crate::wire::{bad_tag, Wire};

fn opt_u64(w: &mut Writer, v: Option<u64>) -> Result<()> {
    w.option(v.as_ref(), |w, v| {
        w.u64(*v);
        Ok(())
    })
}

/// A page written by a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqliteDirtyPage {
    /// 1-based page number.
    pub pgno: u32,
    /// Page content (4096 bytes).
    #[serde(serialize_with = "view::hex")]
    pub bytes: Vec<u8>,
}

impl Wire for SqliteDirtyPage {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u32(self.pgno);
        w.data(&self.bytes)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            pgno: r.u32()?,
            bytes: r.data()?,
        })
    }
}

/// A page returned by a read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqliteFetchedPage {
    /// 1-based page number.
    pub pgno: u32,
    /// Page content, absent beyond the database size.
    #[serde(serialize_with = "view::opt_hex")]
    pub bytes: Option<Vec<u8>>,
}

impl Wire for SqliteFetchedPage {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u32(self.pgno);
        w.option(self.bytes.as_ref(), |w, b| w.data(b))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            pgno: r.u32()?,
            bytes: r.option(Reader::data)?,
        })
    }
}

/// Read pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteGetPagesRequest {
    /// The actor.
    pub actor_id: String,
    /// 1-based page numbers.
    pub pgnos: Vec<u32>,
    /// Generation fence (required by 2.3.19 engines).
    #[serde(serialize_with = "view::opt_int")]
    pub expected_generation: Option<u64>,
    /// Optional head fence.
    #[serde(serialize_with = "view::opt_int")]
    pub expected_head_txid: Option<u64>,
}

impl Wire for SqliteGetPagesRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.actor_id)?;
        w.list(&self.pgnos, |w, p| {
            w.u32(*p);
            Ok(())
        })?;
        opt_u64(w, self.expected_generation)?;
        opt_u64(w, self.expected_head_txid)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            actor_id: r.str()?,
            pgnos: r.list(Reader::u32)?,
            expected_generation: r.option(Reader::u64)?,
            expected_head_txid: r.option(Reader::u64)?,
        })
    }
}

/// Pages read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteGetPagesOk {
    /// One entry per requested page, in request order.
    pub pages: Vec<SqliteFetchedPage>,
    /// Current head.
    #[serde(serialize_with = "view::opt_int")]
    pub head_txid: Option<u64>,
}

impl Wire for SqliteGetPagesOk {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.list(&self.pages, |w, p| p.encode(w))?;
        opt_u64(w, self.head_txid)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            pages: r.list(SqliteFetchedPage::decode)?,
            head_txid: r.option(Reader::u64)?,
        })
    }
}

/// A failed SQLite request, `{group, code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqliteErrorResponse {
    /// Error group.
    pub group: String,
    /// Error code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

impl Wire for SqliteErrorResponse {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.group)?;
        w.str(&self.code)?;
        w.str(&self.message)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            group: r.str()?,
            code: r.str()?,
            message: r.str()?,
        })
    }
}

/// Single-shot commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteCommitRequest {
    /// The actor.
    pub actor_id: String,
    /// Pages written (4096 bytes each).
    pub dirty_pages: Vec<SqliteDirtyPage>,
    /// Database size after the commit.
    pub db_size_pages: u32,
    /// Host clock, ms.
    #[serde(serialize_with = "view::int")]
    pub now_ms: i64,
    /// Generation fence.
    #[serde(serialize_with = "view::opt_int")]
    pub expected_generation: Option<u64>,
    /// Head fence; 0 = empty database.
    #[serde(serialize_with = "view::opt_int")]
    pub expected_head_txid: Option<u64>,
}

impl Wire for SqliteCommitRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.actor_id)?;
        w.list(&self.dirty_pages, |w, p| p.encode(w))?;
        w.u32(self.db_size_pages);
        w.i64(self.now_ms);
        opt_u64(w, self.expected_generation)?;
        opt_u64(w, self.expected_head_txid)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            actor_id: r.str()?,
            dirty_pages: r.list(SqliteDirtyPage::decode)?,
            db_size_pages: r.u32()?,
            now_ms: r.i64()?,
            expected_generation: r.option(Reader::u64)?,
            expected_head_txid: r.option(Reader::u64)?,
        })
    }
}

/// A `{headTxid?}` success payload (commit and finalize).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteHeadTxid {
    /// New head.
    #[serde(serialize_with = "view::opt_int")]
    pub head_txid: Option<u64>,
}

/// Commit succeeded.
pub type SqliteCommitOk = SqliteHeadTxid;
/// Finalize succeeded (`headTxid` = txid).
pub type SqliteCommitFinalizeOk = SqliteHeadTxid;

impl Wire for SqliteHeadTxid {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        opt_u64(w, self.head_txid)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            head_txid: r.option(Reader::u64)?,
        })
    }
}

/// Staged commit, step 1 (v8 only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteCommitStageBeginRequest {
    /// The actor.
    pub actor_id: String,
    /// Generation fence.
    #[serde(serialize_with = "view::opt_int")]
    pub expected_generation: Option<u64>,
    /// Head fence, checked before staging.
    #[serde(serialize_with = "view::opt_int")]
    pub expected_head_txid: Option<u64>,
}

impl Wire for SqliteCommitStageBeginRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.actor_id)?;
        opt_u64(w, self.expected_generation)?;
        opt_u64(w, self.expected_head_txid)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            actor_id: r.str()?,
            expected_generation: r.option(Reader::u64)?,
            expected_head_txid: r.option(Reader::u64)?,
        })
    }
}

/// Stage begun.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqliteCommitStageBeginOk {
    /// head + 1.
    #[serde(serialize_with = "view::int")]
    pub txid: u64,
}

impl Wire for SqliteCommitStageBeginOk {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u64(self.txid);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self { txid: r.u64()? })
    }
}

/// Staged commit, step 2 (v8 only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteCommitStageSegmentRequest {
    /// The actor.
    pub actor_id: String,
    /// Generation fence.
    #[serde(serialize_with = "view::opt_int")]
    pub expected_generation: Option<u64>,
    /// From StageBegin.
    #[serde(serialize_with = "view::int")]
    pub txid: u64,
    /// Multiple of 64; the segment spans `[firstPgno, firstPgno + 320)`.
    pub first_pgno: u32,
    /// Pages inside the span.
    pub dirty_pages: Vec<SqliteDirtyPage>,
}

impl Wire for SqliteCommitStageSegmentRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.actor_id)?;
        opt_u64(w, self.expected_generation)?;
        w.u64(self.txid);
        w.u32(self.first_pgno);
        w.list(&self.dirty_pages, |w, p| p.encode(w))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            actor_id: r.str()?,
            expected_generation: r.option(Reader::u64)?,
            txid: r.u64()?,
            first_pgno: r.u32()?,
            dirty_pages: r.list(SqliteDirtyPage::decode)?,
        })
    }
}

/// Segment staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteCommitStageSegmentOk {
    /// Stored size of the segment.
    #[serde(serialize_with = "view::int")]
    pub staged_bytes: u64,
}

impl Wire for SqliteCommitStageSegmentOk {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u64(self.staged_bytes);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            staged_bytes: r.u64()?,
        })
    }
}

/// Staged commit, step 3 (v8 only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteCommitFinalizeRequest {
    /// The actor.
    pub actor_id: String,
    /// Generation fence.
    #[serde(serialize_with = "view::opt_int")]
    pub expected_generation: Option<u64>,
    /// Must still be head + 1.
    #[serde(serialize_with = "view::int")]
    pub txid: u64,
    /// Database size after the commit.
    pub new_db_size_pages: u32,
    /// Host clock, ms.
    #[serde(serialize_with = "view::int")]
    pub now_ms: i64,
    /// Every staged segment, ascending.
    pub segment_first_pgnos: Vec<u32>,
}

impl Wire for SqliteCommitFinalizeRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.actor_id)?;
        opt_u64(w, self.expected_generation)?;
        w.u64(self.txid);
        w.u32(self.new_db_size_pages);
        w.i64(self.now_ms);
        w.list(&self.segment_first_pgnos, |w, p| {
            w.u32(*p);
            Ok(())
        })
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            actor_id: r.str()?,
            expected_generation: r.option(Reader::u64)?,
            txid: r.u64()?,
            new_db_size_pages: r.u32()?,
            now_ms: r.i64()?,
            segment_first_pgnos: r.list(Reader::u32)?,
        })
    }
}

/// A SQLite value (bind parameter or result column).
#[derive(Debug, Clone, PartialEq)]
pub enum SqliteValue {
    /// Tag 0.
    Null,
    /// Tag 1.
    Integer(i64),
    /// Tag 2: f64, carried as 8 little-endian bytes (bit-exact).
    Float(f64),
    /// Tag 3.
    Text(String),
    /// Tag 4.
    Blob(Vec<u8>),
}

/// Bind parameter union (`SqliteBindParam`).
pub type SqliteBindParam = SqliteValue;
/// Result column union (`SqliteColumnValue`), identical to [`SqliteBindParam`].
pub type SqliteColumnValue = SqliteValue;

impl Serialize for SqliteValue {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        #[derive(Serialize)]
        struct Value<T> {
            value: T,
        }
        struct Hex<'a>(&'a [u8]);
        impl Serialize for Hex<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                view::hex(&self.0, s)
            }
        }
        let mut st = s.serialize_struct("SqliteValue", 2)?;
        match self {
            Self::Null => {
                st.serialize_field("tag", "SqliteValueNull")?;
                st.serialize_field("val", &())?;
            }
            Self::Integer(v) => {
                st.serialize_field("tag", "SqliteValueInteger")?;
                st.serialize_field(
                    "val",
                    &Value {
                        value: v.to_string(),
                    },
                )?;
            }
            Self::Float(v) => {
                st.serialize_field("tag", "SqliteValueFloat")?;
                let bytes = v.to_le_bytes();
                st.serialize_field("val", &Value { value: Hex(&bytes) })?;
            }
            Self::Text(v) => {
                st.serialize_field("tag", "SqliteValueText")?;
                st.serialize_field("val", &Value { value: v })?;
            }
            Self::Blob(v) => {
                st.serialize_field("tag", "SqliteValueBlob")?;
                st.serialize_field("val", &Value { value: Hex(v) })?;
            }
        }
        st.end()
    }
}

impl Wire for SqliteValue {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        match self {
            Self::Null => w.u8(0),
            Self::Integer(v) => {
                w.u8(1);
                w.i64(*v);
            }
            Self::Float(v) => {
                w.u8(2);
                w.f64(*v);
            }
            Self::Text(v) => {
                w.u8(3);
                w.str(v)?;
            }
            Self::Blob(v) => {
                w.u8(4);
                w.data(v)?;
            }
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Self::Null,
            1 => Self::Integer(r.i64()?),
            2 => Self::Float(r.f64()?),
            3 => Self::Text(r.str()?),
            4 => Self::Blob(r.data()?),
            t => return Err(bad_tag("SqliteValue", t, r)),
        })
    }
}

fn params(w: &mut Writer, p: Option<&Vec<SqliteValue>>) -> Result<()> {
    w.option(p, |w, p| w.list(p, |w, v| v.encode(w)))
}

fn read_params(r: &mut Reader<'_>) -> Result<Option<Vec<SqliteValue>>> {
    r.option(|r| r.list(SqliteValue::decode))
}

/// Run one or more statements; returns the last result set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteExecRequest {
    /// Namespace id (not name).
    pub namespace_id: String,
    /// The actor.
    pub actor_id: String,
    /// Generation fence.
    #[serde(serialize_with = "view::int")]
    pub generation: u64,
    /// SQL text.
    pub sql: String,
}

impl Wire for SqliteExecRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.namespace_id)?;
        w.str(&self.actor_id)?;
        w.u64(self.generation);
        w.str(&self.sql)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            namespace_id: r.str()?,
            actor_id: r.str()?,
            generation: r.u64()?,
            sql: r.str()?,
        })
    }
}

/// Run one statement with positional parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteExecuteRequest {
    /// Namespace id.
    pub namespace_id: String,
    /// The actor.
    pub actor_id: String,
    /// Generation fence.
    #[serde(serialize_with = "view::int")]
    pub generation: u64,
    /// One statement.
    pub sql: String,
    /// Positional bind values.
    pub params: Option<Vec<SqliteBindParam>>,
}

impl Wire for SqliteExecuteRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.namespace_id)?;
        w.str(&self.actor_id)?;
        w.u64(self.generation);
        w.str(&self.sql)?;
        params(w, self.params.as_ref())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            namespace_id: r.str()?,
            actor_id: r.str()?,
            generation: r.u64()?,
            sql: r.str()?,
            params: read_params(r)?,
        })
    }
}

/// One statement of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqliteBatchStatement {
    /// SQL text.
    pub sql: String,
    /// Positional bind values.
    pub params: Option<Vec<SqliteBindParam>>,
}

/// Run several statements, one result each.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteExecuteBatchRequest {
    /// Namespace id.
    pub namespace_id: String,
    /// The actor.
    pub actor_id: String,
    /// Generation fence.
    #[serde(serialize_with = "view::int")]
    pub generation: u64,
    /// The statements.
    pub statements: Vec<SqliteBatchStatement>,
}

impl Wire for SqliteExecuteBatchRequest {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.str(&self.namespace_id)?;
        w.str(&self.actor_id)?;
        w.u64(self.generation);
        w.list(&self.statements, |w, s| {
            w.str(&s.sql)?;
            params(w, s.params.as_ref())
        })
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            namespace_id: r.str()?,
            actor_id: r.str()?,
            generation: r.u64()?,
            statements: r.list(|r| {
                Ok(SqliteBatchStatement {
                    sql: r.str()?,
                    params: read_params(r)?,
                })
            })?,
        })
    }
}

fn rows(w: &mut Writer, rows: &[Vec<SqliteValue>]) -> Result<()> {
    w.list(rows, |w, row| w.list(row, |w, v| v.encode(w)))
}

fn read_rows(r: &mut Reader<'_>) -> Result<Vec<Vec<SqliteValue>>> {
    r.list(|r| r.list(SqliteValue::decode))
}

fn columns(w: &mut Writer, c: &[String]) -> Result<()> {
    w.list(c, |w, s| w.str(s))
}

/// Result set of `Exec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqliteQueryResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of column values.
    pub rows: Vec<Vec<SqliteColumnValue>>,
}

impl Wire for SqliteQueryResult {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        columns(w, &self.columns)?;
        rows(w, &self.rows)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            columns: r.list(Reader::str)?,
            rows: read_rows(r)?,
        })
    }
}

/// Result of one executed statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteExecuteResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of column values.
    pub rows: Vec<Vec<SqliteColumnValue>>,
    /// Rows changed.
    #[serde(serialize_with = "view::int")]
    pub changes: i64,
    /// Last inserted row id.
    #[serde(serialize_with = "view::opt_int")]
    pub last_insert_row_id: Option<i64>,
}

impl Wire for SqliteExecuteResult {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        columns(w, &self.columns)?;
        rows(w, &self.rows)?;
        w.i64(self.changes);
        w.option(self.last_insert_row_id.as_ref(), |w, v| {
            w.i64(*v);
            Ok(())
        })
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            columns: r.list(Reader::str)?,
            rows: read_rows(r)?,
            changes: r.i64()?,
            last_insert_row_id: r.option(Reader::i64)?,
        })
    }
}

/// `Exec` succeeded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqliteExecOk {
    /// The last result set.
    pub result: SqliteQueryResult,
}

impl Wire for SqliteExecOk {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        self.result.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            result: SqliteQueryResult::decode(r)?,
        })
    }
}

/// `Execute` succeeded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqliteExecuteOk {
    /// The statement's result.
    pub result: SqliteExecuteResult,
}

impl Wire for SqliteExecuteOk {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        self.result.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            result: SqliteExecuteResult::decode(r)?,
        })
    }
}

/// `ExecuteBatch` succeeded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqliteExecuteBatchOk {
    /// One result per statement.
    pub results: Vec<SqliteExecuteResult>,
}

impl Wire for SqliteExecuteBatchOk {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.list(&self.results, |w, x| x.encode(w))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            results: r.list(SqliteExecuteResult::decode)?,
        })
    }
}

/// Defines a `0 = Ok payload, 1 = SqliteErrorResponse` response union.
macro_rules! response_union {
    ($(#[$meta:meta])* $name:ident, $ok:ty, $ok_tag:literal $(, $eq:ident)?) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, $($eq,)? Serialize)]
        #[serde(tag = "tag", content = "val")]
        pub enum $name {
            /// Tag 0: success.
            #[serde(rename = $ok_tag)]
            Ok($ok),
            /// Tag 1: failure.
            #[serde(rename = "SqliteErrorResponse")]
            Error(SqliteErrorResponse),
        }

        impl Wire for $name {
            fn encode(&self, w: &mut Writer) -> Result<()> {
                match self {
                    Self::Ok(x) => {
                        w.u8(0);
                        x.encode(w)
                    }
                    Self::Error(x) => {
                        w.u8(1);
                        x.encode(w)
                    }
                }
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self> {
                Ok(match r.u8()? {
                    0 => Self::Ok(<$ok>::decode(r)?),
                    1 => Self::Error(SqliteErrorResponse::decode(r)?),
                    t => return Err(bad_tag(stringify!($name), t, r)),
                })
            }
        }
    };
}

response_union!(
    /// Answer to a page read.
    SqliteGetPagesResponse, SqliteGetPagesOk, "SqliteGetPagesOk", Eq
);
response_union!(
    /// Answer to a single-shot commit.
    SqliteCommitResponse, SqliteCommitOk, "SqliteCommitOk", Eq
);
response_union!(
    /// Answer to StageBegin.
    SqliteCommitStageBeginResponse, SqliteCommitStageBeginOk, "SqliteCommitStageBeginOk", Eq
);
response_union!(
    /// Answer to StageSegment.
    SqliteCommitStageSegmentResponse, SqliteCommitStageSegmentOk, "SqliteCommitStageSegmentOk", Eq
);
response_union!(
    /// Answer to Finalize.
    SqliteCommitFinalizeResponse, SqliteCommitFinalizeOk, "SqliteCommitFinalizeOk", Eq
);
response_union!(
    /// Answer to Exec.
    SqliteExecResponse, SqliteExecOk, "SqliteExecOk"
);
response_union!(
    /// Answer to Execute.
    SqliteExecuteResponse, SqliteExecuteOk, "SqliteExecuteOk"
);
response_union!(
    /// Answer to ExecuteBatch.
    SqliteExecuteBatchResponse, SqliteExecuteBatchOk, "SqliteExecuteBatchOk"
);
