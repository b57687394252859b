//! Per-actor SQLite page store: the SQLite requests of the actor-host socket
//! (`envoy-protocol.md` §5.7, §11). Each actor has one database, kept as 4096-byte pages and
//! replayed to its host through the host's virtual file system.
//!
//! Key layout, under `("sqlite", Id(uuid), label)` (see `rivet_store::tuple`):
//! - `("head",)` → `[1] ‖ head_txid (u64 LE) ‖ db_size_pages (u32 LE) ‖ now_ms (i64 LE)`; absent
//!   until the first commit, which is how "no database" is told apart from an empty one.
//! - `("page", pgno)` → the page's 4096 bytes. No page above `db_size_pages` is ever stored
//!   (commits truncate), so growing the database again yields zero pages.
//! - `("stage_txid",)` → u64 LE, the txid of the staged commit begun last.
//! - `("stage", txid, "seg", first_pgno)` → `pages (u32 LE) ‖ bytes (u64 LE)`: a staged segment.
//! - `("stage", txid, "pg", pgno)` → a staged page. Segments never overlap, so one page key per
//!   txid is enough, and a segment's pages are the range `[first_pgno, first_pgno + 320)`.
//!   Staged keys are never read by `get_pages`: nothing is visible before Finalize copies it.
//!
//! Every function runs inside the caller's transaction and takes the caller's view of the
//! actor's live generation, so the generation fence and the write commit together. A request
//! that fails writes nothing.

use rivet_envoy_protocol::{
    SqliteCommitFinalizeOk, SqliteCommitFinalizeRequest, SqliteCommitOk, SqliteCommitRequest,
    SqliteCommitStageBeginOk, SqliteCommitStageBeginRequest, SqliteCommitStageSegmentOk,
    SqliteCommitStageSegmentRequest, SqliteDirtyPage, SqliteErrorResponse, SqliteFetchedPage,
    SqliteGetPagesOk, SqliteGetPagesRequest,
};
use rivet_store::tuple::{self, Element, Subspace};
use rivet_store::{RangeOptions, StoreError, Tx, TxError};

use crate::id::Id;

/// Size of every page, in bytes.
pub const PAGE_SIZE: usize = 4096;
/// Pages per shard: a staged segment starts on a multiple of this.
pub const SHARD_PAGES: u32 = 64;
/// Pages one staged segment may span (5 shards).
pub const SEGMENT_PAGES: u32 = 5 * SHARD_PAGES;
/// Largest single-shot commit on a version 8 socket, in bytes (320 pages).
pub const V8_MAX_COMMIT_BYTES: usize = SEGMENT_PAGES as usize * PAGE_SIZE;

const HEAD_FORMAT: u8 = 1;
const HEAD_LEN: usize = 1 + 8 + 4 + 8;

