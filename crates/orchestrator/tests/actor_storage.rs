//! Actor KV and the SQLite page store against the real stores: memory, file_system (fjall) and
//! PostgreSQL (a fresh schema per test).

mod common;

use common::on_every_driver;
use std::collections::BTreeMap;

use proptest::prelude::*;
use rivet_envoy_protocol::{
    KvDeleteRangeRequest, KvDeleteRequest, KvEntries, KvGetRequest, KvListPrefixQuery, KvListQuery,
    KvListRangeQuery, KvListRequest, KvPutRequest, KvRequestData, KvResponseData,
    SqliteCommitFinalizeRequest, SqliteCommitRequest, SqliteCommitStageBeginRequest,
    SqliteCommitStageSegmentRequest, SqliteDirtyPage, SqliteGetPagesOk, SqliteGetPagesRequest,
};
use rivet_orchestrator::actor_data::delete_actor_data;
use rivet_orchestrator::actor_kv::{self, KvError};
use rivet_orchestrator::actor_sqlite::{self, SqliteError, V8_MAX_COMMIT_BYTES};
use rivet_orchestrator::id::Id;
use rivet_store::{Db, StoreConfig};

// ---------------------------------------------------------------------------------------------
// KV helpers

/// Runs one KV request the way the socket handler does: a failure becomes the answer and the
/// transaction still commits, so the tests also prove that failed requests write nothing.
async fn kv(db: &Db, actor: Id, request: KvRequestData, now: i64) -> KvResponseData {
    db.txn(move |tx| {
        let request = request.clone();
        async move {
            match actor_kv::handle(&tx, &actor, &request, now).await {
                Ok(response) => Ok(response),
                Err(KvError::Store(e)) => Err(e),
                Err(e) => Ok(KvResponseData::Error(
                    rivet_envoy_protocol::KvErrorResponse {
                        message: e.message(),
                    },
                )),
            }
        }
    })
    .await
    .unwrap()
}

fn put(keys: &[&[u8]], values: &[&[u8]]) -> KvRequestData {
    KvRequestData::Put(KvPutRequest {
        keys: keys.iter().map(|k| k.to_vec()).collect(),
        values: values.iter().map(|v| v.to_vec()).collect(),
    })
}

fn put_owned(keys: Vec<Vec<u8>>, values: Vec<Vec<u8>>) -> KvRequestData {
    KvRequestData::Put(KvPutRequest { keys, values })
}

fn get(keys: &[&[u8]]) -> KvRequestData {
    KvRequestData::Get(KvGetRequest {
        keys: keys.iter().map(|k| k.to_vec()).collect(),
    })
}

fn list(query: KvListQuery, reverse: Option<bool>, limit: Option<u64>) -> KvRequestData {
    KvRequestData::List(KvListRequest {
        query,
        reverse,
        limit,
    })
}

fn range(start: &[u8], end: &[u8], exclusive: bool) -> KvListQuery {
    KvListQuery::Range(KvListRangeQuery {
        start: start.to_vec(),
        end: end.to_vec(),
        exclusive,
    })
}

fn prefix(key: &[u8]) -> KvListQuery {
    KvListQuery::Prefix(KvListPrefixQuery { key: key.to_vec() })
}

fn entries(response: KvResponseData) -> KvEntries {
    match response {
        KvResponseData::Get(e) | KvResponseData::List(e) => e,
        other => panic!("expected entries, got {other:?}"),
    }
}

fn error_message(response: KvResponseData) -> String {
    match response {
        KvResponseData::Error(e) => e.message,
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn list_keys(
    db: &Db,
    actor: Id,
    query: KvListQuery,
    reverse: bool,
    limit: Option<u64>,
) -> Vec<Vec<u8>> {
    entries(kv(db, actor, list(query, Some(reverse), limit), 0).await).keys
}

async fn used(db: &Db, actor: Id) -> i64 {
    db.txn(move |tx| async move { actor_kv::storage_used(&tx, &actor).await })
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// KV tests

#[tokio::test]
async fn kv_get_returns_existing_keys_in_request_order_with_metadata() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        assert_eq!(
            kv(&db, actor, put(&[b"k1", b"k2"], &[b"v1", b"v2"]), 100).await,
            KvResponseData::Put
        );
        let got = entries(kv(&db, actor, get(&[b"k2", b"missing", b"k1", b"k2"]), 0).await);
        assert_eq!(
            got.keys,
            vec![b"k2".to_vec(), b"k1".to_vec(), b"k2".to_vec()]
        );
        assert_eq!(
            got.values,
            vec![b"v2".to_vec(), b"v1".to_vec(), b"v2".to_vec()]
        );
        assert_eq!(got.metadata.len(), 3);
        for m in &got.metadata {
            assert_eq!(m.version, b"2.3.19".to_vec());
            assert_eq!(m.update_ts, 100);
        }

        // Overwrite: new value and new update_ts; the REST read sees the same.
        kv(&db, actor, put(&[b"k1"], &[b"v1b"]), 200).await;
        let got = entries(kv(&db, actor, get(&[b"k1"]), 0).await);
        assert_eq!(got.values, vec![b"v1b".to_vec()]);
        assert_eq!(got.metadata[0].update_ts, 200);
        let one = db
            .txn(move |tx| async move { actor_kv::get_one(&tx, &actor, b"k1").await })
            .await
            .unwrap();
        assert_eq!(one, Some((b"v1b".to_vec(), 200)));
        let none = db
            .txn(move |tx| async move { actor_kv::get_one(&tx, &actor, b"nope").await })
            .await
            .unwrap();
        assert_eq!(none, None);

        // Another actor's key space is separate.
        let other = Id::new(1);
        assert!(entries(kv(&db, other, get(&[b"k1"]), 0).await)
            .keys
            .is_empty());
        assert!(list_keys(&db, other, KvListQuery::All, false, None)
            .await
            .is_empty());

        // Empty and binary keys and empty values round-trip.
        kv(&db, actor, put(&[b"", b"\x00\xff"], &[b"", b"\x00"]), 300).await;
        let got = entries(kv(&db, actor, get(&[b"", b"\x00\xff"]), 0).await);
        assert_eq!(got.keys, vec![b"".to_vec(), b"\x00\xff".to_vec()]);
        assert_eq!(got.values, vec![b"".to_vec(), b"\x00".to_vec()]);
    })
    .await;
}

