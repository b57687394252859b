//! file_system-only behaviour: the data-directory lock and reopening in one process.

use rivet_store::{Db, StoreConfig, StoreError};

fn config(path: &std::path::Path, sync: bool) -> StoreConfig {
    StoreConfig::FileSystem {
        path: path.to_path_buf(),
        sync,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_open_of_a_data_dir_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(config(dir.path(), true)).await.unwrap();
    let err = Db::open(config(dir.path(), true)).await.unwrap_err();
    match &err {
        StoreError::Locked { path } => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    db.txn(|tx| async move { tx.set(b"k", b"v") })
        .await
        .unwrap();
    db.close().await.unwrap();
    // Closing releases the lock.
    let db = Db::open(config(dir.path(), false)).await.unwrap();
    let v = db
        .txn(|tx| async move { tx.get(b"k").await })
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some(&b"v"[..]));
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_writers_all_commit_with_sync_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(config(dir.path(), false)).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..64u32 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50u32 {
                db.txn(|tx| async move {
                    tx.set(format!("{t}/{i}").as_bytes(), b"x")?;
                    tx.add(b"n", 1)
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = db
        .txn(|tx| async move { tx.get(b"n").await })
        .await
        .unwrap();
    assert_eq!(i64::from_le_bytes(n.unwrap().try_into().unwrap()), 64 * 50);
    assert_eq!(db.stats().commits, 64 * 50);
    assert_eq!(db.stats().commit_latency.count, 64 * 50);
    db.close().await.unwrap();
}