/// Why a SQLite request failed. [`SqliteError::group`], [`SqliteError::code`] and
/// [`SqliteError::message`] fill the `SqliteErrorResponse` (see [`SqliteError::to_response`]).
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// `sqlite.invalid_request`: the request lacks `expectedGeneration`.
    #[error("sqlite {op} missing expectedGeneration")]
    MissingGeneration {
        /// The operation as the reference names it, e.g. `get_pages`.
        op: &'static str,
    },
    /// `core.internal_error`: the actor is not live, or not in the expected generation.
    #[error("actor does not exist")]
    ActorNotFound,
    /// `core.internal_error`: page number 0 was named.
    #[error("sqlite page number 0 is invalid")]
    InvalidPageNumber,
    /// `core.internal_error`: a dirty page is not 4096 bytes long.
    #[error("sqlite commit page {pgno} had {len} bytes, expected 4096")]
    PageSize {
        /// The page.
        pgno: u32,
        /// Its length.
        len: usize,
    },
    /// `depot.commit_too_large`: a single-shot commit is over the socket's limit.
    #[error("sqlite commit too large: actual_size_bytes={actual}, max_size_bytes={max}")]
    CommitTooLarge {
        /// Dirty bytes in the commit.
        actual: usize,
        /// The limit.
        max: usize,
    },
    /// `depot.head_fence_mismatch`: the request expected another head txid.
    #[error(
        "sqlite head fence mismatch: expected head txid {expected}, current head txid {current}"
    )]
    HeadFenceMismatch {
        /// The head the host expected.
        expected: u64,
        /// The stored head (0 when there is no database).
        current: u64,
    },
    /// `depot.database_not_found`: nothing was committed yet.
    #[error("sqlite database was not found in this bucket branch")]
    DatabaseNotFound,
    /// `depot.stage_segment_invalid`: `firstPgno` is not a multiple of 64.
    #[error("first page {first_pgno} is not shard-aligned")]
    SegmentNotAligned {
        /// The segment's first page.
        first_pgno: u32,
    },
    /// `depot.stage_segment_invalid`: a page lies above the segment's span.
    #[error("page {pgno} sits past the segment's 5-shard span")]
    PagePastSpan {
        /// The page.
        pgno: u32,
    },
    /// `depot.stage_segment_invalid`: a page lies below the segment's first page.
    #[error("page {pgno} sits before the segment's first page {first_pgno}")]
    PageBeforeSpan {
        /// The page.
        pgno: u32,
        /// The segment's first page.
        first_pgno: u32,
    },
    /// `depot.stage_segment_invalid`: the segment starts inside the previous segment's span.
    #[error("segment {first_pgno} overlaps the span of the segment at {previous}")]
    SegmentOverlap {
        /// The new segment's first page.
        first_pgno: u32,
        /// The first page of the last segment staged before it.
        previous: u32,
    },
    /// `depot.stage_segment_invalid`: the segment starts below an already staged one.
    #[error("segment {first_pgno} is below the segment at {previous}; segments must ascend")]
    SegmentOutOfOrder {
        /// The new segment's first page.
        first_pgno: u32,
        /// The first page of the last segment staged before it.
        previous: u32,
    },
    /// `depot.stage_not_found`: Finalize named a segment that was not staged.
    #[error("no staged segment at page {first_pgno} for txid {txid}")]
    SegmentNotFound {
        /// The missing segment's first page.
        first_pgno: u32,
        /// The staged transaction.
        txid: u64,
    },
    /// `depot.stage_not_found`: no StageBegin opened this txid (or a later one replaced it).
    #[error("no staged commit for txid {txid}")]
    StageNotFound {
        /// The txid the request named.
        txid: u64,
    },
    /// `core.internal_error`: stored data does not have the expected shape.
    #[error("corrupt sqlite data: {0}")]
    Corrupt(String),
    /// The store failed; conflicts are retried by the caller's `Db::txn`.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SqliteError {
    /// The error group of `SqliteErrorResponse`.
    pub fn group(&self) -> &'static str {
        match self {
            SqliteError::MissingGeneration { .. } => "sqlite",
            SqliteError::ActorNotFound
            | SqliteError::InvalidPageNumber
            | SqliteError::PageSize { .. }
            | SqliteError::Corrupt(_)
            | SqliteError::Store(_) => "core",
            SqliteError::CommitTooLarge { .. }
            | SqliteError::HeadFenceMismatch { .. }
            | SqliteError::DatabaseNotFound
            | SqliteError::SegmentNotAligned { .. }
            | SqliteError::PagePastSpan { .. }
            | SqliteError::PageBeforeSpan { .. }
            | SqliteError::SegmentOverlap { .. }
            | SqliteError::SegmentOutOfOrder { .. }
            | SqliteError::SegmentNotFound { .. }
            | SqliteError::StageNotFound { .. } => "depot",
        }
    }

    /// The error code of `SqliteErrorResponse`.
    pub fn code(&self) -> &'static str {
        match self {
            SqliteError::MissingGeneration { .. } => "invalid_request",
            SqliteError::ActorNotFound
            | SqliteError::InvalidPageNumber
            | SqliteError::PageSize { .. }
            | SqliteError::Corrupt(_)
            | SqliteError::Store(_) => "internal_error",
            SqliteError::CommitTooLarge { .. } => "commit_too_large",
            SqliteError::HeadFenceMismatch { .. } => "head_fence_mismatch",
            SqliteError::DatabaseNotFound => "database_not_found",
            SqliteError::SegmentNotAligned { .. }
            | SqliteError::PagePastSpan { .. }
            | SqliteError::PageBeforeSpan { .. }
            | SqliteError::SegmentOverlap { .. }
            | SqliteError::SegmentOutOfOrder { .. } => "stage_segment_invalid",
            SqliteError::SegmentNotFound { .. } | SqliteError::StageNotFound { .. } => {
                "stage_not_found"
            }
        }
    }

    /// The message of `SqliteErrorResponse`.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The whole `SqliteErrorResponse`.
    pub fn to_response(&self) -> SqliteErrorResponse {
        SqliteErrorResponse {
            group: self.group().to_string(),
            code: self.code().to_string(),
            message: self.message(),
        }
    }
}

