//! The store's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A key this transaction read was written by a transaction that committed after this one
    /// started. Retryable: `Db::txn` runs the closure again.
    #[error("transaction conflict")]
    Conflict,
    /// The transaction's read version is older than the driver keeps conflict history for.
    /// Retryable: `Db::txn` runs the closure again at a newer read version.
    #[error("transaction too old")]
    TransactionTooOld,
    /// The transaction was already committed; its handle (or a clone) was used afterwards.
    #[error("transaction already finished")]
    TransactionDone,
    /// The database was closed.
    #[error("database is closed")]
    Closed,
    /// Another process (or another `Db` in this one) holds the data directory.
    #[error("data directory {path} is locked by another process")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// A value exceeds the largest size the store accepts.
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    ValueTooLarge {
        /// The value's size in bytes.
        size: usize,
        /// The largest accepted size in bytes.
        limit: usize,
    },
    /// A key exceeds the largest size the store accepts.
    #[error("key of {size} bytes exceeds the limit of {limit} bytes")]
    KeyTooLarge {
        /// The key's size in bytes.
        size: usize,
        /// The largest accepted size in bytes.
        limit: usize,
    },
    /// Retries of a conflicting transaction ran out.
    #[error("transaction gave up after {attempts} attempts in {elapsed:?}")]
    RetryLimit {
        /// How many times the closure ran.
        attempts: u32,
        /// Time spent from the first attempt.
        elapsed: Duration,
    },
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The embedded storage engine (fjall) failed.
    #[error("storage engine error while {context}: {message}")]
    Engine {
        /// What the store was doing.
        context: String,
        /// The engine's message.
        message: String,
    },
    /// The PostgreSQL driver failed.
    #[error("postgres: {0}")]
    Postgres(String),
    /// The configuration is invalid or names something unavailable.
    #[error("store configuration: {0}")]
    Config(String),
    /// Data read back from storage is not in the expected shape.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A tuple could not be decoded.
    #[error("tuple decode error at byte {offset}: {reason}")]
    TupleDecode {
        /// Byte offset of the problem.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
}

impl StoreError {
    /// Whether `Db::txn` retries the transaction on this error.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict | StoreError::TransactionTooOld)
    }

    /// Wraps an I/O error with what the store was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a storage-engine error with what the store was doing.
    pub fn engine(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        StoreError::Engine {
            context: context.into(),
            message: err.to_string(),
        }
    }
}
