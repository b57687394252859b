//! The database handle: opening a driver, the retrying transaction loop, statistics.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::driver::Driver;
use crate::error::StoreError;
use crate::stats::{Counters, StoreStats};
use crate::tx::Tx;

/// Which storage backend to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Embedded store (fjall) in a data directory owned by this process.
    FileSystem {
        /// The data directory; created when missing.
        path: PathBuf,
        /// `true`: fsync each commit group, durable across power loss. `false`: hand writes to
        /// the OS per commit group, durable across a process crash only.
        sync: bool,
    },
    /// PostgreSQL, for several engine nodes sharing one store.
    Postgres {
        /// Connection URL, e.g. `postgres://postgres@127.0.0.1:5432/test`.
        url: String,
        /// Connections in the pool.
        pool_size: usize,
        /// Schema holding the store's tables; `None` for the default.
        schema: Option<String>,
    },
    /// In-memory store for tests and demos; nothing survives `close`.
    Memory,
}

/// Errors a transaction closure can return: anything that can hold a [`StoreError`] and say
/// whether it does, so `Db::txn` can retry conflicts and pass everything else through.
pub trait TxError: From<StoreError> {
    /// The store error inside, if this error is one.
    fn as_store_error(&self) -> Option<&StoreError>;
}

impl TxError for StoreError {
    fn as_store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

/// Bounds on how `Db::txn` retries conflicting transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most times the closure runs.
    pub max_attempts: u32,
    /// No new attempt starts after this much time since the first.
    pub max_elapsed: Duration,
    /// Backoff before the first retry; doubles each retry (with random jitter).
    pub initial_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 100,
            max_elapsed: Duration::from_secs(30),
            initial_backoff: Duration::from_micros(500),
            max_backoff: Duration::from_millis(100),
        }
    }
}

struct Shared {
    driver: Arc<dyn Driver>,
    counters: Arc<Counters>,
    closed: AtomicBool,
}

/// A handle to an open database; clones share it.
#[derive(Clone)]
pub struct Db {
    shared: Arc<Shared>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the configured backend.
    pub async fn open(config: StoreConfig) -> Result<Db, StoreError> {
        let driver: Arc<dyn Driver> = match config {
            StoreConfig::Memory => Arc::new(crate::memory::MemoryDriver::new()),
            StoreConfig::FileSystem { path, sync } => {
                let driver = tokio::task::spawn_blocking(move || {
                    crate::file_system::FsDriver::open(&path, sync)
                })
                .await
                .map_err(|e| StoreError::Config(format!("open task failed: {e}")))??;
                Arc::new(driver)
            }
            StoreConfig::Postgres {
                url,
                pool_size,
                schema,
            } => crate::postgres::open(&url, pool_size, schema.as_deref()).await?,
        };
        Ok(Db::from_driver(driver))
    }

    /// Wraps an already opened driver.
    pub fn from_driver(driver: Arc<dyn Driver>) -> Db {
        Db {
            shared: Arc::new(Shared {
                driver,
                counters: Arc::new(Counters::default()),
                closed: AtomicBool::new(false),
            }),
            retry: RetryPolicy::default(),
        }
    }

    /// This handle with another retry policy (the database itself is shared).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Db {
        self.retry = retry;
        self
    }

    /// Starts a transaction at the newest committed version; commit it with [`Tx::commit`].
    /// Nothing retries it: prefer [`Db::txn`].
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        // Embedded drivers may complete a whole transaction without ever being pending; spend
        // cooperative budget so a task committing in a loop still lets others run.
        tokio::task::consume_budget().await;
        let view = self.shared.driver.begin().await?;
        Ok(Tx::new(
            view,
            self.shared.driver.clone(),
            self.shared.counters.clone(),
        ))
    }

    /// Runs `f` in a serializable transaction and commits it, retrying on conflicts.
    ///
    /// The closure may run several times (after a conflict or a too-old read version, with
    /// exponential backoff, bounded by the [`RetryPolicy`]), so it must be idempotent: it should
    /// only read and write through `tx` and compute its result from what it read. An `Err`
    /// from the closure aborts the transaction (its writes are dropped) and is returned as is,
    /// unless it holds a retryable store error. When retries run out the error is
    /// [`StoreError::RetryLimit`].
    pub async fn txn<F, Fut, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(Tx) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: TxError,
    {
        self.txn_versioned(f).await.map(|(value, _)| value)
    }

    /// Like [`Db::txn`], also returning the commit version (the read version when the
    /// transaction wrote nothing).
    pub async fn txn_versioned<F, Fut, T, E>(&self, mut f: F) -> Result<(T, u64), E>
    where
        F: FnMut(Tx) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: TxError,
    {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let tx = self.begin().await?;
            let outcome = match f(tx.clone()).await {
                Ok(value) => match tx.commit().await {
                    Ok(version) => return Ok((value, version)),
                    Err(e) => E::from(e),
                },
                Err(e) => e,
            };
            let retryable = outcome
                .as_store_error()
                .is_some_and(StoreError::is_retryable);
            if !retryable {
                return Err(outcome);
            }
            let elapsed = started.elapsed();
            if attempt >= self.retry.max_attempts || elapsed >= self.retry.max_elapsed {
                tracing::warn!(
                    attempts = attempt,
                    ?elapsed,
                    "transaction retry limit reached"
                );
                return Err(E::from(StoreError::RetryLimit {
                    attempts: attempt,
                    elapsed,
                }));
            }
            self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
            let backoff = self.backoff(attempt);
            tracing::debug!(attempt, ?backoff, "transaction conflict, retrying");
            tokio::time::sleep(backoff).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .initial_backoff
            .saturating_mul(1u32 << (attempt - 1).min(20));
        let cap = exp.min(self.retry.max_backoff);
        // Full jitter between half and all of the cap keeps contenders from retrying in step.
        let factor: f64 = rand::rng().random_range(0.5..=1.0);
        cap.mul_f64(factor)
    }

    /// Cumulative counters since open.
    pub fn stats(&self) -> StoreStats {
        self.shared.counters.snapshot()
    }

    /// Flushes and releases the backend (the data-dir lock, connections). Later transactions
    /// fail with [`StoreError::Closed`]. Closing twice is harmless.
    pub async fn close(&self) -> Result<(), StoreError> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.shared.driver.close().await
    }
}
