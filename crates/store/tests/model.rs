//! Property test of one transaction against a model: random sets, clears, range clears and
//! atomic operations, interleaved with point and range reads, must read exactly what a plain
//! ordered map says, and commit to exactly the model's final state.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rivet_store::{Db, RangeOptions, StoreConfig, StoreError};

#[derive(Debug, Clone)]
enum Op {
    Set(u8, Vec<u8>),
    Clear(u8),
    ClearRange(u8, u8),
    Add(u8, i64),
    Max(u8, i64),
    CompareAndClear(u8, Vec<u8>),
    Get(u8),
    Range(u8, u8, Option<usize>, bool),
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..10),
        any::<i64>().prop_map(|v| v.to_le_bytes().to_vec()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..10;
    prop_oneof![
        (k.clone(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        k.clone().prop_map(Op::Clear),
        (k.clone(), k.clone()).prop_map(|(a, b)| Op::ClearRange(a, b)),
        (k.clone(), -5i64..5).prop_map(|(k, d)| Op::Add(k, d)),
        (k.clone(), any::<i64>()).prop_map(|(k, d)| Op::Max(k, d)),
        (k.clone(), value()).prop_map(|(k, v)| Op::CompareAndClear(k, v)),
        k.clone().prop_map(Op::Get),
        (
            k.clone(),
            0u8..11,
            proptest::option::of(0usize..6),
            any::<bool>()
        )
            .prop_map(|(a, b, l, r)| Op::Range(a, b, l, r)),
    ]
}

fn as_i64(v: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    let n = v.len().min(8);
    buf[..n].copy_from_slice(&v[..n]);
    i64::from_le_bytes(buf)
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn model_range(
    m: &Model,
    a: u8,
    b: u8,
    limit: Option<usize>,
    reverse: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    if a >= b {
        return Vec::new();
    }
    let it = m.range(key(a)..key(b)).map(|(k, v)| (k.clone(), v.clone()));
    let all: Vec<_> = if reverse {
        it.rev().collect()
    } else {
        it.collect()
    };
    all.into_iter().take(limit.unwrap_or(usize::MAX)).collect()
}

async fn check(config: StoreConfig, initial: Model, ops: Vec<Op>) {
    let db = Db::open(config).await.unwrap();
    let init = initial.clone();
    db.txn(move |tx| {
        let init = init.clone();
        async move {
            for (k, v) in &init {
                tx.set(k, v)?;
            }
            Ok::<_, StoreError>(())
        }
    })
    .await
    .unwrap();
    let mut m = initial;
    let tx = db.begin().await.unwrap();
    for op in &ops {
        match op {
            Op::Set(k, v) => {
                tx.set(&key(*k), v).unwrap();
                m.insert(key(*k), v.clone());
            }
            Op::Clear(k) => {
                tx.clear(&key(*k));
                m.remove(&key(*k));
            }
            Op::ClearRange(a, b) => {
                tx.clear_range(&key(*a), &key(*b));
                if a < b {
                    let doomed: Vec<_> =
                        m.range(key(*a)..key(*b)).map(|(k, _)| k.clone()).collect();
                    for k in doomed {
                        m.remove(&k);
                    }
                }
            }
            Op::Add(k, d) => {
                tx.add(&key(*k), *d).unwrap();
                let cur = m.get(&key(*k)).map_or(0, |v| as_i64(v));
                m.insert(key(*k), cur.wrapping_add(*d).to_le_bytes().to_vec());
            }
            Op::Max(k, d) => {
                tx.max(&key(*k), *d).unwrap();
                let new = m.get(&key(*k)).map_or(*d, |v| as_i64(v).max(*d));
                m.insert(key(*k), new.to_le_bytes().to_vec());
            }
            Op::CompareAndClear(k, v) => {
                tx.compare_and_clear(&key(*k), v).unwrap();
                if m.get(&key(*k)) == Some(v) {
                    m.remove(&key(*k));
                }
            }
            Op::Get(k) => {
                assert_eq!(
                    tx.get(&key(*k)).await.unwrap(),
                    m.get(&key(*k)).cloned(),
                    "{op:?}"
                );
            }
            Op::Range(a, b, limit, reverse) => {
                let opts = RangeOptions {
                    limit: *limit,
                    reverse: *reverse,
                    snapshot: false,
                };
                let got = tx.get_range(&key(*a), &key(*b), opts).await.unwrap();
                assert_eq!(got, model_range(&m, *a, *b, *limit, *reverse), "{op:?}");
            }
        }
    }
    tx.commit().await.unwrap();
    let committed = db
        .txn(|tx| async move { tx.get_range(b"k", b"l", RangeOptions::new()).await })
        .await
        .unwrap();
    let expected: Vec<_> = m.into_iter().collect();
    assert_eq!(committed, expected);
    db.close().await.unwrap();
}

fn initial() -> impl Strategy<Value = Model> {
    proptest::collection::btree_map((0u8..10).prop_map(key), value(), 0..8)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn memory_transaction_matches_model(init in initial(), ops in proptest::collection::vec(op(), 0..30)) {
        runtime().block_on(check(StoreConfig::Memory, init, ops));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn file_system_transaction_matches_model(init in initial(), ops in proptest::collection::vec(op(), 0..30)) {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::FileSystem { path: dir.path().to_path_buf(), sync: false };
        runtime().block_on(check(config, init, ops));
    }
}