#[tokio::test]
async fn kv_limits_are_enforced_and_failed_requests_write_nothing() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        let many: Vec<Vec<u8>> = (0..129u32).map(|i| i.to_be_bytes().to_vec()).collect();

        // Get and Delete over 128 keys.
        let too_many_get = KvRequestData::Get(KvGetRequest { keys: many.clone() });
        assert_eq!(
            error_message(kv(&db, actor, too_many_get, 0).await),
            "a maximum of 128 keys is allowed"
        );
        let too_many_delete = KvRequestData::Delete(KvDeleteRequest { keys: many.clone() });
        assert_eq!(
            error_message(kv(&db, actor, too_many_delete, 0).await),
            "a maximum of 128 keys is allowed"
        );

        // Every Put violation answers "transaction failed" and writes nothing.
        let violations = [
            put_owned(many.clone(), vec![b"v".to_vec(); 129]),
            put_owned(vec![b"a".to_vec(), b"b".to_vec()], vec![b"v".to_vec()]),
            put_owned(vec![vec![b'k'; 2049]], vec![b"v".to_vec()]),
            put_owned(vec![b"a".to_vec()], vec![vec![0; 128 * 1024 + 1]]),
            // 8 × 128 KiB values: each is allowed, the sum is over 976 KiB.
            put_owned(
                (0..8u8).map(|i| vec![i]).collect(),
                vec![vec![7; 128 * 1024]; 8],
            ),
            // A valid first entry does not get written when a later one is invalid.
            put_owned(
                vec![b"ok".to_vec(), b"bad".to_vec()],
                vec![b"v".to_vec(), vec![0; 128 * 1024 + 1]],
            ),
        ];
        for request in violations {
            assert_eq!(
                error_message(kv(&db, actor, request, 0).await),
                "transaction failed"
            );
        }
        assert!(list_keys(&db, actor, KvListQuery::All, false, None)
            .await
            .is_empty());
        assert_eq!(used(&db, actor).await, 0);

        // The limits themselves are allowed: 128 keys; a 2048-byte key; a 128 KiB value; a
        // payload of exactly 976 KiB.
        let keys128: Vec<Vec<u8>> = many[..128].to_vec();
        assert_eq!(
            kv(
                &db,
                actor,
                put_owned(keys128.clone(), vec![b"v".to_vec(); 128]),
                1
            )
            .await,
            KvResponseData::Put
        );
        let got = entries(
            kv(
                &db,
                actor,
                KvRequestData::Get(KvGetRequest { keys: keys128 }),
                0,
            )
            .await,
        );
        assert_eq!(got.keys.len(), 128);
        let long_key = vec![b'k'; 2048];
        assert_eq!(
            kv(
                &db,
                actor,
                put_owned(vec![long_key.clone()], vec![vec![1; 128 * 1024]]),
                1
            )
            .await,
            KvResponseData::Put
        );
        let got = entries(
            kv(
                &db,
                actor,
                KvRequestData::Get(KvGetRequest {
                    keys: vec![long_key],
                }),
                0,
            )
            .await,
        );
        assert_eq!(got.values[0].len(), 128 * 1024);
        let total = 976 * 1024;
        let mut values = vec![vec![9u8; 128 * 1024]; 7];
        // Seven keys of one byte, seven full values, and the remainder in an eighth value.
        let rest = total - 7 * 128 * 1024 - 8;
        values.push(vec![9u8; rest]);
        let keys: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i]).collect();
        assert_eq!(keys.iter().map(Vec::len).sum::<usize>(), 8);
        assert_eq!(
            kv(&db, actor, put_owned(keys, values), 1).await,
            KvResponseData::Put
        );
    })
    .await;
}

