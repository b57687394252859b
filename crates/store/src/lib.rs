//! Ordered transactional key-value store with file_system (fjall), postgres and memory drivers.
//!
//! Open a database with [`Db::open`] and run transactions with [`Db::txn`]:
//!
//! ```
//! use rivet_store::{tuple, Db, StoreConfig, StoreError};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), StoreError> {
//! let db = Db::open(StoreConfig::Memory).await?;
//! let key = tuple::pack(&("counter", 1i64));
//! let value = db
//!     .txn(move |tx| {
//!         let key = key.clone();
//!         async move {
//!             let n = tx.get(&key).await?.map_or(0, |v| v.len());
//!             tx.set(&key, &vec![b'x'; n + 1])?;
//!             Ok::<_, StoreError>(n + 1)
//!         }
//!     })
//!     .await?;
//! assert_eq!(value, 1);
//! db.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Semantics, the same on every driver:
//! - **Serializable** through optimistic concurrency: a transaction reads at a snapshot (its read
//!   version); at commit, if anything it read (its read conflict ranges) was written by a
//!   transaction that committed after its read version, it fails with
//!   [`StoreError::Conflict`]. [`Db::txn`] then runs the closure again with exponential backoff,
//!   bounded by a [`RetryPolicy`]; **the closure must therefore be idempotent** (read and write
//!   only through the transaction; anything else it does may happen several times).
//! - Only [`StoreError::Conflict`] and [`StoreError::TransactionTooOld`] are retried. The closure
//!   may return its own error type `E: TxError` (anything `From<StoreError>` that can say
//!   whether it holds a store error); other errors abort and are returned as they are.
//! - Reads see the transaction's own writes. Snapshot reads ([`Tx::get_snapshot`],
//!   [`RangeOptions::snapshot`]) add no conflict range. Atomic operations ([`Tx::add`],
//!   [`Tx::min`], [`Tx::max`], [`Tx::compare_and_clear`]) apply at commit without a read
//!   conflict, so concurrent counters never conflict.
//! - Commit versions increase strictly and survive restarts; a transaction that lasts longer
//!   than the conflict window (10 s) fails with `TransactionTooOld` and is retried.
//! - Limits: keys up to [`tx::MAX_KEY_SIZE`] (10 KiB), values up to [`tx::MAX_VALUE_SIZE`]
//!   (1 MiB).
//!
//! Keys are usually built with the [`tuple`] layer, whose encoding keeps tuple order, so every
//! [`Subspace`] is one key range.

pub mod db;
pub mod driver;
pub mod error;
pub mod file_system;
pub mod memory;
pub mod postgres;
pub mod stats;
pub mod tuple;
pub mod tx;

mod conflict;

pub use db::{Db, RetryPolicy, StoreConfig, TxError};
pub use driver::{AtomicOp, KeyRange, KeyValue};
pub use error::StoreError;
pub use stats::StoreStats;
pub use tuple::{Element, Pack, Subspace};
pub use tx::{RangeOptions, Tx};
