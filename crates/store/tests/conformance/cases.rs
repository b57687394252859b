//! The conformance cases; each takes a freshly opened database.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rivet_store::tuple::{self, Element, Subspace};
use rivet_store::{Db, RangeOptions, RetryPolicy, StoreError, TxError};

use crate::harness::Harness;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

async fn put(db: &Db, pairs: &[(&[u8], &[u8])]) {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    db.txn(move |tx| {
        let pairs = pairs.clone();
        async move {
            for (k, v) in &pairs {
                tx.set(k, v)?;
            }
            Ok::<_, StoreError>(())
        }
    })
    .await
    .unwrap();
}

async fn read(db: &Db, key: &[u8]) -> Option<Vec<u8>> {
    let key = key.to_vec();
    db.txn(move |tx| {
        let key = key.clone();
        async move { tx.get(&key).await }
    })
    .await
    .unwrap()
}

async fn range(db: &Db, begin: &[u8], end: &[u8], opts: RangeOptions) -> Pairs {
    let tx = db.begin().await.unwrap();
    tx.get_range(begin, end, opts).await.unwrap()
}

fn keys(pairs: &Pairs) -> Vec<&[u8]> {
    pairs.iter().map(|(k, _)| k.as_slice()).collect()
}

fn counter(bytes: Option<Vec<u8>>) -> i64 {
    i64::from_le_bytes(bytes.unwrap().try_into().unwrap())
}