#[tokio::test]
async fn kv_list_orders_by_bytes_with_reverse_limit_range_and_prefix() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        let all: Vec<&[u8]> = vec![
            b"",
            b"\x00",
            b"\x01",
            b"\x01\x00",
            b"\x02",
            b"a",
            b"ab",
            b"abc",
            b"b",
            b"\xff",
            b"\xff\xff",
        ];
        // Put in a shuffled order.
        let mut shuffled = all.clone();
        shuffled.reverse();
        shuffled.swap(0, 5);
        let values: Vec<&[u8]> = shuffled.clone();
        kv(&db, actor, put(&shuffled, &values), 1).await;
        let owned = |v: &[&[u8]]| v.iter().map(|k| k.to_vec()).collect::<Vec<_>>();

        let asc = entries(kv(&db, actor, list(KvListQuery::All, None, None), 0).await);
        assert_eq!(asc.keys, owned(&all));
        // Values and metadata stay parallel to keys.
        assert_eq!(asc.values, owned(&all));
        assert_eq!(asc.metadata.len(), all.len());

        let mut desc = owned(&all);
        desc.reverse();
        assert_eq!(
            list_keys(&db, actor, KvListQuery::All, true, None).await,
            desc
        );
        assert_eq!(
            list_keys(&db, actor, KvListQuery::All, false, Some(2)).await,
            owned(&all[..2])
        );
        assert_eq!(
            list_keys(&db, actor, KvListQuery::All, true, Some(3)).await,
            desc[..3].to_vec()
        );
        assert!(list_keys(&db, actor, KvListQuery::All, false, Some(0))
            .await
            .is_empty());

        // Range: start inclusive, end excluded or included.
        assert_eq!(
            list_keys(&db, actor, range(b"\x01", b"ab", true), false, None).await,
            owned(&[b"\x01", b"\x01\x00", b"\x02", b"a"])
        );
        assert_eq!(
            list_keys(&db, actor, range(b"\x01", b"ab", false), false, None).await,
            owned(&[b"\x01", b"\x01\x00", b"\x02", b"a", b"ab"])
        );
        assert_eq!(
            list_keys(&db, actor, range(b"\x01", b"ab", false), true, Some(2)).await,
            owned(&[b"ab", b"a"])
        );
        assert_eq!(
            list_keys(&db, actor, range(b"a", b"b", false), false, None).await,
            owned(&[b"a", b"ab", b"abc", b"b"])
        );
        assert!(list_keys(&db, actor, range(b"b", b"a", false), false, None)
            .await
            .is_empty());
        assert_eq!(
            list_keys(&db, actor, range(b"b", b"\xff\xff", false), false, None).await,
            owned(&[b"b", b"\xff", b"\xff\xff"])
        );

        // Prefix.
        assert_eq!(
            list_keys(&db, actor, prefix(b"a"), false, None).await,
            owned(&[b"a", b"ab", b"abc"])
        );
        assert_eq!(
            list_keys(&db, actor, prefix(b"ab"), true, None).await,
            owned(&[b"abc", b"ab"])
        );
        assert_eq!(
            list_keys(&db, actor, prefix(b"a"), false, Some(1)).await,
            owned(&[b"a"])
        );
        assert_eq!(
            list_keys(&db, actor, prefix(b"\x01"), false, None).await,
            owned(&[b"\x01", b"\x01\x00"])
        );
        assert_eq!(
            list_keys(&db, actor, prefix(b"\xff"), false, None).await,
            owned(&[b"\xff", b"\xff\xff"])
        );
        assert_eq!(
            list_keys(&db, actor, prefix(b""), false, None).await,
            owned(&all)
        );
        assert!(list_keys(&db, actor, prefix(b"c"), false, None)
            .await
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn kv_delete_delete_range_and_drop_keep_the_size_counter_right() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        let other = Id::new(1);
        kv(&db, other, put(&[b"x"], &[b"keep"]), 1).await;
        kv(
            &db,
            actor,
            put(
                &[b"a", b"b", b"c", b"d", b"e"],
                &[b"1", b"22", b"333", b"4444", b"55555"],
            ),
            1,
        )
        .await;
        assert_eq!(used(&db, actor).await, 5 + 15);
        // Overwrites count the difference; a key named twice counts once, with its last value.
        kv(&db, actor, put(&[b"a", b"a"], &[b"xxxxxx", b"yy"]), 2).await;
        assert_eq!(used(&db, actor).await, 5 + 16);
        assert_eq!(
            entries(kv(&db, actor, get(&[b"a"]), 0).await).values,
            vec![b"yy".to_vec()]
        );

        // Delete of existing, missing and repeated keys.
        let delete = KvRequestData::Delete(KvDeleteRequest {
            keys: vec![b"a".to_vec(), b"zz".to_vec(), b"a".to_vec()],
        });
        assert_eq!(kv(&db, actor, delete, 3).await, KvResponseData::Delete);
        assert_eq!(used(&db, actor).await, 4 + 14);

        // DeleteRange is [start, end).
        let delete_range = KvRequestData::DeleteRange(KvDeleteRangeRequest {
            start: b"b".to_vec(),
            end: b"d".to_vec(),
        });
        assert_eq!(
            kv(&db, actor, delete_range, 4).await,
            KvResponseData::Delete
        );
        assert_eq!(
            list_keys(&db, actor, KvListQuery::All, false, None).await,
            vec![b"d".to_vec(), b"e".to_vec()]
        );
        assert_eq!(used(&db, actor).await, 2 + 9);
        // An inverted range deletes nothing.
        let inverted = KvRequestData::DeleteRange(KvDeleteRangeRequest {
            start: b"z".to_vec(),
            end: b"a".to_vec(),
        });
        assert_eq!(kv(&db, actor, inverted, 4).await, KvResponseData::Delete);
        assert_eq!(
            list_keys(&db, actor, KvListQuery::All, false, None)
                .await
                .len(),
            2
        );

        // Drop removes every key of the actor, and only of that actor.
        assert_eq!(
            kv(&db, actor, KvRequestData::Drop, 5).await,
            KvResponseData::Drop
        );
        assert!(list_keys(&db, actor, KvListQuery::All, false, None)
            .await
            .is_empty());
        assert_eq!(used(&db, actor).await, 0);
        assert_eq!(
            entries(kv(&db, other, get(&[b"x"]), 0).await).values,
            vec![b"keep".to_vec()]
        );
        assert_eq!(used(&db, other).await, 5);
        // The actor can write again after a drop.
        kv(&db, actor, put(&[b"n"], &[b"new"]), 6).await;
        assert_eq!(used(&db, actor).await, 4);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// SQLite helpers

const GEN: u32 = 3;

fn page(fill: u8) -> Vec<u8> {
    vec![fill; 4096]
}

fn dirty(pgno: u32, fill: u8) -> SqliteDirtyPage {
    SqliteDirtyPage {
        pgno,
        bytes: page(fill),
    }
}

fn get_req(pgnos: Vec<u32>, generation: Option<u64>, head: Option<u64>) -> SqliteGetPagesRequest {
    SqliteGetPagesRequest {
        actor_id: String::new(),
        pgnos,
        expected_generation: generation,
        expected_head_txid: head,
    }
}

fn commit_req(
    pages: Vec<SqliteDirtyPage>,
    size: u32,
    generation: Option<u64>,
    head: Option<u64>,
) -> SqliteCommitRequest {
    SqliteCommitRequest {
        actor_id: String::new(),
        dirty_pages: pages,
        db_size_pages: size,
        now_ms: 1,
        expected_generation: generation,
        expected_head_txid: head,
    }
}

async fn get_pages(
    db: &Db,
    actor: Id,
    req: SqliteGetPagesRequest,
    current: Option<u32>,
) -> Result<SqliteGetPagesOk, SqliteError> {
    db.txn(move |tx| {
        let req = req.clone();
        async move { actor_sqlite::get_pages(&tx, &actor, &req, current).await }
    })
    .await
}

/// Runs a commit the way the socket handler does: a refused commit still commits the
/// transaction, so the tests also prove that refused commits write nothing.
async fn commit_with(
    db: &Db,
    actor: Id,
    req: SqliteCommitRequest,
    current: Option<u32>,
    max: Option<usize>,
) -> Result<Option<u64>, SqliteError> {
    let outcome = db
        .txn(move |tx| {
            let req = req.clone();
            async move {
                match actor_sqlite::commit(&tx, &actor, &req, current, max).await {
                    Ok(ok) => Ok(Ok(ok.head_txid)),
                    Err(SqliteError::Store(e)) => Err(e),
                    Err(e) => Ok(Err(e)),
                }
            }
        })
        .await;
    outcome.unwrap()
}

async fn commit(db: &Db, actor: Id, pages: Vec<SqliteDirtyPage>, size: u32, head: u64) -> u64 {
    commit_with(
        db,
        actor,
        commit_req(pages, size, Some(u64::from(GEN)), Some(head)),
        Some(GEN),
        Some(V8_MAX_COMMIT_BYTES),
    )
    .await
    .unwrap()
    .unwrap()
}

async fn stage_begin(db: &Db, actor: Id, head: Option<u64>) -> Result<u64, SqliteError> {
    let req = SqliteCommitStageBeginRequest {
        actor_id: String::new(),
        expected_generation: Some(u64::from(GEN)),
        expected_head_txid: head,
    };
    db.txn(move |tx| {
        let req = req.clone();
        async move {
            actor_sqlite::stage_begin(&tx, &actor, &req, Some(GEN))
                .await
                .map(|ok| ok.txid)
        }
    })
    .await
}

async fn stage_segment(
    db: &Db,
    actor: Id,
    txid: u64,
    first: u32,
    pages: Vec<SqliteDirtyPage>,
) -> Result<u64, SqliteError> {
    let req = SqliteCommitStageSegmentRequest {
        actor_id: String::new(),
        expected_generation: Some(u64::from(GEN)),
        txid,
        first_pgno: first,
        dirty_pages: pages,
    };
    let outcome = db
        .txn(move |tx| {
            let req = req.clone();
            async move {
                match actor_sqlite::stage_segment(&tx, &actor, &req, Some(GEN)).await {
                    Ok(ok) => Ok(Ok(ok.staged_bytes)),
                    Err(SqliteError::Store(e)) => Err(e),
                    Err(e) => Ok(Err(e)),
                }
            }
        })
        .await;
    outcome.unwrap()
}

async fn finalize(
    db: &Db,
    actor: Id,
    txid: u64,
    size: u32,
    segments: Vec<u32>,
) -> Result<Option<u64>, SqliteError> {
    let req = SqliteCommitFinalizeRequest {
        actor_id: String::new(),
        expected_generation: Some(u64::from(GEN)),
        txid,
        new_db_size_pages: size,
        now_ms: 2,
        segment_first_pgnos: segments,
    };
    let outcome = db
        .txn(move |tx| {
            let req = req.clone();
            async move {
                match actor_sqlite::finalize(&tx, &actor, &req, Some(GEN)).await {
                    Ok(ok) => Ok(Ok(ok.head_txid)),
                    Err(SqliteError::Store(e)) => Err(e),
                    Err(e) => Ok(Err(e)),
                }
            }
        })
        .await;
    outcome.unwrap()
}

/// Reads pages `pgnos` at the live generation; `None` entries are absent pages, otherwise the
/// fill byte of the page (pages are written uniformly).
async fn read(db: &Db, actor: Id, pgnos: Vec<u32>) -> (Vec<Option<u8>>, Option<u64>) {
    let ok = get_pages(
        db,
        actor,
        get_req(pgnos.clone(), Some(u64::from(GEN)), None),
        Some(GEN),
    )
    .await
    .unwrap();
    assert_eq!(ok.pages.iter().map(|p| p.pgno).collect::<Vec<_>>(), pgnos);
    let fills = ok
        .pages
        .iter()
        .map(|p| {
            p.bytes.as_ref().map(|b| {
                assert_eq!(b.len(), 4096);
                assert!(
                    b.iter().all(|x| *x == b[0]),
                    "page {} is not uniform",
                    p.pgno
                );
                b[0]
            })
        })
        .collect();
    (fills, ok.head_txid)
}

fn assert_error(err: &SqliteError, group: &str, code: &str, message: &str) {
    assert_eq!(
        (err.group(), err.code(), err.message().as_str()),
        (group, code, message),
        "{err:?}"
    );
    let response = err.to_response();
    assert_eq!(response.group, group);
    assert_eq!(response.code, code);
    assert_eq!(response.message, message);
}

// ---------------------------------------------------------------------------------------------
// SQLite tests

#[tokio::test]
async fn sqlite_commit_then_get_pages_with_zero_and_absent_pages() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        let err = get_pages(&db, actor, get_req(vec![1, 2], Some(3), None), Some(GEN))
            .await
            .unwrap_err();
        assert_error(
            &err,
            "depot",
            "database_not_found",
            "sqlite database was not found in this bucket branch",
        );

        // First commit: fence 0, pages 1 and 3 of a 4-page database.
        let head = commit(&db, actor, vec![dirty(1, 0xA1), dirty(3, 0xA3)], 4, 0).await;
        assert_eq!(head, 1);
        let (pages, head) = read(&db, actor, vec![3, 1, 2, 4, 5, 100]).await;
        assert_eq!(
            pages,
            vec![Some(0xA3), Some(0xA1), Some(0), Some(0), None, None]
        );
        assert_eq!(head, Some(1));

        // Second commit overwrites and grows; an empty commit still advances the head.
        assert_eq!(
            commit(&db, actor, vec![dirty(1, 0xB1), dirty(6, 0xB6)], 6, 1).await,
            2
        );
        assert_eq!(commit(&db, actor, vec![], 6, 2).await, 3);
        let (pages, head) = read(&db, actor, vec![1, 2, 3, 4, 5, 6, 7]).await;
        assert_eq!(
            pages,
            vec![
                Some(0xB1),
                Some(0),
                Some(0xA3),
                Some(0),
                Some(0),
                Some(0xB6),
                None
            ]
        );
        assert_eq!(head, Some(3));

        // A sparse request (page by page rather than one range read) gives the same answers.
        assert_eq!(commit(&db, actor, vec![dirty(60, 0x60)], 60, 3).await, 4);
        let (pages, head) = read(&db, actor, vec![60, 1, 1_000_000, 3, 59]).await;
        assert_eq!(
            pages,
            vec![Some(0x60), Some(0xB1), None, Some(0xA3), Some(0)]
        );
        assert_eq!(head, Some(4));

        // The head fence on reads.
        let err = get_pages(&db, actor, get_req(vec![1], Some(3), Some(3)), Some(GEN))
            .await
            .unwrap_err();
        assert_error(
            &err,
            "depot",
            "head_fence_mismatch",
            "sqlite head fence mismatch: expected head txid 3, current head txid 4",
        );
        let ok = get_pages(&db, actor, get_req(vec![1], Some(3), Some(4)), Some(GEN))
            .await
            .unwrap();
        assert_eq!(ok.head_txid, Some(4));

        // Page 0 is invalid.
        let err = get_pages(&db, actor, get_req(vec![1, 0], Some(3), None), Some(GEN))
            .await
            .unwrap_err();
        assert_eq!((err.group(), err.code()), ("core", "internal_error"));

        // Another actor has no database.
        let err = get_pages(&db, Id::new(1), get_req(vec![1], Some(3), None), Some(GEN))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "database_not_found");
    })
    .await;
}