impl TxError for SqliteError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            SqliteError::Store(error) => Some(error),
            _ => None,
        }
    }
}

/// The database's committed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    txid: u64,
    db_size_pages: u32,
}

fn space(actor: &Id) -> Subspace {
    Subspace::new(&("sqlite", tuple::Id(actor.uuid()), i64::from(actor.label())))
}

fn head_key(actor: &Id) -> Vec<u8> {
    space(actor).pack(&("head",))
}

fn pages(actor: &Id) -> Subspace {
    space(actor).subspace(&("page",))
}

fn stage_txid_key(actor: &Id) -> Vec<u8> {
    space(actor).pack(&("stage_txid",))
}

fn stages(actor: &Id) -> Subspace {
    space(actor).subspace(&("stage",))
}

fn stage_segments(actor: &Id, txid: u64) -> Subspace {
    stages(actor).subspace(&(txid_element(txid), "seg"))
}

fn stage_pages(actor: &Id, txid: u64) -> Subspace {
    stages(actor).subspace(&(txid_element(txid), "pg"))
}

/// Txids are u64 on the wire; the tuple layer has i64. A txid above `i64::MAX` cannot come from
/// a head (it would take 2^63 commits), so saturating keeps such a request harmlessly apart.
fn txid_element(txid: u64) -> i64 {
    i64::try_from(txid).unwrap_or(i64::MAX)
}

fn encode_head(head: Head, now_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD_LEN);
    out.push(HEAD_FORMAT);
    out.extend_from_slice(&head.txid.to_le_bytes());
    out.extend_from_slice(&head.db_size_pages.to_le_bytes());
    out.extend_from_slice(&now_ms.to_le_bytes());
    out
}

fn decode_head(bytes: &[u8]) -> Result<Head, SqliteError> {
    if bytes.len() != HEAD_LEN || bytes[0] != HEAD_FORMAT {
        return Err(SqliteError::Corrupt(format!(
            "head record of {} bytes",
            bytes.len()
        )));
    }
    let mut txid = [0u8; 8];
    txid.copy_from_slice(&bytes[1..9]);
    let mut size = [0u8; 4];
    size.copy_from_slice(&bytes[9..13]);
    Ok(Head {
        txid: u64::from_le_bytes(txid),
        db_size_pages: u32::from_le_bytes(size),
    })
}

async fn read_head(tx: &Tx, actor: &Id) -> Result<Option<Head>, SqliteError> {
    match tx.get(&head_key(actor)).await? {
        Some(bytes) => decode_head(&bytes).map(Some),
        None => Ok(None),
    }
}

async fn read_stage_txid(tx: &Tx, actor: &Id) -> Result<Option<u64>, SqliteError> {
    match tx.get(&stage_txid_key(actor)).await? {
        Some(bytes) => {
            let raw: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                SqliteError::Corrupt(format!("stage txid of {} bytes", bytes.len()))
            })?;
            Ok(Some(u64::from_le_bytes(raw)))
        }
        None => Ok(None),
    }
}

/// The generation fence: the host must name the actor's live generation.
fn check_generation(
    op: &'static str,
    expected: Option<u64>,
    current: Option<u32>,
) -> Result<(), SqliteError> {
    let expected = expected.ok_or(SqliteError::MissingGeneration { op })?;
    match current {
        Some(current) if u64::from(current) == expected => Ok(()),
        _ => Err(SqliteError::ActorNotFound),
    }
}

fn check_head_fence(expected: Option<u64>, current: u64) -> Result<(), SqliteError> {
    match expected {
        Some(expected) if expected != current => {
            Err(SqliteError::HeadFenceMismatch { expected, current })
        }
        _ => Ok(()),
    }
}