pub async fn crud(h: &mut Harness) {
    let db = &h.db;
    assert_eq!(read(db, b"a").await, None);
    put(db, &[(b"a", b"1"), (b"b", b"2")]).await;
    assert_eq!(read(db, b"a").await.as_deref(), Some(&b"1"[..]));
    put(db, &[(b"a", b"3")]).await;
    assert_eq!(read(db, b"a").await.as_deref(), Some(&b"3"[..]));
    // Read-your-writes inside one transaction, including a clear.
    db.txn(|tx| async move {
        tx.set(b"c", b"x")?;
        assert_eq!(tx.get(b"c").await?.as_deref(), Some(&b"x"[..]));
        tx.clear(b"a");
        assert_eq!(tx.get(b"a").await?, None);
        assert_eq!(tx.get(b"b").await?.as_deref(), Some(&b"2"[..]));
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
    assert_eq!(read(db, b"a").await, None);
    assert_eq!(read(db, b"c").await.as_deref(), Some(&b"x"[..]));
    // Empty values are values.
    put(db, &[(b"e", b"")]).await;
    assert_eq!(read(db, b"e").await, Some(Vec::new()));
    // A closure error drops the transaction's writes.
    let err = db
        .txn(|tx| async move {
            tx.set(b"f", b"never")?;
            Err::<(), _>(StoreError::Config("user abort".into()))
        })
        .await;
    assert!(matches!(err, Err(StoreError::Config(_))));
    assert_eq!(read(db, b"f").await, None);
}

pub async fn binary_keys(h: &mut Harness) {
    let db = &h.db;
    let nasty: Vec<&[u8]> = vec![
        b"\x00",
        b"\x00\x00",
        b"\x00\xff",
        b"\xff",
        b"\xff\xff\xff",
        b"k\x00",
    ];
    let pairs: Vec<(&[u8], &[u8])> = nasty.iter().map(|k| (*k, *k)).collect();
    put(db, &pairs).await;
    for k in &nasty {
        assert_eq!(read(db, k).await.as_deref(), Some(*k));
    }
    let all = range(db, b"", b"\xff\xff\xff\xff", RangeOptions::new()).await;
    let mut sorted = nasty.clone();
    sorted.sort();
    assert_eq!(keys(&all), sorted);
}

pub async fn range_semantics(h: &mut Harness) {
    let db = &h.db;
    let ks: Vec<Vec<u8>> = (b'a'..=b'j').map(|c| vec![c]).collect();
    let pairs: Vec<(&[u8], &[u8])> = ks.iter().map(|k| (k.as_slice(), k.as_slice())).collect();
    put(db, &pairs).await;

    let all = range(db, b"a", b"k", RangeOptions::new()).await;
    assert_eq!(all.len(), 10);
    assert_eq!(all[0], (b"a".to_vec(), b"a".to_vec()));
    // begin inclusive, end exclusive
    let mid = range(db, b"c", b"f", RangeOptions::new()).await;
    assert_eq!(keys(&mid), vec![&b"c"[..], b"d", b"e"]);
    // limit
    let lim = range(db, b"a", b"k", RangeOptions::new().limit(3)).await;
    assert_eq!(keys(&lim), vec![&b"a"[..], b"b", b"c"]);
    // reverse
    let rev = range(db, b"c", b"f", RangeOptions::new().reverse()).await;
    assert_eq!(keys(&rev), vec![&b"e"[..], b"d", b"c"]);
    // reverse + limit
    let revlim = range(db, b"a", b"k", RangeOptions::new().reverse().limit(2)).await;
    assert_eq!(keys(&revlim), vec![&b"j"[..], b"i"]);
    // limit larger than the range
    let big = range(db, b"h", b"z", RangeOptions::new().limit(100)).await;
    assert_eq!(keys(&big), vec![&b"h"[..], b"i", b"j"]);
    // limit zero
    assert!(range(db, b"a", b"k", RangeOptions::new().limit(0))
        .await
        .is_empty());
    // empty range, inverted range, range with no keys
    assert!(range(db, b"c", b"c", RangeOptions::new()).await.is_empty());
    assert!(range(db, b"f", b"c", RangeOptions::new()).await.is_empty());
    assert!(range(db, b"f", b"c", RangeOptions::new().reverse())
        .await
        .is_empty());
    assert!(range(db, b"x", b"z", RangeOptions::new()).await.is_empty());
    // prefix-like bounds
    let sub = range(db, b"b\x00", b"d", RangeOptions::new()).await;
    assert_eq!(keys(&sub), vec![&b"c"[..]]);
}

pub async fn range_reads_merge_own_writes(h: &mut Harness) {
    let db = &h.db;
    put(
        db,
        &[(b"a", b"1"), (b"c", b"3"), (b"e", b"5"), (b"g", b"7")],
    )
    .await;
    let tx = db.begin().await.unwrap();
    tx.set(b"b", b"2").unwrap();
    tx.set(b"c", b"33").unwrap();
    tx.clear(b"e");
    tx.add(b"f", 6).unwrap();
    let got = tx.get_range(b"a", b"z", RangeOptions::new()).await.unwrap();
    assert_eq!(
        got,
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"33".to_vec()),
            (b"f".to_vec(), 6i64.to_le_bytes().to_vec()),
            (b"g".to_vec(), b"7".to_vec()),
        ]
    );
    let rev = tx
        .get_range(b"a", b"z", RangeOptions::new().reverse().limit(3))
        .await
        .unwrap();
    assert_eq!(keys(&rev), vec![&b"g"[..], b"f", b"c"]);
    // A range clear hides committed keys; a later set inside it is visible again.
    tx.clear_range(b"a", b"d");
    tx.set(b"a2", b"new").unwrap();
    let got = tx.get_range(b"a", b"z", RangeOptions::new()).await.unwrap();
    assert_eq!(keys(&got), vec![&b"a2"[..], b"f", b"g"]);
    let lim = tx
        .get_range(b"a", b"z", RangeOptions::new().limit(2))
        .await
        .unwrap();
    assert_eq!(keys(&lim), vec![&b"a2"[..], b"f"]);
    assert_eq!(tx.get(b"a").await.unwrap(), None);
    tx.commit().await.unwrap();
    let after = range(db, b"a", b"z", RangeOptions::new()).await;
    assert_eq!(keys(&after), vec![&b"a2"[..], b"f", b"g"]);
}