#[tokio::test]
async fn sqlite_commit_truncates_above_the_new_size() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        let pages: Vec<SqliteDirtyPage> = (1..=10).map(|p| dirty(p, p as u8)).collect();
        assert_eq!(commit(&db, actor, pages, 10, 0).await, 1);
        // Shrink to 5; a page written above the new size is dropped too.
        assert_eq!(
            commit(&db, actor, vec![dirty(2, 0x22), dirty(8, 0x88)], 5, 1).await,
            2
        );
        let all: Vec<u32> = (1..=10).collect();
        let (fills, _) = read(&db, actor, all.clone()).await;
        assert_eq!(
            fills,
            vec![
                Some(1),
                Some(0x22),
                Some(3),
                Some(4),
                Some(5),
                None,
                None,
                None,
                None,
                None
            ]
        );
        // Growing again shows zeros where truncated pages were.
        assert_eq!(commit(&db, actor, vec![dirty(7, 0x77)], 10, 2).await, 3);
        let (fills, head) = read(&db, actor, all).await;
        assert_eq!(
            fills,
            vec![
                Some(1),
                Some(0x22),
                Some(3),
                Some(4),
                Some(5),
                Some(0),
                Some(0x77),
                Some(0),
                Some(0),
                Some(0)
            ]
        );
        assert_eq!(head, Some(3));
        // Size 0 empties the database but keeps it (head 4, every page absent).
        assert_eq!(commit(&db, actor, vec![], 0, 3).await, 4);
        let (fills, head) = read(&db, actor, vec![1, 2]).await;
        assert_eq!(fills, vec![None, None]);
        assert_eq!(head, Some(4));
    })
    .await;
}