fn check_pages(dirty: &[SqliteDirtyPage]) -> Result<(), SqliteError> {
    for page in dirty {
        if page.pgno == 0 {
            return Err(SqliteError::InvalidPageNumber);
        }
        if page.bytes.len() != PAGE_SIZE {
            return Err(SqliteError::PageSize {
                pgno: page.pgno,
                len: page.bytes.len(),
            });
        }
    }
    Ok(())
}

/// The range of page keys from `first` (inclusive) to the end of the page subspace.
fn pages_from(actor: &Id, first: u32) -> (Vec<u8>, Vec<u8>) {
    let pages = pages(actor);
    let (_, end) = pages.range();
    (pages.pack(&(i64::from(first),)), end)
}

/// Drops every stored page above `new_size` when the database shrinks.
fn truncate(tx: &Tx, actor: &Id, old_size: u32, new_size: u32) {
    if new_size < old_size {
        let (begin, end) = pages_from(actor, new_size.saturating_add(1));
        tx.clear_range(&begin, &end);
    }
}

fn clear_stage(tx: &Tx, actor: &Id) {
    let (begin, end) = stages(actor).range();
    tx.clear_range(&begin, &end);
    tx.clear(&stage_txid_key(actor));
}

fn pgno_of(space: &Subspace, key: &[u8]) -> Result<u32, SqliteError> {
    match space.unpack(key)?.as_slice() {
        [Element::Int(pgno)] => {
            u32::try_from(*pgno).map_err(|_| SqliteError::Corrupt(format!("page number {pgno}")))
        }
        other => Err(SqliteError::Corrupt(format!("page key {other:?}"))),
    }
}

/// Reads pages for the host (`SqliteGetPagesRequest`): one entry per requested page, in request
/// order; absent above the database size, zeros for pages inside it that were never written.
pub async fn get_pages(
    tx: &Tx,
    actor: &Id,
    request: &SqliteGetPagesRequest,
    current_generation: Option<u32>,
) -> Result<SqliteGetPagesOk, SqliteError> {
    check_generation("get_pages", request.expected_generation, current_generation)?;
    if request.pgnos.contains(&0) {
        return Err(SqliteError::InvalidPageNumber);
    }
    let head = read_head(tx, actor).await?;
    check_head_fence(request.expected_head_txid, head.map_or(0, |h| h.txid))?;
    let head = head.ok_or(SqliteError::DatabaseNotFound)?;

    let mut wanted: Vec<u32> = request
        .pgnos
        .iter()
        .copied()
        .filter(|&p| p <= head.db_size_pages)
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = std::collections::HashMap::with_capacity(wanted.len());
    if let (Some(&lo), Some(&hi)) = (wanted.first(), wanted.last()) {
        let pages = pages(actor);
        let span = u64::from(hi - lo) + 1;
        // A dense request (npm asks for 1..128 at start) is one range read; a sparse one would
        // drag unrequested pages along, so it reads page by page.
        if span <= 2 * wanted.len() as u64 + 16 {
            let begin = pages.pack(&(i64::from(lo),));
            let end = pages.pack(&(i64::from(hi) + 1,));
            for (key, bytes) in tx.get_range(&begin, &end, RangeOptions::new()).await? {
                found.insert(pgno_of(&pages, &key)?, bytes);
            }
        } else {
            for &pgno in &wanted {
                if let Some(bytes) = tx.get(&pages.pack(&(i64::from(pgno),))).await? {
                    found.insert(pgno, bytes);
                }
            }
        }
    }
    let pages = request
        .pgnos
        .iter()
        .map(|&pgno| SqliteFetchedPage {
            pgno,
            bytes: (pgno <= head.db_size_pages).then(|| {
                found
                    .get(&pgno)
                    .cloned()
                    .unwrap_or_else(|| vec![0; PAGE_SIZE])
            }),
        })
        .collect();
    Ok(SqliteGetPagesOk {
        pages,
        head_txid: Some(head.txid),
    })
}