pub async fn clear_range(h: &mut Harness) {
    let db = &h.db;
    let ks: Vec<Vec<u8>> = (0u8..50).map(|i| vec![b'k', i]).collect();
    let pairs: Vec<(&[u8], &[u8])> = ks.iter().map(|k| (k.as_slice(), &b"v"[..])).collect();
    put(db, &pairs).await;
    db.txn(|tx| async move {
        tx.clear_range(&[b'k', 10], &[b'k', 40]);
        // inverted and empty clears do nothing
        tx.clear_range(&[b'k', 45], &[b'k', 41]);
        tx.clear_range(&[b'k', 1], &[b'k', 1]);
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
    let left = range(db, b"k", b"l", RangeOptions::new()).await;
    assert_eq!(left.len(), 20);
    assert_eq!(left[9].0, vec![b'k', 9]);
    assert_eq!(left[10].0, vec![b'k', 40]);
    // Clear then set in one transaction: the set wins.
    db.txn(|tx| async move {
        tx.set(&[b'k', 20], b"back")?;
        tx.clear_range(b"k", b"l");
        tx.set(&[b'k', 30], b"again")?;
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
    let left = range(db, b"k", b"l", RangeOptions::new()).await;
    assert_eq!(left, vec![(vec![b'k', 30], b"again".to_vec())]);
}

pub async fn atomic_ops(h: &mut Harness) {
    let db = &h.db;
    db.txn(|tx| async move {
        tx.add(b"n", 5)?;
        tx.add(b"n", -2)?;
        tx.min(b"lo", 10)?;
        tx.max(b"hi", -10)?;
        tx.set(b"cas", b"x")?;
        tx.set(b"cas2", b"x")?;
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
    assert_eq!(counter(read(db, b"n").await), 3);
    assert_eq!(counter(read(db, b"lo").await), 10);
    assert_eq!(counter(read(db, b"hi").await), -10);
    db.txn(|tx| async move {
        tx.add(b"n", i64::MAX)?;
        tx.min(b"lo", 3)?;
        tx.min(b"lo", 7)?;
        tx.max(b"hi", -20)?;
        tx.compare_and_clear(b"cas", b"x")?;
        tx.compare_and_clear(b"cas2", b"y")?;
        tx.compare_and_clear(b"missing", b"y")?;
        // reads inside the transaction see the pending operations
        assert_eq!(counter(tx.get(b"lo").await?), 3);
        assert_eq!(tx.get(b"cas").await?, None);
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
    assert_eq!(counter(read(db, b"n").await), 3i64.wrapping_add(i64::MAX));
    assert_eq!(counter(read(db, b"lo").await), 3);
    assert_eq!(counter(read(db, b"hi").await), -10);
    assert_eq!(read(db, b"cas").await, None);
    assert_eq!(read(db, b"cas2").await.as_deref(), Some(&b"x"[..]));
    assert_eq!(read(db, b"missing").await, None);
    // An atomic op after a set in the same transaction applies to the set value.
    db.txn(|tx| async move {
        tx.set(b"m", &40i64.to_le_bytes())?;
        tx.add(b"m", 2)?;
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
    assert_eq!(counter(read(db, b"m").await), 42);
}

pub async fn atomic_ops_do_not_conflict(h: &mut Harness) {
    let db = &h.db;
    let t1 = db.begin().await.unwrap();
    let t2 = db.begin().await.unwrap();
    t1.add(b"c", 1).unwrap();
    t2.add(b"c", 10).unwrap();
    t1.max(b"m", 4).unwrap();
    t2.max(b"m", 9).unwrap();
    t1.commit().await.unwrap();
    t2.commit().await.unwrap();
    assert_eq!(counter(read(db, b"c").await), 11);
    assert_eq!(counter(read(db, b"m").await), 9);
    // Many concurrent blind increments: all land, none retried for conflicts.
    let before = db.stats().conflicts;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                db.txn(|tx| async move { tx.add(b"hot", 1) }).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(counter(read(db, b"hot").await), 200);
    assert_eq!(db.stats().conflicts, before);
}

pub async fn lost_update_is_prevented(h: &mut Harness) {
    let db = &h.db;
    put(db, &[(b"k", b"0")]).await;
    let t1 = db.begin().await.unwrap();
    let t2 = db.begin().await.unwrap();
    assert_eq!(t1.get(b"k").await.unwrap().as_deref(), Some(&b"0"[..]));
    assert_eq!(t2.get(b"k").await.unwrap().as_deref(), Some(&b"0"[..]));
    t1.set(b"k", b"1").unwrap();
    t2.set(b"k", b"2").unwrap();
    t1.commit().await.unwrap();
    let err = t2.commit().await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(read(db, b"k").await.as_deref(), Some(&b"1"[..]));
    // A reader of a missing key conflicts with its creation too.
    let t3 = db.begin().await.unwrap();
    assert_eq!(t3.get(b"new").await.unwrap(), None);
    put(db, &[(b"new", b"x")]).await;
    t3.set(b"other", b"y").unwrap();
    assert!(matches!(t3.commit().await, Err(StoreError::Conflict)));
    assert!(db.stats().conflicts >= 2);
}

pub async fn concurrent_increments(h: &mut Harness) {
    let db = &h.db;
    let tasks = 8;
    let per_task = 25;
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                db.txn(|tx| async move {
                    let n = match tx.get(b"counter").await? {
                        Some(v) => std::str::from_utf8(&v).unwrap().parse::<u64>().unwrap(),
                        None => 0,
                    };
                    tx.set(b"counter", (n + 1).to_string().as_bytes())?;
                    Ok::<_, StoreError>(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let total = read(db, b"counter").await.unwrap();
    assert_eq!(
        std::str::from_utf8(&total).unwrap(),
        (tasks * per_task).to_string()
    );
    assert_eq!(db.stats().commits, (tasks * per_task) as u64);
}

pub async fn write_skew_is_prevented(h: &mut Harness) {
    let db = &h.db;
    // Invariant: at least one doctor stays on call.
    put(db, &[(b"alice", b"on"), (b"bob", b"on")]).await;
    let t1 = db.begin().await.unwrap();
    let t2 = db.begin().await.unwrap();
    for t in [&t1, &t2] {
        assert_eq!(t.get(b"alice").await.unwrap().as_deref(), Some(&b"on"[..]));
        assert_eq!(t.get(b"bob").await.unwrap().as_deref(), Some(&b"on"[..]));
    }
    t1.set(b"alice", b"off").unwrap();
    t2.set(b"bob", b"off").unwrap();
    t1.commit().await.unwrap();
    assert!(matches!(t2.commit().await, Err(StoreError::Conflict)));
    assert_eq!(read(db, b"bob").await.as_deref(), Some(&b"on"[..]));
}

pub async fn concurrent_write_skew(h: &mut Harness) {
    let db = &h.db;
    // Each round, two tasks race to take a doctor off call when the other one is on call.
    for round in 0..20u32 {
        let a = format!("r{round}/a").into_bytes();
        let b = format!("r{round}/b").into_bytes();
        put(db, &[(&a, b"on"), (&b, b"on")]).await;
        let mut tasks = Vec::new();
        for (mine, other) in [(a.clone(), b.clone()), (b.clone(), a.clone())] {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.txn(move |tx| {
                    let (mine, other) = (mine.clone(), other.clone());
                    async move {
                        let other_on = tx.get(&other).await?.as_deref() == Some(b"on");
                        let me_on = tx.get(&mine).await?.as_deref() == Some(b"on");
                        if other_on && me_on {
                            tokio::task::yield_now().await;
                            tx.set(&mine, b"off")?;
                        }
                        Ok::<_, StoreError>(())
                    }
                })
                .await
                .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let on = [read(db, &a).await, read(db, &b).await]
            .iter()
            .filter(|v| v.as_deref() == Some(&b"on"[..]))
            .count();
        assert_eq!(on, 1, "round {round}: exactly one doctor must stay on call");
    }
}

#[derive(Debug)]
enum AppError {
    Store(StoreError),
    NotFound,
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Store(e)
    }
}

impl TxError for AppError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            AppError::Store(e) => Some(e),
            AppError::NotFound => None,
        }
    }
}

pub async fn retries_conflicts_and_passes_user_errors(h: &mut Harness) {
    let db = &h.db;
    put(db, &[(b"k", b"0")]).await;
    let attempts = Arc::new(AtomicU32::new(0));
    let retries_before = db.stats().retries;
    let interferer = db.clone();
    let n = attempts.clone();
    let result = db
        .txn(move |tx| {
            let attempt = n.fetch_add(1, Ordering::SeqCst) + 1;
            let interferer = interferer.clone();
            async move {
                let v = tx.get(b"k").await?;
                if attempt == 1 {
                    // Another transaction overwrites what we read: our commit must conflict.
                    interferer
                        .txn(|t| async move { t.set(b"k", b"other") })
                        .await?;
                }
                tx.set(b"k", b"mine")?;
                Ok::<_, AppError>(v)
            }
        })
        .await
        .unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(result.as_deref(), Some(&b"other"[..]));
    assert_eq!(read(db, b"k").await.as_deref(), Some(&b"mine"[..]));
    assert_eq!(db.stats().retries, retries_before + 1);

    // A user error is returned as is, after one attempt, and nothing is written.
    let attempts = Arc::new(AtomicU32::new(0));
    let n = attempts.clone();
    let result: Result<(), AppError> = db
        .txn(move |tx| {
            n.fetch_add(1, Ordering::SeqCst);
            async move {
                tx.set(b"k", b"user")?;
                Err(AppError::NotFound)
            }
        })
        .await;
    assert!(matches!(result, Err(AppError::NotFound)));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(read(db, b"k").await.as_deref(), Some(&b"mine"[..]));

    // A non-retryable store error from the closure is not retried either.
    let attempts = Arc::new(AtomicU32::new(0));
    let n = attempts.clone();
    let result: Result<(), AppError> = db
        .txn(move |_tx| {
            n.fetch_add(1, Ordering::SeqCst);
            async move { Err(AppError::Store(StoreError::Config("nope".into()))) }
        })
        .await;
    assert!(matches!(
        result,
        Err(AppError::Store(StoreError::Config(_)))
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

pub async fn retry_limit(h: &mut Harness) {
    let db = h.db.clone().with_retry_policy(RetryPolicy {
        max_attempts: 3,
        max_elapsed: Duration::from_secs(30),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    });
    let attempts = Arc::new(AtomicU32::new(0));
    let n = attempts.clone();
    let interferer = db.clone();
    let result: Result<(), StoreError> = db
        .txn(move |tx| {
            n.fetch_add(1, Ordering::SeqCst);
            let interferer = interferer.clone();
            async move {
                tx.get(b"k").await?;
                interferer.txn(|t| async move { t.add(b"k", 1) }).await?;
                tx.set(b"k", b"never")
            }
        })
        .await;
    match result {
        Err(StoreError::RetryLimit { attempts: 3, .. }) => {}
        other => panic!("expected RetryLimit after 3 attempts, got {other:?}"),
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(counter(read(&db, b"k").await), 3);
}

pub async fn snapshot_reads_do_not_conflict(h: &mut Harness) {
    let db = &h.db;
    put(db, &[(b"a", b"1"), (b"b", b"2")]).await;
    let t1 = db.begin().await.unwrap();
    assert_eq!(
        t1.get_snapshot(b"a").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    let snap = t1
        .get_range(b"a", b"z", RangeOptions::new().snapshot())
        .await
        .unwrap();
    assert_eq!(snap.len(), 2);
    put(db, &[(b"a", b"changed"), (b"c", b"new")]).await;
    // The snapshot stays at t1's read version.
    assert_eq!(
        t1.get_snapshot(b"a").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    t1.set(b"x", b"y").unwrap();
    t1.commit().await.unwrap();
    assert_eq!(read(db, b"x").await.as_deref(), Some(&b"y"[..]));
}

pub async fn explicit_conflict_ranges(h: &mut Harness) {
    let db = &h.db;
    // A read conflict range without reading.
    let t1 = db.begin().await.unwrap();
    t1.add_read_conflict_range(b"a", b"c");
    t1.set(b"x", b"1").unwrap();
    put(db, &[(b"b", b"other")]).await;
    assert!(matches!(t1.commit().await, Err(StoreError::Conflict)));
    // Writes outside the range do not conflict.
    let t2 = db.begin().await.unwrap();
    t2.add_read_conflict_range(b"a", b"c");
    t2.set(b"x", b"2").unwrap();
    put(db, &[(b"c", b"outside")]).await;
    t2.commit().await.unwrap();
    // A write conflict range without writing conflicts with a reader.
    let reader = db.begin().await.unwrap();
    reader.get(b"k").await.unwrap();
    reader.set(b"y", b"1").unwrap();
    let marker = db.begin().await.unwrap();
    marker.add_write_conflict_key(b"k");
    marker.commit().await.unwrap();
    assert_eq!(
        read(db, b"k").await,
        None,
        "a write conflict range writes nothing"
    );
    assert!(matches!(reader.commit().await, Err(StoreError::Conflict)));
    // Key-level read conflict.
    let t3 = db.begin().await.unwrap();
    t3.add_read_conflict_key(b"q");
    t3.set(b"z", b"1").unwrap();
    let t4 = db.begin().await.unwrap();
    t4.add_write_conflict_range(b"p", b"r");
    t4.commit().await.unwrap();
    assert!(matches!(t3.commit().await, Err(StoreError::Conflict)));
}

pub async fn range_read_conflicts(h: &mut Harness) {
    let db = &h.db;
    put(
        db,
        &[(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"d", b"4")],
    )
    .await;
    // A limited read only depends on the keys up to the last one returned.
    let t1 = db.begin().await.unwrap();
    let got = t1
        .get_range(b"a", b"z", RangeOptions::new().limit(2))
        .await
        .unwrap();
    assert_eq!(keys(&got), vec![&b"a"[..], b"b"]);
    t1.set(b"out", b"1").unwrap();
    put(db, &[(b"c", b"changed")]).await;
    t1.commit().await.unwrap();
    // A phantom inside the read range conflicts.
    let t2 = db.begin().await.unwrap();
    t2.get_range(b"a", b"c", RangeOptions::new()).await.unwrap();
    t2.set(b"out", b"2").unwrap();
    put(db, &[(b"bb", b"phantom")]).await;
    assert!(matches!(t2.commit().await, Err(StoreError::Conflict)));
    // Reverse with limit depends on the tail only.
    let t3 = db.begin().await.unwrap();
    let got = t3
        .get_range(b"a", b"e", RangeOptions::new().reverse().limit(1))
        .await
        .unwrap();
    assert_eq!(keys(&got), vec![&b"d"[..]]);
    t3.set(b"out", b"3").unwrap();
    put(db, &[(b"a", b"head")]).await;
    t3.commit().await.unwrap();
    let t4 = db.begin().await.unwrap();
    t4.get_range(b"a", b"e", RangeOptions::new().reverse().limit(1))
        .await
        .unwrap();
    t4.set(b"out", b"4").unwrap();
    put(db, &[(b"d\x00", b"tail")]).await;
    assert!(matches!(t4.commit().await, Err(StoreError::Conflict)));
}

pub async fn commit_versions_increase(h: &mut Harness) {
    let db = &h.db;
    let mut last = 0;
    for i in 0..20u32 {
        let ((), version) = db
            .txn_versioned(|tx| async move { tx.set(b"v", &i.to_le_bytes()) })
            .await
            .unwrap();
        assert!(version > last, "commit version {version} after {last}");
        last = version;
        let tx = db.begin().await.unwrap();
        assert!(tx.read_version() >= version);
    }
    // A read-only transaction reports its read version and commits nothing.
    let ((), version) = db
        .txn_versioned(|tx| async move { tx.get(b"v").await.map(|_| ()) })
        .await
        .unwrap();
    assert_eq!(version, last);
    // Concurrent commits get distinct versions.
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for i in 0..20u32 {
                let key = format!("c{t}/{i}");
                let ((), v) = db
                    .txn_versioned(move |tx| {
                        let key = key.clone();
                        async move { tx.set(key.as_bytes(), b"x") }
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
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n);
    assert!(all[0] > last);
}

pub async fn large_values(h: &mut Harness) {
    let db = &h.db;
    let big: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let value = big.clone();
    db.txn(move |tx| {
        let value = value.clone();
        async move { tx.set(b"big", &value) }
    })
    .await
    .unwrap();
    assert_eq!(read(db, b"big").await.unwrap(), big);
    let too_big = vec![0u8; 1024 * 1024 + 1];
    let err = db
        .txn(move |tx| {
            let v = too_big.clone();
            async move { tx.set(b"bigger", &v) }
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err:?}");
    let long_key = vec![b'k'; 20_000];
    let err = db
        .txn(move |tx| {
            let k = long_key.clone();
            async move { tx.set(&k, b"v") }
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::KeyTooLarge { .. }), "{err:?}");
}

fn scan_key(i: u32) -> Vec<u8> {
    tuple::pack(&("scan", i64::from(i)))
}

async fn fill(db: &Db, n: u32) {
    let batch = 10_000;
    for start in (0..n).step_by(batch as usize) {
        db.txn(move |tx| async move {
            for i in start..(start + batch).min(n) {
                tx.set(&scan_key(i), &i.to_le_bytes())?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    }
}

pub async fn scan_100k_keys(h: &mut Harness) {
    let db = &h.db;
    fill(db, 100_000).await;
    let (begin, end) = Subspace::new(&("scan",)).range();
    let all = range(db, &begin, &end, RangeOptions::new()).await;
    assert_eq!(all.len(), 100_000);
    for (i, (k, v)) in all.iter().enumerate() {
        assert_eq!(k, &scan_key(i as u32));
        assert_eq!(v, &(i as u32).to_le_bytes());
    }
    let tail = range(db, &begin, &end, RangeOptions::new().reverse().limit(5)).await;
    assert_eq!(tail[0].0, scan_key(99_999));
    assert_eq!(tail[4].0, scan_key(99_995));
}

pub async fn streaming_range_read(h: &mut Harness) {
    let db = &h.db;
    fill(db, 10_000).await;
    let (begin, end) = Subspace::new(&("scan",)).range();
    let tx = db.begin().await.unwrap();
    let mut stream = Box::pin(tx.stream_range(&begin, &end, RangeOptions::new()));
    let mut n = 0u32;
    while let Some(item) = stream.next().await {
        let (k, _) = item.unwrap();
        assert_eq!(k, scan_key(n));
        n += 1;
    }
    assert_eq!(n, 10_000);
    let rev: Vec<_> = tx
        .stream_range(&begin, &end, RangeOptions::new().reverse().limit(4100))
        .collect()
        .await;
    assert_eq!(rev.len(), 4100);
    assert_eq!(rev[0].as_ref().unwrap().0, scan_key(9_999));
    assert_eq!(rev[4099].as_ref().unwrap().0, scan_key(9_999 - 4099));
    // A streamed read conflicts like any other read.
    tx.set(b"out", b"1").unwrap();
    put(db, &[(&scan_key(5_000), b"changed")]).await;
    assert!(matches!(tx.commit().await, Err(StoreError::Conflict)));
}

pub async fn tuple_keys_and_subspaces(h: &mut Harness) {
    let db = &h.db;
    let actors = Subspace::new(&("actor",));
    let id = [7u8; 16];
    let kv = actors.subspace(&(tuple::Id(id), "kv"));
    db.txn(|tx| {
        let (kv, actors) = (kv.clone(), actors.clone());
        async move {
            for i in [-5i64, 3, 0, 1000, -1] {
                tx.set(&kv.pack(&(i,)), &i.to_le_bytes())?;
            }
            tx.set(
                &actors.pack(&(tuple::Id([8; 16]), "kv", 1i64)),
                b"other actor",
            )?;
            Ok::<_, StoreError>(())
        }
    })
    .await
    .unwrap();
    let (begin, end) = kv.range();
    let got = range(db, &begin, &end, RangeOptions::new()).await;
    let ints: Vec<i64> = got
        .iter()
        .map(|(k, _)| match kv.unpack(k).unwrap().as_slice() {
            [Element::Int(i)] => *i,
            other => panic!("unexpected key {other:?}"),
        })
        .collect();
    assert_eq!(ints, vec![-5, -1, 0, 3, 1000]);
}

pub async fn persistence_across_reopen(h: &mut Harness) {
    if !h.persistent() {
        return;
    }
    put(&h.db, &[(b"a", b"1"), (b"b", b"2")]).await;
    h.db.txn(|tx| async move { tx.add(b"n", 7) }).await.unwrap();
    let ((), version) =
        h.db.txn_versioned(|tx| async move {
            tx.clear(b"b");
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    h.reopen().await;
    assert_eq!(read(&h.db, b"a").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(read(&h.db, b"b").await, None);
    assert_eq!(counter(read(&h.db, b"n").await), 7);
    let tx = h.db.begin().await.unwrap();
    assert!(tx.read_version() >= version, "version survives reopen");
    drop(tx);
    let ((), next) =
        h.db.txn_versioned(|tx| async move { tx.set(b"c", b"3") })
            .await
            .unwrap();
    assert!(
        next > version,
        "commit version {next} after reopen <= {version}"
    );
}

pub async fn closed_database_refuses(h: &mut Harness) {
    let db = h.db.clone();
    put(&db, &[(b"a", b"1")]).await;
    db.close().await.unwrap();
    let err = db
        .txn(|tx| async move { tx.get(b"a").await })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err:?}");
    // Closing again is harmless.
    db.close().await.unwrap();
}

pub async fn finished_transaction_refuses(h: &mut Harness) {
    let db = &h.db;
    let tx = db.begin().await.unwrap();
    let clone = tx.clone();
    tx.set(b"a", b"1").unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(
        clone.set(b"b", b"2"),
        Err(StoreError::TransactionDone)
    ));
    assert!(matches!(
        clone.get(b"a").await,
        Err(StoreError::TransactionDone)
    ));
    assert!(matches!(
        clone.commit().await,
        Err(StoreError::TransactionDone)
    ));
    assert_eq!(read(db, b"b").await, None);
}