#[tokio::test]
async fn sqlite_fences_and_commit_validation() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        let gen = Some(u64::from(GEN));
        let v8 = Some(V8_MAX_COMMIT_BYTES);

        // Generation missing, wrong, or actor not live.
        let err = get_pages(&db, actor, get_req(vec![1], None, None), Some(GEN))
            .await
            .unwrap_err();
        assert_error(
            &err,
            "sqlite",
            "invalid_request",
            "sqlite get_pages missing expectedGeneration",
        );
        let err = commit_with(
            &db,
            actor,
            commit_req(vec![dirty(1, 1)], 1, None, Some(0)),
            Some(GEN),
            v8,
        )
        .await
        .unwrap_err();
        assert_error(
            &err,
            "sqlite",
            "invalid_request",
            "sqlite commit missing expectedGeneration",
        );
        for current in [Some(GEN + 1), None] {
            let err = commit_with(
                &db,
                actor,
                commit_req(vec![dirty(1, 1)], 1, gen, Some(0)),
                current,
                v8,
            )
            .await
            .unwrap_err();
            assert_error(&err, "core", "internal_error", "actor does not exist");
            let err = get_pages(&db, actor, get_req(vec![1], gen, None), current)
                .await
                .unwrap_err();
            assert_error(&err, "core", "internal_error", "actor does not exist");
        }

        // Head fence on an empty database.
        let err = commit_with(
            &db,
            actor,
            commit_req(vec![dirty(1, 1)], 1, gen, Some(1)),
            Some(GEN),
            v8,
        )
        .await
        .unwrap_err();
        assert_error(
            &err,
            "depot",
            "head_fence_mismatch",
            "sqlite head fence mismatch: expected head txid 1, current head txid 0",
        );

        // Wrong page size.
        let mut short = vec![dirty(1, 1), dirty(3, 3)];
        short[1].bytes.truncate(100);
        let err = commit_with(
            &db,
            actor,
            commit_req(short, 3, gen, Some(0)),
            Some(GEN),
            v8,
        )
        .await
        .unwrap_err();
        assert_error(
            &err,
            "core",
            "internal_error",
            "sqlite commit page 3 had 100 bytes, expected 4096",
        );

        // 321 pages: too large on a v8 socket, accepted without a limit (v6).
        let big: Vec<SqliteDirtyPage> = (1..=321).map(|p| dirty(p, (p % 251) as u8)).collect();
        let err = commit_with(
            &db,
            actor,
            commit_req(big.clone(), 321, gen, Some(0)),
            Some(GEN),
            v8,
        )
        .await
        .unwrap_err();
        assert_error(
            &err,
            "depot",
            "commit_too_large",
            "sqlite commit too large: actual_size_bytes=1314816, max_size_bytes=1310720",
        );
        // Nothing refused above was written.
        let err = get_pages(&db, actor, get_req(vec![1], gen, None), Some(GEN))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "database_not_found");

        // Exactly 320 pages pass on v8.
        let head = commit_with(
            &db,
            actor,
            commit_req(big[..320].to_vec(), 320, gen, Some(0)),
            Some(GEN),
            v8,
        )
        .await
        .unwrap();
        assert_eq!(head, Some(1));
        let head = commit_with(
            &db,
            actor,
            commit_req(big, 321, gen, Some(1)),
            Some(GEN),
            None,
        )
        .await
        .unwrap();
        assert_eq!(head, Some(2));
        let (fills, _) = read(&db, actor, vec![1, 250, 321]).await;
        assert_eq!(fills, vec![Some(1), Some(250), Some(70)]);

        // Without a head fence the commit applies to whatever the head is.
        let head = commit_with(
            &db,
            actor,
            commit_req(vec![], 321, gen, None),
            Some(GEN),
            v8,
        )
        .await
        .unwrap();
        assert_eq!(head, Some(3));
    })
    .await;
}

