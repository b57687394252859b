//! Shared by the orchestrator's integration tests: every check runs against each real store.

use rivet_store::{Db, StoreConfig};

/// Runs `check` against a fresh database of every driver.
pub async fn on_every_driver<F, Fut>(check: F)
where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let memory = Db::open(StoreConfig::Memory).await.unwrap();
    check(memory.clone()).await;
    memory.close().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let fs = Db::open(StoreConfig::FileSystem {
        path: dir.path().join("db"),
        sync: false,
    })
    .await
    .unwrap();
    check(fs.clone()).await;
    fs.close().await.unwrap();

    let url = std::env::var("RIVET_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("orch_test_{:016x}", rand::random::<u64>());
    let pg = Db::open(StoreConfig::Postgres {
        url: url.clone(),
        pool_size: 4,
        schema: Some(schema.clone()),
    })
    .await
    .unwrap();
    check(pg.clone()).await;
    pg.close().await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