/// Applies a single-shot commit (`SqliteCommitRequest`): writes the dirty pages, sets the size
/// (dropping pages above it) and advances the head by one.
///
/// `max_commit_bytes` is [`V8_MAX_COMMIT_BYTES`] on version 8 sockets. Version 6 sockets pass
/// `None`: a v6 host has no staged commit, so the reference's 320-page limit would make its
/// large transactions fail for good. Accepting them is a deliberate deviation from the reference
/// (`envoy-protocol.md` §11).
pub async fn commit(
    tx: &Tx,
    actor: &Id,
    request: &SqliteCommitRequest,
    current_generation: Option<u32>,
    max_commit_bytes: Option<usize>,
) -> Result<SqliteCommitOk, SqliteError> {
    check_generation("commit", request.expected_generation, current_generation)?;
    check_pages(&request.dirty_pages)?;
    let actual: usize = request.dirty_pages.iter().map(|p| p.bytes.len()).sum();
    if let Some(max) = max_commit_bytes {
        if actual > max {
            return Err(SqliteError::CommitTooLarge { actual, max });
        }
    }
    let head = read_head(tx, actor).await?;
    let current = head.map_or(0, |h| h.txid);
    check_head_fence(request.expected_head_txid, current)?;

    let pages = pages(actor);
    for page in &request.dirty_pages {
        // Pages above the new size would be truncated at once; never storing them keeps the
        // invariant that no page above the size exists.
        if page.pgno <= request.db_size_pages {
            tx.set(&pages.pack(&(i64::from(page.pgno),)), &page.bytes)?;
        }
    }
    truncate(
        tx,
        actor,
        head.map_or(0, |h| h.db_size_pages),
        request.db_size_pages,
    );
    // A stage begun before this commit can no longer finalize (its txid is taken); drop it now
    // rather than leave its pages until the next StageBegin.
    if read_stage_txid(tx, actor).await?.is_some() {
        clear_stage(tx, actor);
    }
    let new = Head {
        txid: current + 1,
        db_size_pages: request.db_size_pages,
    };
    tx.set(&head_key(actor), &encode_head(new, request.now_ms))?;
    Ok(SqliteCommitOk {
        head_txid: Some(new.txid),
    })
}

/// Begins a staged commit (`SqliteCommitStageBeginRequest`): checks both fences and answers
/// `txid = head + 1`. Whatever an earlier, abandoned stage left is discarded.
pub async fn stage_begin(
    tx: &Tx,
    actor: &Id,
    request: &SqliteCommitStageBeginRequest,
    current_generation: Option<u32>,
) -> Result<SqliteCommitStageBeginOk, SqliteError> {
    check_generation(
        "commit_stage_begin",
        request.expected_generation,
        current_generation,
    )?;
    let current = read_head(tx, actor).await?.map_or(0, |h| h.txid);
    check_head_fence(request.expected_head_txid, current)?;
    let txid = current + 1;
    clear_stage(tx, actor);
    tx.set(&stage_txid_key(actor), &txid.to_le_bytes())?;
    Ok(SqliteCommitStageBeginOk { txid })
}

/// Stages one segment (`SqliteCommitStageSegmentRequest`) of the commit begun with `txid`.
/// Answers the bytes stored for it; nothing becomes readable before [`finalize`].
pub async fn stage_segment(
    tx: &Tx,
    actor: &Id,
    request: &SqliteCommitStageSegmentRequest,
    current_generation: Option<u32>,
) -> Result<SqliteCommitStageSegmentOk, SqliteError> {
    check_generation(
        "commit_stage",
        request.expected_generation,
        current_generation,
    )?;
    let first = request.first_pgno;
    if !first.is_multiple_of(SHARD_PAGES) {
        return Err(SqliteError::SegmentNotAligned { first_pgno: first });
    }
    check_pages(&request.dirty_pages)?;
    let span_end = u64::from(first) + u64::from(SEGMENT_PAGES);
    for page in &request.dirty_pages {
        if page.pgno < first {
            return Err(SqliteError::PageBeforeSpan {
                pgno: page.pgno,
                first_pgno: first,
            });
        }
        if u64::from(page.pgno) >= span_end {
            return Err(SqliteError::PagePastSpan { pgno: page.pgno });
        }
    }
    let txid = request.txid;
    let current = read_head(tx, actor).await?.map_or(0, |h| h.txid);
    if txid != current + 1 {
        return Err(SqliteError::HeadFenceMismatch {
            expected: txid.saturating_sub(1),
            current,
        });
    }
    if read_stage_txid(tx, actor).await? != Some(txid) {
        return Err(SqliteError::StageNotFound { txid });
    }

    let segments = stage_segments(actor, txid);
    let (begin, end) = segments.range();
    let last = tx
        .get_range(&begin, &end, RangeOptions::new().reverse().limit(1))
        .await?;
    if let Some((key, _)) = last.first() {
        let previous = pgno_of(&segments, key)?;
        if first <= previous {
            return Err(if first == previous {
                SqliteError::SegmentOverlap {
                    first_pgno: first,
                    previous,
                }
            } else {
                SqliteError::SegmentOutOfOrder {
                    first_pgno: first,
                    previous,
                }
            });
        }
        if u64::from(first) < u64::from(previous) + u64::from(SEGMENT_PAGES) {
            return Err(SqliteError::SegmentOverlap {
                first_pgno: first,
                previous,
            });
        }
    }

    let staged = stage_pages(actor, txid);
    let mut bytes = 0u64;
    for page in &request.dirty_pages {
        tx.set(&staged.pack(&(i64::from(page.pgno),)), &page.bytes)?;
        bytes += page.bytes.len() as u64;
    }
    let mut marker = Vec::with_capacity(12);
    marker.extend_from_slice(&(request.dirty_pages.len() as u32).to_le_bytes());
    marker.extend_from_slice(&bytes.to_le_bytes());
    tx.set(&segments.pack(&(i64::from(first),)), &marker)?;
    Ok(SqliteCommitStageSegmentOk {
        staged_bytes: bytes,
    })
}