#[tokio::test]
async fn sqlite_staged_commit_becomes_visible_only_at_finalize() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        assert_eq!(
            commit(&db, actor, vec![dirty(1, 0x01), dirty(2, 0x02)], 2, 0).await,
            1
        );

        let txid = stage_begin(&db, actor, Some(1)).await.unwrap();
        assert_eq!(txid, 2);
        // The npm 2.3.19 example: 304, 320 and 111 pages at 0, 320 and 640.
        let seg0: Vec<SqliteDirtyPage> = (1..=304).map(|p| dirty(p, 0x10)).collect();
        let seg1: Vec<SqliteDirtyPage> = (320..640).map(|p| dirty(p, 0x20)).collect();
        let seg2: Vec<SqliteDirtyPage> = (640..751).map(|p| dirty(p, 0x30)).collect();
        assert_eq!(
            stage_segment(&db, actor, txid, 0, seg0).await.unwrap(),
            304 * 4096
        );
        assert_eq!(
            stage_segment(&db, actor, txid, 320, seg1).await.unwrap(),
            320 * 4096
        );

        // Nothing staged is visible yet.
        let (fills, head) = read(&db, actor, vec![1, 2, 3, 320]).await;
        assert_eq!(fills, vec![Some(0x01), Some(0x02), None, None]);
        assert_eq!(head, Some(1));

        assert_eq!(
            stage_segment(&db, actor, txid, 640, seg2).await.unwrap(),
            111 * 4096
        );
        assert_eq!(
            finalize(&db, actor, txid, 750, vec![0, 320, 640])
                .await
                .unwrap(),
            Some(2)
        );
        let (fills, head) = read(&db, actor, vec![1, 304, 305, 319, 320, 639, 640, 750, 751]).await;
        assert_eq!(
            fills,
            vec![
                Some(0x10),
                Some(0x10),
                Some(0),
                Some(0),
                Some(0x20),
                Some(0x20),
                Some(0x30),
                Some(0x30),
                None
            ]
        );
        assert_eq!(head, Some(2));

        // The stage is gone: finalizing again fails on the head, and the next txid is 3.
        let err = finalize(&db, actor, 2, 750, vec![0]).await.unwrap_err();
        assert_eq!(err.code(), "head_fence_mismatch");
        assert_eq!(stage_begin(&db, actor, Some(2)).await.unwrap(), 3);
        // Segment 0 does not overlap anything of txid 3, since txid 2's stage was cleared.
        assert_eq!(
            stage_segment(&db, actor, 3, 0, vec![dirty(5, 0x55)])
                .await
                .unwrap(),
            4096
        );
        // Finalize can shrink: staged pages above the new size are dropped.
        assert_eq!(finalize(&db, actor, 3, 4, vec![0]).await.unwrap(), Some(3));
        let (fills, _) = read(&db, actor, vec![4, 5]).await;
        assert_eq!(fills, vec![Some(0x10), None]);
    })
    .await;
}

