//! Opens a fresh database of each kind for one test, and cleans it up afterwards.

use rivet_store::{Db, StoreConfig};

/// The PostgreSQL server the postgres variants run against.
pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which driver a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    FileSystem,
    Postgres,
}

/// A database opened for one test.
pub struct Harness {
    pub kind: Kind,
    pub db: Db,
    dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl Harness {
    pub async fn new(kind: Kind) -> Harness {
        let mut h = Harness {
            kind,
            db: Db::from_driver(std::sync::Arc::new(rivet_store::memory::MemoryDriver::new())),
            dir: None,
            schema: None,
        };
        match kind {
            Kind::Memory => {}
            Kind::FileSystem => h.dir = Some(tempfile::tempdir().unwrap()),
            Kind::Postgres => {
                h.schema = Some(format!("rivet_test_{:016x}", rand::random::<u64>()));
            }
        }
        h.db = Db::open(h.config()).await.unwrap();
        h
    }

    pub fn config(&self) -> StoreConfig {
        match self.kind {
            Kind::Memory => StoreConfig::Memory,
            Kind::FileSystem => StoreConfig::FileSystem {
                path: self.dir.as_ref().unwrap().path().to_path_buf(),
                sync: true,
            },
            Kind::Postgres => StoreConfig::Postgres {
                url: PG_URL.into(),
                pool_size: 8,
                schema: self.schema.clone(),
            },
        }
    }

    /// Whether the data outlives `close` (every driver but memory).
    pub fn persistent(&self) -> bool {
        self.kind != Kind::Memory
    }

    /// Closes and opens the same database again.
    pub async fn reopen(&mut self) {
        self.db.close().await.unwrap();
        self.db = Db::open(self.config()).await.unwrap();
    }

    pub async fn finish(self) {
        self.db.close().await.unwrap();
        if let Some(schema) = &self.schema {
            let (client, conn) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
                .await
                .unwrap();
            let task = tokio::spawn(conn);
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
                .unwrap();
            drop(client);
            let _ = task.await;
        }
    }
}