/// Finalizes a staged commit (`SqliteCommitFinalizeRequest`): every listed segment must be
/// staged; their pages, the new size and `head = txid` become visible together, and the stage is
/// cleared. Staged segments the request does not list are discarded.
pub async fn finalize(
    tx: &Tx,
    actor: &Id,
    request: &SqliteCommitFinalizeRequest,
    current_generation: Option<u32>,
) -> Result<SqliteCommitFinalizeOk, SqliteError> {
    check_generation(
        "commit_finalize",
        request.expected_generation,
        current_generation,
    )?;
    let txid = request.txid;
    let head = read_head(tx, actor).await?;
    let current = head.map_or(0, |h| h.txid);
    if txid != current + 1 {
        return Err(SqliteError::HeadFenceMismatch {
            expected: txid.saturating_sub(1),
            current,
        });
    }
    let begun = read_stage_txid(tx, actor).await? == Some(txid);
    let segments = stage_segments(actor, txid);
    // Every segment is checked before anything is written, so a failed Finalize leaves no
    // partial copy behind even when the caller commits its transaction.
    for &first in &request.segment_first_pgnos {
        let present = begun
            && tx
                .get(&segments.pack(&(i64::from(first),)))
                .await?
                .is_some();
        if !present {
            return Err(SqliteError::SegmentNotFound {
                first_pgno: first,
                txid,
            });
        }
    }
    if !begun {
        return Err(SqliteError::StageNotFound { txid });
    }
    let staged = stage_pages(actor, txid);
    let pages = pages(actor);
    let new_size = request.new_db_size_pages;
    let mut copies = Vec::new();
    for &first in &request.segment_first_pgnos {
        let begin = staged.pack(&(i64::from(first),));
        let end = staged.pack(&(i64::from(first) + i64::from(SEGMENT_PAGES),));
        for (key, bytes) in tx.get_range(&begin, &end, RangeOptions::new()).await? {
            let pgno = pgno_of(&staged, &key)?;
            if pgno <= new_size {
                copies.push((pgno, bytes));
            }
        }
    }
    for (pgno, bytes) in copies {
        tx.set(&pages.pack(&(i64::from(pgno),)), &bytes)?;
    }
    truncate(tx, actor, head.map_or(0, |h| h.db_size_pages), new_size);
    clear_stage(tx, actor);
    let new = Head {
        txid,
        db_size_pages: new_size,
    };
    tx.set(&head_key(actor), &encode_head(new, request.now_ms))?;
    Ok(SqliteCommitFinalizeOk {
        head_txid: Some(txid),
    })
}

/// Removes the actor's database: pages, head and any stage (used when the actor is destroyed).
pub fn clear_actor(tx: &Tx, actor: &Id) {
    let (begin, end) = space(actor).range();
    tx.clear_range(&begin, &end);
}