#[tokio::test]
async fn sqlite_stage_errors() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        for head in 0..4 {
            commit(&db, actor, vec![dirty(1, head as u8)], 1, head).await;
        }
        // Fences at StageBegin.
        let err = stage_begin(&db, actor, Some(3)).await.unwrap_err();
        assert_error(
            &err,
            "depot",
            "head_fence_mismatch",
            "sqlite head fence mismatch: expected head txid 3, current head txid 4",
        );
        let missing_gen = SqliteCommitStageBeginRequest {
            actor_id: String::new(),
            expected_generation: None,
            expected_head_txid: Some(4),
        };
        let err = db
            .txn(move |tx| {
                let req = missing_gen.clone();
                async move { actor_sqlite::stage_begin(&tx, &actor, &req, Some(GEN)).await }
            })
            .await
            .unwrap_err();
        assert_eq!((err.group(), err.code()), ("sqlite", "invalid_request"));
        let wrong_gen = SqliteCommitStageBeginRequest {
            actor_id: String::new(),
            expected_generation: Some(u64::from(GEN)),
            expected_head_txid: Some(4),
        };
        let err = db
            .txn(move |tx| {
                let req = wrong_gen.clone();
                async move { actor_sqlite::stage_begin(&tx, &actor, &req, Some(GEN + 1)).await }
            })
            .await
            .unwrap_err();
        assert_error(&err, "core", "internal_error", "actor does not exist");

        let txid = stage_begin(&db, actor, Some(4)).await.unwrap();
        assert_eq!(txid, 5);

        // Finalize naming a segment that was never staged.
        let err = finalize(&db, actor, txid, 10, vec![0]).await.unwrap_err();
        assert_error(
            &err,
            "depot",
            "stage_not_found",
            "no staged segment at page 0 for txid 5",
        );

        let err = stage_segment(&db, actor, txid, 1, vec![dirty(1, 1)])
            .await
            .unwrap_err();
        assert_error(
            &err,
            "depot",
            "stage_segment_invalid",
            "first page 1 is not shard-aligned",
        );
        let err = stage_segment(&db, actor, txid, 0, vec![dirty(1, 1), dirty(1000, 1)])
            .await
            .unwrap_err();
        assert_error(
            &err,
            "depot",
            "stage_segment_invalid",
            "page 1000 sits past the segment's 5-shard span",
        );
        let err = stage_segment(&db, actor, txid, 0, vec![dirty(320, 1)])
            .await
            .unwrap_err();
        assert_eq!(
            err.message(),
            "page 320 sits past the segment's 5-shard span"
        );
        let err = stage_segment(&db, actor, txid, 64, vec![dirty(63, 1)])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "stage_segment_invalid");
        let mut short = dirty(2, 2);
        short.bytes.truncate(100);
        let err = stage_segment(&db, actor, txid, 0, vec![short])
            .await
            .unwrap_err();
        assert_error(
            &err,
            "core",
            "internal_error",
            "sqlite commit page 2 had 100 bytes, expected 4096",
        );

        // Overlap and order against already staged segments.
        stage_segment(&db, actor, txid, 0, vec![dirty(1, 0xEE)])
            .await
            .unwrap();
        let err = stage_segment(&db, actor, txid, 64, vec![dirty(64, 1)])
            .await
            .unwrap_err();
        assert_error(
            &err,
            "depot",
            "stage_segment_invalid",
            "segment 64 overlaps the span of the segment at 0",
        );
        let err = stage_segment(&db, actor, txid, 0, vec![])
            .await
            .unwrap_err();
        assert_eq!(
            err.message(),
            "segment 0 overlaps the span of the segment at 0"
        );
        stage_segment(&db, actor, txid, 320, vec![]).await.unwrap();
        let err = stage_segment(&db, actor, txid, 0, vec![])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "stage_segment_invalid");

        // A wrong txid: one that is not head + 1, and head + 1 without a StageBegin for it
        // on another actor.
        let err = stage_segment(&db, actor, 9, 640, vec![]).await.unwrap_err();
        assert_eq!(err.code(), "head_fence_mismatch");
        let fresh = Id::new(1);
        let err = stage_segment(&db, fresh, 1, 0, vec![]).await.unwrap_err();
        assert_error(
            &err,
            "depot",
            "stage_not_found",
            "no staged commit for txid 1",
        );
        let err = finalize(&db, fresh, 1, 1, vec![]).await.unwrap_err();
        assert_eq!(err.code(), "stage_not_found");

        // A failed finalize (second segment missing) applied nothing.
        let err = finalize(&db, actor, txid, 10, vec![0, 640])
            .await
            .unwrap_err();
        assert_eq!(err.message(), "no staged segment at page 640 for txid 5");
        let (fills, head) = read(&db, actor, vec![1, 2]).await;
        assert_eq!(fills, vec![Some(3), None]);
        assert_eq!(head, Some(4));

        // A single-shot commit takes the txid: the stage can no longer finalize.
        commit(&db, actor, vec![], 1, 4).await;
        let err = finalize(&db, actor, txid, 10, vec![0, 320])
            .await
            .unwrap_err();
        assert_error(
            &err,
            "depot",
            "head_fence_mismatch",
            "sqlite head fence mismatch: expected head txid 4, current head txid 5",
        );
    })
    .await;
}

#[tokio::test]
async fn sqlite_abandoned_stage_has_no_effect() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        commit(&db, actor, vec![dirty(1, 0x01)], 1, 0).await;
        let txid = stage_begin(&db, actor, Some(1)).await.unwrap();
        stage_segment(&db, actor, txid, 0, vec![dirty(1, 0xAA), dirty(2, 0xAA)])
            .await
            .unwrap();
        // The host restarts the transaction: same txid, the old segment is gone.
        assert_eq!(stage_begin(&db, actor, Some(1)).await.unwrap(), txid);
        let (fills, head) = read(&db, actor, vec![1, 2]).await;
        assert_eq!(fills, vec![Some(0x01), None]);
        assert_eq!(head, Some(1));
        let err = finalize(&db, actor, txid, 2, vec![0]).await.unwrap_err();
        assert_eq!(err.message(), "no staged segment at page 0 for txid 2");
        // Staging segment 0 again is not an overlap, and only the new content lands.
        stage_segment(&db, actor, txid, 0, vec![dirty(2, 0xBB)])
            .await
            .unwrap();
        assert_eq!(
            finalize(&db, actor, txid, 2, vec![0]).await.unwrap(),
            Some(2)
        );
        let (fills, _) = read(&db, actor, vec![1, 2]).await;
        assert_eq!(fills, vec![Some(0x01), Some(0xBB)]);
    })
    .await;
}

#[tokio::test]
async fn delete_actor_data_removes_everything_of_one_actor_only() {
    on_every_driver(|db| async move {
        let doomed = Id::new(1);
        let kept = Id::new(1);
        for actor in [doomed, kept] {
            kv(&db, actor, put(&[b"a", b"\xff"], &[b"1", b"2"]), 1).await;
            commit(&db, actor, vec![dirty(1, 0x11)], 1, 0).await;
            let txid = stage_begin(&db, actor, Some(1)).await.unwrap();
            stage_segment(&db, actor, txid, 0, vec![dirty(1, 0x22)])
                .await
                .unwrap();
        }
        db.txn(move |tx| async move { delete_actor_data(&tx, &doomed).await })
            .await
            .unwrap();

        assert!(list_keys(&db, doomed, KvListQuery::All, false, None)
            .await
            .is_empty());
        assert_eq!(used(&db, doomed).await, 0);
        let err = get_pages(
            &db,
            doomed,
            get_req(vec![1], Some(u64::from(GEN)), None),
            Some(GEN),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "database_not_found");
        let err = finalize(&db, doomed, 2, 1, vec![0]).await.unwrap_err();
        assert_eq!(err.code(), "head_fence_mismatch");
        // A recreated database starts from txid 1 with no stage.
        assert_eq!(stage_begin(&db, doomed, Some(0)).await.unwrap(), 1);

        assert_eq!(
            list_keys(&db, kept, KvListQuery::All, false, None).await,
            vec![b"a".to_vec(), b"\xff".to_vec()]
        );
        assert_eq!(used(&db, kept).await, 4);
        let (fills, head) = read(&db, kept, vec![1]).await;
        assert_eq!(fills, vec![Some(0x11)]);
        assert_eq!(head, Some(1));
        assert_eq!(finalize(&db, kept, 2, 1, vec![0]).await.unwrap(), Some(2));
        let (fills, _) = read(&db, kept, vec![1]).await;
        assert_eq!(fills, vec![Some(0x22)]);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Model check

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<(Vec<u8>, Vec<u8>)>),
    Delete(Vec<Vec<u8>>),
    DeleteRange(Vec<u8>, Vec<u8>),
    Drop,
    List(KvListQuery, bool, Option<u64>),
    Get(Vec<Vec<u8>>),
}

/// Short keys over a tiny alphabet (including 0x00 and 0xFF) so operations collide often.
fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![Just(0u8), Just(1), Just(b'a'), Just(0xFF)],
        0..4,
    )
}

