//! The boundary between the transaction layer and a storage driver.
//!
//! The transaction layer (`Db::txn`, `Tx`) is driver-independent: it buffers writes, merges them
//! into reads (read-your-writes), records read and write conflict ranges, and retries conflicts.
//! A driver provides two things: a consistent read view at a read version, and an atomic commit
//! that rejects a request whose read conflict ranges intersect anything committed after its read
//! version. Commit versions are strictly increasing per database.

use std::future::Future;
use std::pin::Pin;

use crate::error::StoreError;

/// A boxed, sendable future; drivers are used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A half-open key range `[begin, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRange {
    /// Inclusive lower bound.
    pub begin: Vec<u8>,
    /// Exclusive upper bound.
    pub end: Vec<u8>,
}

impl KeyRange {
    /// The range holding exactly `key`.
    pub fn single(key: &[u8]) -> Self {
        let mut end = key.to_vec();
        end.push(0);
        KeyRange {
            begin: key.to_vec(),
            end,
        }
    }

    /// Whether the two ranges share at least one key.
    pub fn intersects(&self, other: &KeyRange) -> bool {
        self.begin < other.end && other.begin < self.end
    }
}

/// An atomic operation applied at commit against the value current at that moment, without
/// adding a read conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicOp {
    /// Little-endian two's-complement i64 addition (a missing value counts as 0).
    Add,
    /// Little-endian i64 minimum (a missing value takes the parameter).
    Min,
    /// Little-endian i64 maximum (a missing value takes the parameter).
    Max,
    /// Clears the key if its current value equals the parameter byte for byte.
    CompareAndClear,
}

/// One buffered write, applied in order at commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Set `key` to `value`.
    Set {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Clear {
        /// The key.
        key: Vec<u8>,
    },
    /// Remove every key in the range.
    ClearRange(KeyRange),
    /// Apply an atomic operation to `key`.
    Atomic {
        /// The key.
        key: Vec<u8>,
        /// The operation.
        op: AtomicOp,
        /// The operand.
        param: Vec<u8>,
    },
}

/// Everything a transaction hands to the driver at commit.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// The version the transaction read at.
    pub read_version: u64,
    /// Ranges whose modification after `read_version` must fail the commit.
    pub read_conflicts: Vec<KeyRange>,
    /// Ranges this commit counts as written, for later transactions' conflict checks. Includes
    /// every mutated key or range plus explicit write conflict ranges.
    pub write_conflicts: Vec<KeyRange>,
    /// The writes, in the order the transaction made them.
    pub mutations: Vec<Mutation>,
}

/// A range read request against a read view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    /// The range to read.
    pub range: KeyRange,
    /// At most this many pairs; `None` for all.
    pub limit: Option<usize>,
    /// Read from the end of the range backwards.
    pub reverse: bool,
}

/// A consistent view of the database at one read version.
pub trait ReadView: Send + Sync {
    /// The commit version this view reflects: every commit at or below it is visible, none above.
    fn read_version(&self) -> u64;
    /// Reads one key.
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// Reads key/value pairs in key order (or reverse order), honouring the limit.
    fn get_range<'a>(
        &'a self,
        request: &'a RangeRequest,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StoreError>>;
}

/// A storage backend.
pub trait Driver: Send + Sync + 'static {
    /// Opens a read view at the newest committed version.
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn ReadView>, StoreError>>;
    /// Commits atomically, returning the new commit version, or `StoreError::Conflict` when a
    /// read conflict range intersects a write committed after `read_version`.
    fn commit(&self, request: CommitRequest) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Flushes and releases the backend; later calls fail with `StoreError::Closed`.
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}
