//! The PostgreSQL driver: several engine processes share one database (one schema) and see each
//! other's commits, with serializable transactions whose conflicts are detected across
//! processes.
//!
//! Tables (in the configured schema): `rivet_kv(key bytea primary key, value bytea)` holds the
//! data (bytea compares bytewise, so the primary key orders keys as the store does);
//! keys longer than 2 KiB, too long for a B-tree index row, live in `rivet_kv_long`, indexed by
//! their first 2 KiB plus a SHA-256 of the whole key, and range reads merge both tables;
//! `rivet_meta` is one row with the newest commit version, the commit-log horizon and whether
//! any long key was ever written (reads skip the second table until then);
//! `rivet_commit_log(version, begin_key, end_key)` holds the write ranges of recent commits;
//! `rivet_schema_version` records applied migrations.
//!
//! Reads run in REPEATABLE READ snapshots (see [`snapshot`]); commits go through one group
//! committer per driver (see [`committer`]) that serializes with other processes on the
//! `rivet_meta` row lock.

mod committer;
mod connect;
mod plan;
mod schema;
mod snapshot;

use std::sync::{Arc, Mutex, PoisonError};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::driver::{BoxFuture, CommitRequest, Driver, ReadView};
use crate::error::StoreError;

use committer::{CommitJob, Committer};
use snapshot::{PgView, SnapshotWaiter};

pub use connect::redact_url;

/// The schema used when none is configured.
pub const DEFAULT_SCHEMA: &str = "public";

/// Opens (creating or migrating the schema) a PostgreSQL-backed driver with `pool_size` pooled
/// connections for reads plus one connection for its committer.
pub async fn open(
    url: &str,
    pool_size: usize,
    schema: Option<&str>,
) -> Result<Arc<dyn Driver>, StoreError> {
    Ok(Arc::new(PgDriver::open(url, pool_size, schema).await?))
}

/// Wraps a PostgreSQL error with what the driver was doing.
pub(crate) fn pg_error(context: &str, e: &tokio_postgres::Error) -> StoreError {
    StoreError::Postgres(format!("{context}: {}", connect::error_chain(e)))
}

/// Whether an error means the connection is gone (closed socket, terminated backend, server
/// shutting down) rather than the server refusing a statement.
pub(crate) fn connection_error(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // Class 08: connection exception; 57P01-57P05: the backend is going away.
        Some(code) => code.code().starts_with("08") || code.code().starts_with("57P"),
        None => e.as_db_error().is_none(),
    }
}

/// The PostgreSQL driver.
pub struct PgDriver {
    snapshots: Mutex<Option<mpsc::UnboundedSender<SnapshotWaiter>>>,
    commits: Mutex<Option<mpsc::UnboundedSender<CommitJob>>>,
    tasks: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
    pool: Pool,
}

impl PgDriver {
    /// Connects, migrates the schema and starts the committer.
    pub async fn open(
        url: &str,
        pool_size: usize,
        schema: Option<&str>,
    ) -> Result<PgDriver, StoreError> {
        if pool_size == 0 {
            return Err(StoreError::Config(
                "postgres pool_size must be at least 1".into(),
            ));
        }
        let schema = schema.unwrap_or(DEFAULT_SCHEMA);
        if schema.is_empty() {
            return Err(StoreError::Config("postgres schema name is empty".into()));
        }
        let redacted = connect::redact_url(url);
        let config = connect::parse_config(url)?;
        {
            let client = connect::connect(&config, &redacted).await?;
            schema::migrate(&client, schema).await?;
        }
        let sql = Arc::new(schema::Sql::new(schema));
        let pool = connect::build_pool(config.clone(), pool_size, &redacted)?;
        let committer = Committer::connect(config, redacted.clone(), sql.clone()).await?;
        let (commit_tx, commit_rx) = mpsc::unbounded_channel();
        let (snap_tx, snap_rx) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(committer.run(commit_rx)),
            tokio::spawn(snapshot::run_opener(snap_rx, pool.clone(), sql)),
        ];
        tracing::info!(url = %redacted, schema, pool_size, "postgres store opened");
        Ok(PgDriver {
            snapshots: Mutex::new(Some(snap_tx)),
            commits: Mutex::new(Some(commit_tx)),
            tasks: tokio::sync::Mutex::new(tasks),
            pool,
        })
    }
}

impl Driver for PgDriver {
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn ReadView>, StoreError>> {
        Box::pin(async move {
            let queue = self
                .snapshots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .ok_or(StoreError::Closed)?;
            let (tx, rx) = oneshot::channel();
            queue.send(tx).map_err(|_| StoreError::Closed)?;
            let snapshot = rx.await.map_err(|_| StoreError::Closed)??;
            Ok(Box::new(PgView { snapshot }) as Box<dyn ReadView>)
        })
    }

    fn commit(&self, request: CommitRequest) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let queue = self
                .commits
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .ok_or(StoreError::Closed)?;
            if request.mutations.is_empty() && request.write_conflicts.is_empty() {
                // Nothing to write: the transaction serializes at its read version.
                return Ok(request.read_version);
            }
            let (reply, rx) = oneshot::channel();
            queue
                .send(CommitJob { request, reply })
                .map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // Dropping the senders lets the committer finish what is queued, then stop.
            drop(
                self.commits
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
            );
            drop(
                self.snapshots
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
            );
            let tasks = std::mem::take(&mut *self.tasks.lock().await);
            for task in tasks {
                if let Err(e) = task.await {
                    tracing::warn!(error = %e, "postgres driver task failed");
                }
            }
            self.pool.close();
            Ok(())
        })
    }
}