fn op() -> impl Strategy<Value = Op> {
    let value = proptest::collection::vec(any::<u8>(), 0..6);
    prop_oneof![
        4 => proptest::collection::vec((key(), value), 1..5).prop_map(Op::Put),
        2 => proptest::collection::vec(key(), 1..4).prop_map(Op::Delete),
        2 => (key(), key()).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        1 => Just(Op::Drop),
        3 => (
            prop_oneof![
                Just(KvListQuery::All),
                (key(), key(), any::<bool>()).prop_map(|(s, e, x)| range(&s, &e, x)),
                key().prop_map(|k| prefix(&k)),
            ],
            any::<bool>(),
            proptest::option::of(0u64..5),
        )
            .prop_map(|(q, r, l)| Op::List(q, r, l)),
        2 => proptest::collection::vec(key(), 1..4).prop_map(Op::Get),
    ]
}

fn model_list(
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    query: &KvListQuery,
    reverse: bool,
    limit: Option<u64>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = model
        .iter()
        .filter(|(k, _)| match query {
            KvListQuery::All => true,
            KvListQuery::Range(r) => {
                k.as_slice() >= r.start.as_slice()
                    && if r.exclusive {
                        k.as_slice() < r.end.as_slice()
                    } else {
                        k.as_slice() <= r.end.as_slice()
                    }
            }
            KvListQuery::Prefix(p) => k.starts_with(&p.key),
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        out.reverse();
    }
    if let Some(limit) = limit {
        out.truncate(limit as usize);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn kv_matches_a_btreemap_model(ops in proptest::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let db = Db::open(StoreConfig::Memory).await.unwrap();
            let actor = Id::new(1);
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for (step, op) in ops.into_iter().enumerate() {
                let now = step as i64;
                match op {
                    Op::Put(pairs) => {
                        let (keys, values): (Vec<_>, Vec<_>) = pairs.iter().cloned().unzip();
                        assert_eq!(kv(&db, actor, put_owned(keys, values), now).await, KvResponseData::Put);
                        for (k, v) in pairs {
                            model.insert(k, v);
                        }
                    }
                    Op::Delete(keys) => {
                        let req = KvRequestData::Delete(KvDeleteRequest { keys: keys.clone() });
                        assert_eq!(kv(&db, actor, req, now).await, KvResponseData::Delete);
                        for k in keys {
                            model.remove(&k);
                        }
                    }
                    Op::DeleteRange(start, end) => {
                        let req = KvRequestData::DeleteRange(KvDeleteRangeRequest {
                            start: start.clone(),
                            end: end.clone(),
                        });
                        assert_eq!(kv(&db, actor, req, now).await, KvResponseData::Delete);
                        model.retain(|k, _| !(*k >= start && *k < end));
                    }
                    Op::Drop => {
                        assert_eq!(kv(&db, actor, KvRequestData::Drop, now).await, KvResponseData::Drop);
                        model.clear();
                    }
                    Op::List(query, reverse, limit) => {
                        let got = entries(kv(&db, actor, list(query.clone(), Some(reverse), limit), now).await);
                        let want = model_list(&model, &query, reverse, limit);
                        let got: Vec<_> = got.keys.into_iter().zip(got.values).collect();
                        assert_eq!(got, want, "{query:?} reverse={reverse} limit={limit:?}");
                    }
                    Op::Get(keys) => {
                        let got = entries(kv(&db, actor, KvRequestData::Get(KvGetRequest { keys: keys.clone() }), now).await);
                        let want: Vec<_> = keys
                            .iter()
                            .filter_map(|k| model.get(k).map(|v| (k.clone(), v.clone())))
                            .collect();
                        let got: Vec<_> = got.keys.into_iter().zip(got.values).collect();
                        assert_eq!(got, want);
                    }
                }
                let size: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
                assert_eq!(used(&db, actor).await, size as i64, "size counter after step {step}");
            }
            db.close().await.unwrap();
        });
    }
}

#[tokio::test]
async fn concurrent_puts_of_different_keys_keep_the_size_counter_exact() {
    on_every_driver(|db| async move {
        let actor = Id::new(1);
        let writes = (0..8u8).map(|i| {
            let db = db.clone();
            async move { kv(&db, actor, put_owned(vec![vec![i]], vec![vec![i; 10]]), 1).await }
        });
        let mut handles = Vec::new();
        for write in writes {
            handles.push(tokio::spawn(write));
        }
        for handle in handles {
            assert_eq!(handle.await.unwrap(), KvResponseData::Put);
        }
        assert_eq!(used(&db, actor).await, 8 * 11);
        assert_eq!(
            list_keys(&db, actor, KvListQuery::All, false, None)
                .await
                .len(),
            8
        );
    })
    .await;
}

#[test]
fn store_errors_inside_kv_and_sqlite_errors_stay_retryable() {
    use rivet_store::{StoreError, TxError};
    let kv = KvError::from(StoreError::Conflict);
    assert!(kv.as_store_error().is_some_and(StoreError::is_retryable));
    assert!(KvError::TooManyKeys.as_store_error().is_none());
    let sqlite = SqliteError::from(StoreError::TransactionTooOld);
    assert!(sqlite
        .as_store_error()
        .is_some_and(StoreError::is_retryable));
    assert!(SqliteError::DatabaseNotFound.as_store_error().is_none());
}
