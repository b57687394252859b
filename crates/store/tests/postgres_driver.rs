//! The PostgreSQL driver against the real server on 127.0.0.1:5432 (database `test`, user
//! `postgres`). Every test works in a fresh schema with a random name, dropped at the end. Two
//! drivers opened on one schema stand for two engine nodes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rivet_store::driver::{AtomicOp, CommitRequest, Driver, KeyRange, Mutation, RangeRequest};
use rivet_store::{Db, StoreConfig, StoreError};

const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema, dropped (with everything in it) when the guard goes away.
struct TestSchema {
    name: String,
}

impl TestSchema {
    fn new() -> TestSchema {
        TestSchema {
            name: format!("rivet_test_{:016x}", rand::random::<u64>()),
        }
    }

    async fn open(&self, pool_size: usize) -> Arc<dyn Driver> {
        rivet_store::postgres::open(URL, pool_size, Some(&self.name))
            .await
            .unwrap()
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(URL, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Its own thread and runtime: this also runs while a failed test unwinds.
        let dropper = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(URL, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                    ))
                    .await
                    .unwrap();
            });
        });
        let _ = dropper.join();
    }
}

fn set(key: &[u8], value: &[u8]) -> Mutation {
    Mutation::Set {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn atomic(key: &[u8], op: AtomicOp, param: &[u8]) -> Mutation {
    Mutation::Atomic {
        key: key.to_vec(),
        op,
        param: param.to_vec(),
    }
}

fn range(begin: &[u8], end: &[u8]) -> KeyRange {
    KeyRange {
        begin: begin.to_vec(),
        end: end.to_vec(),
    }
}

/// A commit request writing `mutations`, with write conflicts on what they touch.
fn request(read_version: u64, reads: Vec<KeyRange>, mutations: Vec<Mutation>) -> CommitRequest {
    let write_conflicts = mutations
        .iter()
        .map(|m| match m {
            Mutation::Set { key, .. } | Mutation::Clear { key } | Mutation::Atomic { key, .. } => {
                KeyRange::single(key)
            }
            Mutation::ClearRange(r) => r.clone(),
        })
        .collect();
    CommitRequest {
        read_version,
        read_conflicts: reads,
        write_conflicts,
        mutations,
    }
}

async fn get(driver: &Arc<dyn Driver>, key: &[u8]) -> Option<Vec<u8>> {
    driver.begin().await.unwrap().get(key).await.unwrap()
}

async fn write(driver: &Arc<dyn Driver>, mutations: Vec<Mutation>) -> u64 {
    let rv = driver.begin().await.unwrap().read_version();
    driver.commit(request(rv, vec![], mutations)).await.unwrap()
}

fn i64_of(bytes: &[u8]) -> i64 {
    i64::from_le_bytes(bytes.try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_sees_the_others_commits() {
    let schema = TestSchema::new();
    let a = schema.open(4).await;
    let b = schema.open(4).await;
    let va = write(&a, vec![set(b"from-a", b"1")]).await;
    assert_eq!(get(&b, b"from-a").await, Some(b"1".to_vec()));
    let vb = write(&b, vec![set(b"from-b", b"2")]).await;
    assert!(vb > va, "versions increase across nodes: {va} then {vb}");
    let view = a.begin().await.unwrap();
    assert_eq!(view.read_version(), vb);
    assert_eq!(view.get(b"from-b").await.unwrap(), Some(b"2".to_vec()));
    drop(view);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_views_are_snapshots() {
    let schema = TestSchema::new();
    let a = schema.open(4).await;
    let b = schema.open(4).await;
    write(&a, vec![set(b"k", b"old")]).await;
    let view = a.begin().await.unwrap();
    let v = write(&b, vec![set(b"k", b"new"), set(b"k2", b"x")]).await;
    assert!(v > view.read_version());
    assert_eq!(view.get(b"k").await.unwrap(), Some(b"old".to_vec()));
    assert_eq!(view.get(b"k2").await.unwrap(), None);
    let fresh = a.begin().await.unwrap();
    assert_eq!(fresh.read_version(), v);
    assert_eq!(fresh.get(b"k").await.unwrap(), Some(b"new".to_vec()));
    drop((view, fresh));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_update_is_impossible_across_nodes() {
    let schema = TestSchema::new();
    let a = schema.open(4).await;
    let b = schema.open(4).await;
    write(&a, vec![set(b"counter", &0i64.to_le_bytes())]).await;

    // Both read the counter, then both write counter + 1: the second commit must fail.
    let va = a.begin().await.unwrap();
    let vb = b.begin().await.unwrap();
    let ca = i64_of(&va.get(b"counter").await.unwrap().unwrap());
    let cb = i64_of(&vb.get(b"counter").await.unwrap().unwrap());
    let reads = vec![KeyRange::single(b"counter")];
    let ra = request(
        va.read_version(),
        reads.clone(),
        vec![set(b"counter", &(ca + 1).to_le_bytes())],
    );
    let rb = request(
        vb.read_version(),
        reads,
        vec![set(b"counter", &(cb + 1).to_le_bytes())],
    );
    a.commit(ra).await.unwrap();
    assert!(matches!(b.commit(rb).await, Err(StoreError::Conflict)));
    drop((va, vb));

    // Read-modify-write increments through `Db::txn` on both nodes add up exactly.
    let dbs = [Db::from_driver(a.clone()), Db::from_driver(b.clone())];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let db = dbs[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                db.txn(|tx| async move {
                    let n = i64_of(&tx.get(b"counter").await?.unwrap_or(vec![0; 8]));
                    tx.set(b"counter", &(n + 1).to_le_bytes())?;
                    Ok::<_, StoreError>(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(i64_of(&get(&a, b"counter").await.unwrap()), 81);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_skew_is_impossible_across_nodes() {
    let schema = TestSchema::new();
    let a = schema.open(4).await;
    let b = schema.open(4).await;
    write(&a, vec![set(b"oncall/x", b"1"), set(b"oncall/y", b"1")]).await;

    // Each node checks that two people are on call and takes one off: only one may succeed.
    let va = a.begin().await.unwrap();
    let vb = b.begin().await.unwrap();
    let all = RangeRequest {
        range: range(b"oncall/", b"oncall0"),
        limit: None,
        reverse: false,
    };
    assert_eq!(va.get_range(&all).await.unwrap().len(), 2);
    assert_eq!(vb.get_range(&all).await.unwrap().len(), 2);
    let ra = request(
        va.read_version(),
        vec![all.range.clone()],
        vec![Mutation::Clear {
            key: b"oncall/x".to_vec(),
        }],
    );
    let rb = request(
        vb.read_version(),
        vec![all.range.clone()],
        vec![Mutation::Clear {
            key: b"oncall/y".to_vec(),
        }],
    );
    let (oa, ob) = tokio::join!(a.commit(ra), b.commit(rb));
    let ok = [oa.is_ok(), ob.is_ok()];
    assert_eq!(ok.iter().filter(|o| **o).count(), 1, "{oa:?} {ob:?}");
    assert!(matches!(oa, Err(StoreError::Conflict)) || matches!(ob, Err(StoreError::Conflict)));
    drop((va, vb));
    let left = a.begin().await.unwrap().get_range(&all).await.unwrap();
    assert_eq!(left.len(), 1);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_without_overlap_do_not_conflict() {
    let schema = TestSchema::new();
    let a = schema.open(4).await;
    let b = schema.open(4).await;
    let va = a.begin().await.unwrap();
    let vb = b.begin().await.unwrap();
    let ra = request(
        va.read_version(),
        vec![range(b"a", b"b")],
        vec![set(b"a1", b"x")],
    );
    let rb = request(
        vb.read_version(),
        vec![range(b"b", b"c")],
        vec![set(b"b1", b"y")],
    );
    let v1 = a.commit(ra).await.unwrap();
    let v2 = b.commit(rb).await.unwrap();
    assert!(v2 > v1);
    drop((va, vb));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_under_concurrent_start() {
    let schema = TestSchema::new();
    let opens: Vec<_> = (0..6)
        .map(|_| rivet_store::postgres::open(URL, 2, Some(&schema.name)))
        .collect();
    let drivers: Vec<Arc<dyn Driver>> = futures::future::join_all(opens)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    write(&drivers[0], vec![set(b"kept", b"yes")]).await;
    for d in &drivers {
        d.close().await.unwrap();
    }
    // Opening again migrates nothing and keeps the data.
    let again = schema.open(2).await;
    assert_eq!(get(&again, b"kept").await, Some(b"yes".to_vec()));
    again.close().await.unwrap();
    let client = schema.client().await;
    let rows = client
        .query(
            &format!(
                "SELECT version FROM \"{}\".rivet_schema_version ORDER BY version",
                schema.name
            ),
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, vec![1]);
    let meta = client
        .query(
            &format!("SELECT id FROM \"{}\".rivet_meta", schema.name),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(meta.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_with_64_writers_on_two_nodes() {
    let schema = TestSchema::new();
    let a = schema.open(16).await;
    let b = schema.open(16).await;
    let dbs = [Db::from_driver(a.clone()), Db::from_driver(b.clone())];
    const WRITERS: usize = 64;
    const EACH: usize = 20;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let db = dbs[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for i in 0..EACH {
                let key = format!("w/{w:02}").into_bytes();
                let (_, v) = db
                    .txn_versioned(|tx| {
                        let key = key.clone();
                        async move {
                            // Own key: read-modify-write; shared keys: a contended
                            // read-modify-write and a conflict-free atomic add.
                            let n = tx.get(&key).await?.map_or(0, |v| i64_of(&v));
                            tx.set(&key, &(n + 1).to_le_bytes())?;
                            tx.add(b"total", 1)?;
                            if i % 5 == 0 {
                                let h = tx.get(b"hot").await?.map_or(0, |v| i64_of(&v));
                                tx.set(b"hot", &(h + 1).to_le_bytes())?;
                            }
                            Ok::<_, StoreError>(())
                        }
                    })
                    .await
                    .unwrap();
                versions.push(v);
            }
            versions
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let versions = t.await.unwrap();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        all.extend(versions);
    }
    let elapsed = started.elapsed();
    let distinct: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        WRITERS * EACH,
        "every commit has its own version"
    );
    let view = a.begin().await.unwrap();
    for w in 0..WRITERS {
        let v = view
            .get(format!("w/{w:02}").as_bytes())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i64_of(&v), EACH as i64);
    }
    let total = i64_of(&view.get(b"total").await.unwrap().unwrap());
    assert_eq!(total, (WRITERS * EACH) as i64);
    let hot = i64_of(&view.get(b"hot").await.unwrap().unwrap());
    assert_eq!(hot, (WRITERS * EACH / 5) as i64);
    drop(view);
    eprintln!(
        "64 writers on 2 nodes: {} commits in {elapsed:?} = {:.0}/s",
        WRITERS * EACH,
        (WRITERS * EACH) as f64 / elapsed.as_secs_f64()
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_range_and_atomic_operations() {
    let schema = TestSchema::new();
    let d = schema.open(4).await;
    write(
        &d,
        vec![
            set(b"r/a", b"1"),
            set(b"r/b", b"2"),
            set(b"r/c", b"3"),
            set(b"r/d", b"4"),
            set(b"n", &10i64.to_le_bytes()),
            set(b"cas", b"expected"),
        ],
    )
    .await;
    write(
        &d,
        vec![
            Mutation::ClearRange(range(b"r/b", b"r/d")),
            atomic(b"n", AtomicOp::Add, &(-3i64).to_le_bytes()),
            atomic(b"min", AtomicOp::Min, &7i64.to_le_bytes()),
            atomic(b"max", AtomicOp::Max, &(-7i64).to_le_bytes()),
            atomic(b"cas", AtomicOp::CompareAndClear, b"other"),
            // Written after the clear in the same commit: survives it.
            set(b"r/c", b"new"),
            atomic(b"r/bb", AtomicOp::Add, &1i64.to_le_bytes()),
        ],
    )
    .await;
    let view = d.begin().await.unwrap();
    let rows = view
        .get_range(&RangeRequest {
            range: range(b"r/", b"r0"),
            limit: None,
            reverse: false,
        })
        .await
        .unwrap();
    let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, vec![b"r/a".as_slice(), b"r/bb", b"r/c", b"r/d"]);
    assert_eq!(rows[1].1, 1i64.to_le_bytes().to_vec());
    assert_eq!(rows[2].1, b"new".to_vec());
    assert_eq!(i64_of(&view.get(b"n").await.unwrap().unwrap()), 7);
    assert_eq!(i64_of(&view.get(b"min").await.unwrap().unwrap()), 7);
    assert_eq!(i64_of(&view.get(b"max").await.unwrap().unwrap()), -7);
    assert_eq!(view.get(b"cas").await.unwrap(), Some(b"expected".to_vec()));
    drop(view);
    write(
        &d,
        vec![
            atomic(b"min", AtomicOp::Min, &3i64.to_le_bytes()),
            atomic(b"max", AtomicOp::Max, &3i64.to_le_bytes()),
            atomic(b"cas", AtomicOp::CompareAndClear, b"expected"),
            atomic(b"n", AtomicOp::Add, &i64::MAX.to_le_bytes()),
        ],
    )
    .await;
    let view = d.begin().await.unwrap();
    assert_eq!(i64_of(&view.get(b"min").await.unwrap().unwrap()), 3);
    assert_eq!(i64_of(&view.get(b"max").await.unwrap().unwrap()), 3);
    assert_eq!(view.get(b"cas").await.unwrap(), None);
    assert_eq!(
        i64_of(&view.get(b"n").await.unwrap().unwrap()),
        7i64.wrapping_add(i64::MAX)
    );
    drop(view);
    d.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_adds_from_two_nodes_never_conflict_and_add_up() {
    let schema = TestSchema::new();
    let a = schema.open(4).await;
    let b = schema.open(4).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let d = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let rv = d.begin().await.unwrap().read_version();
                d.commit(request(
                    rv,
                    vec![],
                    vec![atomic(b"sum", AtomicOp::Add, &2i64.to_le_bytes())],
                ))
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(i64_of(&get(&a, b"sum").await.unwrap()), 320);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reads_honour_limit_and_reverse() {
    let schema = TestSchema::new();
    let d = schema.open(4).await;
    let keys: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x01],
        vec![0x01, 0x00],
        vec![0x7f],
        vec![0x80],
        vec![0xff],
        vec![0xff, 0xff],
    ];
    write(&d, keys.iter().map(|k| set(k, k)).collect()).await;
    let view = d.begin().await.unwrap();
    let read = |begin: Vec<u8>, end: Vec<u8>, limit: Option<usize>, reverse: bool| {
        let view = &view;
        async move {
            view.get_range(&RangeRequest {
                range: KeyRange { begin, end },
                limit,
                reverse,
            })
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        read(vec![], vec![0xff, 0xff, 0xff], None, false).await,
        keys
    );
    let mut rev = keys.clone();
    rev.reverse();
    assert_eq!(read(vec![], vec![0xff, 0xff, 0xff], None, true).await, rev);
    assert_eq!(
        read(vec![0x01], vec![0x80], Some(2), false).await,
        vec![vec![0x01], vec![0x01, 0x00]]
    );
    assert_eq!(
        read(vec![0x01], vec![0x80], Some(2), true).await,
        vec![vec![0x7f], vec![0x01, 0x00]]
    );
    assert!(read(vec![0x80], vec![0x01], None, false).await.is_empty());
    assert!(read(vec![0x00], vec![0xff], Some(0), false)
        .await
        .is_empty());
    drop(view);
    d.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mib_values_round_trip() {
    let schema = TestSchema::new();
    let d = schema.open(4).await;
    let big: Vec<u8> = (0..1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut other = big.clone();
    other.reverse();
    write(&d, vec![set(b"big/1", &big), set(b"big/2", &other)]).await;
    let view = d.begin().await.unwrap();
    assert_eq!(
        view.get(b"big/1").await.unwrap().as_deref(),
        Some(big.as_slice())
    );
    let rows = view
        .get_range(&RangeRequest {
            range: range(b"big/", b"big0"),
            limit: None,
            reverse: true,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].1, other);
    assert_eq!(rows[1].1, big);
    drop(view);
    d.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_version_below_the_trimmed_horizon_is_too_old() {
    let schema = TestSchema::new();
    let d = schema.open(4).await;
    for i in 0..3u8 {
        write(&d, vec![set(&[b'k', i], b"v")]).await;
    }
    // Stand in for another node whose commit (version 4, no writes) trimmed the log up to
    // version 2.
    let client = schema.client().await;
    client
        .batch_execute(&format!(
            "UPDATE \"{s}\".rivet_meta SET horizon = 2, version = version + 1; \
             DELETE FROM \"{s}\".rivet_commit_log WHERE version <= 2",
            s = schema.name
        ))
        .await
        .unwrap();
    let too_old = d
        .commit(request(
            1,
            vec![KeyRange::single(b"x")],
            vec![set(b"x", b"1")],
        ))
        .await;
    assert!(
        matches!(too_old, Err(StoreError::TransactionTooOld)),
        "{too_old:?}"
    );
    // A blind write at an old version checks nothing and commits.
    d.commit(request(1, vec![], vec![set(b"y", b"1")]))
        .await
        .unwrap();
    // At the horizon, history is complete: k2 was written at version 3.
    let conflict = d
        .commit(request(
            2,
            vec![KeyRange::single(&[b'k', 2])],
            vec![set(b"z", b"1")],
        ))
        .await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict)),
        "{conflict:?}"
    );
    d.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_keys_up_to_the_store_limit_work_like_short_ones() {
    let schema = TestSchema::new();
    let d = schema.open(4).await;
    let limit = rivet_store::tx::MAX_KEY_SIZE;
    let base = vec![b'p'; 2048];
    let key = |tail: &[u8]| [base.as_slice(), tail].concat();
    // Short keys around the long ones: the shared 2048-byte prefix itself, and neighbours.
    let long_a = key(&vec![b'a'; limit - 2048]);
    let long_b = key(b"b");
    let long_b2 = key(&[b"b".as_slice(), &vec![0u8; 4000]].concat());
    let short_before = b"o".to_vec();
    let short_after = b"q".to_vec();
    write(
        &d,
        vec![
            set(&long_b2, b"b2"),
            set(&base, b"base"),
            set(&long_a, b"a"),
            set(&short_after, b"after"),
            set(&long_b, b"b"),
            set(&short_before, b"before"),
        ],
    )
    .await;
    let expected = vec![
        short_before.clone(),
        base.clone(),
        long_a.clone(),
        long_b.clone(),
        long_b2.clone(),
        short_after.clone(),
    ];
    let view = d.begin().await.unwrap();
    assert_eq!(view.get(&long_a).await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(view.get(&key(b"zz")).await.unwrap(), None);
    assert_eq!(
        read_keys(&*view, range(b"", b"z"), None, false).await,
        expected
    );
    let mut rev = expected.clone();
    rev.reverse();
    assert_eq!(read_keys(&*view, range(b"", b"z"), None, true).await, rev);
    assert_eq!(
        read_keys(&*view, range(b"", b"z"), Some(3), false).await,
        expected[..3]
    );
    assert_eq!(
        read_keys(&*view, range(b"", b"z"), Some(3), true).await,
        rev[..3]
    );
    // A range whose bounds are long keys themselves.
    assert_eq!(
        read_keys(&*view, range(&long_a, &long_b2), None, false).await,
        vec![long_a.clone(), long_b.clone()]
    );
    drop(view);

    // Overwrite, atomic add, clear and range clear on long keys.
    let counter = key(b"counter");
    write(
        &d,
        vec![
            set(&long_a, b"a2"),
            atomic(&counter, AtomicOp::Add, &5i64.to_le_bytes()),
            Mutation::Clear {
                key: long_b2.clone(),
            },
        ],
    )
    .await;
    write(
        &d,
        vec![atomic(&counter, AtomicOp::Add, &6i64.to_le_bytes())],
    )
    .await;
    assert_eq!(get(&d, &long_a).await, Some(b"a2".to_vec()));
    assert_eq!(i64_of(&get(&d, &counter).await.unwrap()), 11);
    assert_eq!(get(&d, &long_b2).await, None);
    write(&d, vec![Mutation::ClearRange(range(&key(b"b"), b"q"))]).await;
    let view = d.begin().await.unwrap();
    assert_eq!(
        read_keys(&*view, range(b"", b"z"), None, false).await,
        vec![short_before, base, long_a.clone(), short_after]
    );
    drop(view);

    // Conflicts on long keys are detected like any other.
    let v1 = d.begin().await.unwrap();
    let v2 = d.begin().await.unwrap();
    let _ = v1.get(&long_a).await.unwrap();
    let _ = v2.get(&long_a).await.unwrap();
    let reads = vec![KeyRange::single(&long_a)];
    d.commit(request(
        v1.read_version(),
        reads.clone(),
        vec![set(&long_a, b"1")],
    ))
    .await
    .unwrap();
    let second = d
        .commit(request(v2.read_version(), reads, vec![set(&long_a, b"2")]))
        .await;
    assert!(matches!(second, Err(StoreError::Conflict)), "{second:?}");
    drop((v1, v2));
    d.close().await.unwrap();
}

async fn read_keys(
    view: &dyn rivet_store::driver::ReadView,
    range: KeyRange,
    limit: Option<usize>,
    reverse: bool,
) -> Vec<Vec<u8>> {
    view.get_range(&RangeRequest {
        range,
        limit,
        reverse,
    })
    .await
    .unwrap()
    .into_iter()
    .map(|(k, _)| k)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stops_the_driver() {
    let schema = TestSchema::new();
    let d = schema.open(2).await;
    write(&d, vec![set(b"k", b"v")]).await;
    d.close().await.unwrap();
    assert!(matches!(d.begin().await, Err(StoreError::Closed)));
    let err = d.commit(request(1, vec![], vec![set(b"k", b"w")])).await;
    assert!(matches!(err, Err(StoreError::Closed)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_name_the_url_without_its_password() {
    let result = rivet_store::postgres::open(
        "postgres://postgres:supersecret@127.0.0.1:1/test?connect_timeout=2",
        2,
        None,
    )
    .await;
    let msg = result.err().expect("nothing listens on port 1").to_string();
    assert!(
        msg.contains("postgres://postgres:***@127.0.0.1:1/test"),
        "{msg}"
    );
    assert!(!msg.contains("supersecret"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_open_uses_the_postgres_config() {
    let schema = TestSchema::new();
    let db = Db::open(StoreConfig::Postgres {
        url: URL.to_string(),
        pool_size: 4,
        schema: Some(schema.name.clone()),
    })
    .await
    .unwrap();
    db.txn(|tx| async move {
        tx.set(b"hello", b"world")?;
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
    let got = db
        .txn(|tx| async move { tx.get(b"hello").await })
        .await
        .unwrap();
    assert_eq!(got, Some(b"world".to_vec()));
    db.close().await.unwrap();
}

/// Commits per second of independent read-modify-write transactions (each writer its own key)
/// at 1, 16 and 64 concurrent writers on one node and 64 spread over two nodes; prints the
/// figures, asserts the writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_throughput_by_writer_count() {
    let schema = TestSchema::new();
    let d = schema.open(16).await;
    let other = schema.open(16).await;
    let dbs = [Db::from_driver(d.clone()), Db::from_driver(other.clone())];
    for (writers, nodes) in [(1usize, 1usize), (16, 1), (64, 1), (64, 2)] {
        let run_for = Duration::from_millis(1000);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let db = dbs[w % nodes].clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("tp/{writers}/{nodes}/{w}").into_bytes();
                let mut done = 0i64;
                while started.elapsed() < run_for {
                    db.txn(|tx| {
                        let key = key.clone();
                        async move {
                            let n = tx.get(&key).await?.map_or(0, |v| i64_of(&v));
                            tx.set(&key, &(n + 1).to_le_bytes())?;
                            Ok::<_, StoreError>(())
                        }
                    })
                    .await
                    .unwrap();
                    done += 1;
                }
                (key, done)
            }));
        }
        let mut total = 0;
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let elapsed = started.elapsed();
        let view = d.begin().await.unwrap();
        for (key, done) in results {
            assert_eq!(i64_of(&view.get(&key).await.unwrap().unwrap()), done);
            total += done;
        }
        eprintln!(
            "postgres driver, {writers} writers on {nodes} node(s): {total} commits in {elapsed:.2?} = {:.0} commits/s",
            total as f64 / elapsed.as_secs_f64()
        );
    }
    d.close().await.unwrap();
    other.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_killed_connections() {
    let schema = TestSchema::new();
    let app = format!("rivet_kill_{:016x}", rand::random::<u64>());
    let url = format!("{URL}?application_name={app}");
    let d = rivet_store::postgres::open(&url, 4, Some(&schema.name))
        .await
        .unwrap();
    write(&d, vec![set(b"k", b"1")]).await;
    assert_eq!(get(&d, b"k").await, Some(b"1".to_vec()));
    let client = schema.client().await;
    let killed = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    assert!(killed.len() >= 2, "the committer's and a pooled connection");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = client
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "backends still alive");
        tokio::task::yield_now().await;
    }
    // Reads and commits reconnect on their own.
    assert_eq!(get(&d, b"k").await, Some(b"1".to_vec()));
    write(&d, vec![set(b"k", b"2")]).await;
    assert_eq!(get(&d, b"k").await, Some(b"2".to_vec()));
    d.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_notices_the_other_nodes_commits_between_its_own() {
    let schema = TestSchema::new();
    let a = schema.open(4).await;
    let b = schema.open(4).await;
    // A commits alone for a while (its committer then skips the log read)...
    for i in 0..3u8 {
        write(&a, vec![set(&[b'a', i], b"x")]).await;
    }
    let view = a.begin().await.unwrap();
    let rv = view.read_version();
    assert_eq!(view.get(b"shared").await.unwrap(), None);
    // ...then B writes a key A's open transaction read.
    let vb = write(&b, vec![set(b"shared", b"b")]).await;
    let conflicting = request(
        rv,
        vec![KeyRange::single(b"shared")],
        vec![set(b"shared", b"a")],
    );
    assert!(matches!(
        a.commit(conflicting).await,
        Err(StoreError::Conflict)
    ));
    let independent = request(
        rv,
        vec![KeyRange::single(b"a\x00")],
        vec![set(b"a\x00", b"y")],
    );
    let va = a.commit(independent).await.unwrap();
    assert!(va > vb);
    drop(view);
    // And B, after A's commits, sees a log it has not read yet.
    let stale = request(vb, vec![KeyRange::single(b"a\x00")], vec![set(b"z", b"1")]);
    assert!(matches!(b.commit(stale).await, Err(StoreError::Conflict)));
    assert_eq!(get(&b, b"shared").await, Some(b"b".to_vec()));
    a.close().await.unwrap();
    b.close().await.unwrap();
}
