//! A transaction: buffered writes with read-your-writes, conflict ranges, commit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures::Stream;

use crate::conflict::apply_atomic;
use crate::driver::{
    AtomicOp, CommitRequest, Driver, KeyRange, KeyValue, Mutation, RangeRequest, ReadView,
};
use crate::error::StoreError;
use crate::stats::Counters;

/// The largest key the store accepts, in bytes.
pub const MAX_KEY_SIZE: usize = 10 * 1024;
/// The largest value the store accepts, in bytes (1 MiB).
pub const MAX_VALUE_SIZE: usize = 1024 * 1024;
/// How many pairs one page of an unlimited or streamed range read fetches from the driver.
pub const RANGE_PAGE_SIZE: usize = 2048;

/// Options of a range read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeOptions {
    /// Return at most this many pairs; `None` for all of them.
    pub limit: Option<usize>,
    /// Return pairs from the end of the range backwards.
    pub reverse: bool,
    /// Read without adding a read conflict range.
    pub snapshot: bool,
}

impl RangeOptions {
    /// Forward, unlimited, conflict-checked.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the limit.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    /// Reads backwards.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
    /// Reads without a conflict range.
    pub fn snapshot(mut self) -> Self {
        self.snapshot = true;
        self
    }
}

/// A buffered write to one key, as seen by later reads of the same transaction.
#[derive(Debug, Clone)]
enum Pending {
    Value(Vec<u8>),
    Cleared,
    /// Atomic operations on a value this transaction has not read.
    Atomic(Vec<(AtomicOp, Vec<u8>)>),
}

impl Pending {
    /// The value a read sees, given the committed `base` value.
    fn resolve(&self, base: Option<&[u8]>) -> Option<Vec<u8>> {
        match self {
            Pending::Value(v) => Some(v.clone()),
            Pending::Cleared => None,
            Pending::Atomic(ops) => {
                let mut cur = base.map(<[u8]>::to_vec);
                for (op, param) in ops {
                    cur = apply_atomic(*op, cur.as_deref(), param);
                }
                cur
            }
        }
    }
}

#[derive(Default)]
struct State {
    writes: BTreeMap<Vec<u8>, Pending>,
    /// Ranges cleared by this transaction; keys in `writes` were written after the clear.
    cleared: Vec<KeyRange>,
    read_conflicts: Vec<KeyRange>,
    write_conflicts: Vec<KeyRange>,
    done: bool,
}

impl State {
    fn in_cleared(&self, key: &[u8]) -> bool {
        self.cleared
            .iter()
            .any(|r| r.begin.as_slice() <= key && key < r.end.as_slice())
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.done {
            Err(StoreError::TransactionDone)
        } else {
            Ok(())
        }
    }
}

struct Inner {
    view: Box<dyn ReadView>,
    driver: Arc<dyn Driver>,
    counters: Arc<Counters>,
    state: Mutex<State>,
}

/// A transaction handle. Cloning is cheap and every clone is the same transaction, so a closure
/// of the form `move |tx| async move { … }` can move it freely.
///
/// Reads see the database at the transaction's read version plus the transaction's own writes.
/// Writes are buffered and applied atomically at commit.
#[derive(Clone)]
pub struct Tx {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("read_version", &self.read_version())
            .finish_non_exhaustive()
    }
}

fn check_key(key: &[u8]) -> Result<(), StoreError> {
    if key.len() > MAX_KEY_SIZE {
        return Err(StoreError::KeyTooLarge {
            size: key.len(),
            limit: MAX_KEY_SIZE,
        });
    }
    Ok(())
}

impl Tx {
    pub(crate) fn new(
        view: Box<dyn ReadView>,
        driver: Arc<dyn Driver>,
        counters: Arc<Counters>,
    ) -> Self {
        Tx {
            inner: Arc::new(Inner {
                view,
                driver,
                counters,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only buffered writes behind; keep going.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The version this transaction reads at.
    pub fn read_version(&self) -> u64 {
        self.inner.view.read_version()
    }

    /// Reads one key, adding it to the read conflict set.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_inner(key, false).await
    }

    /// Reads one key without adding a read conflict: a later write to it by another transaction
    /// does not fail this one.
    pub async fn get_snapshot(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_inner(key, true).await
    }

    async fn get_inner(&self, key: &[u8], snapshot: bool) -> Result<Option<Vec<u8>>, StoreError> {
        {
            let mut st = self.state();
            st.check_open()?;
            match st.writes.get(key) {
                Some(Pending::Value(v)) => return Ok(Some(v.clone())),
                Some(Pending::Cleared) => return Ok(None),
                Some(Pending::Atomic(_)) => {}
                None if st.in_cleared(key) => return Ok(None),
                None => {}
            }
            if !snapshot {
                st.read_conflicts.push(KeyRange::single(key));
            }
        }
        // Embedded drivers answer reads synchronously; spend cooperative budget so a task that
        // reads in a loop still yields to the scheduler (and its timers).
        tokio::task::consume_budget().await;
        let base = self.inner.view.get(key).await?;
        let st = self.state();
        Ok(match st.writes.get(key) {
            Some(p) => p.resolve(base.as_deref()),
            None if st.in_cleared(key) => None,
            None => base,
        })
    }

    /// Reads the pairs in `[begin, end)` in key order (or reverse order), merged with this
    /// transaction's writes. An empty or inverted range returns nothing. The read conflict range
    /// covers exactly what the result depends on (up to the last returned key when the limit
    /// cut it short).
    pub async fn get_range(
        &self,
        begin: &[u8],
        end: &[u8],
        opts: RangeOptions,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.state().check_open()?;
        let limit = opts.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if begin >= end || limit == 0 {
            return Ok(out);
        }
        // The part of the range not read yet.
        let mut rest = KeyRange {
            begin: begin.to_vec(),
            end: end.to_vec(),
        };
        loop {
            let want = (limit - out.len()).min(RANGE_PAGE_SIZE);
            let request = RangeRequest {
                range: rest.clone(),
                limit: Some(want),
                reverse: opts.reverse,
            };
            tokio::task::consume_budget().await;
            let page = self.inner.view.get_range(&request).await?;
            let exhausted = page.len() < want;
            // The driver page covers `rest` entirely when exhausted, otherwise up to its last key.
            let covered = match (exhausted, page.last()) {
                (false, Some((last, _))) if opts.reverse => KeyRange {
                    begin: last.clone(),
                    end: rest.end.clone(),
                },
                (false, Some((last, _))) => KeyRange {
                    begin: rest.begin.clone(),
                    end: key_after(last),
                },
                _ => rest.clone(),
            };
            let merged = {
                let st = self.state();
                merge_page(&st, page, &covered, opts.reverse)
            };
            for pair in merged {
                out.push(pair);
                if out.len() == limit {
                    break;
                }
            }
            if out.len() == limit {
                break;
            }
            if exhausted {
                break;
            }
            if opts.reverse {
                rest.end = covered.begin;
            } else {
                rest.begin = covered.end;
            }
            if rest.begin >= rest.end {
                break;
            }
        }
        if !opts.snapshot {
            let conflict = match out.last() {
                Some((last, _)) if out.len() == limit && opts.reverse => KeyRange {
                    begin: last.clone(),
                    end: end.to_vec(),
                },
                Some((last, _)) if out.len() == limit => KeyRange {
                    begin: begin.to_vec(),
                    end: key_after(last),
                },
                _ => KeyRange {
                    begin: begin.to_vec(),
                    end: end.to_vec(),
                },
            };
            self.state().read_conflicts.push(conflict);
        }
        Ok(out)
    }

    /// Streams the pairs in `[begin, end)` page by page ([`RANGE_PAGE_SIZE`] pairs per driver
    /// read), for ranges too large to hold at once. Each page adds its own read conflict range
    /// unless `opts.snapshot` is set.
    pub fn stream_range(
        &self,
        begin: &[u8],
        end: &[u8],
        opts: RangeOptions,
    ) -> impl Stream<Item = Result<KeyValue, StoreError>> + Send + 'static {
        struct Cursor {
            tx: Tx,
            rest: Option<KeyRange>,
            remaining: usize,
            buffer: std::vec::IntoIter<KeyValue>,
            opts: RangeOptions,
        }
        let cursor = Cursor {
            tx: self.clone(),
            rest: Some(KeyRange {
                begin: begin.to_vec(),
                end: end.to_vec(),
            }),
            remaining: opts.limit.unwrap_or(usize::MAX),
            buffer: Vec::new().into_iter(),
            opts,
        };
        futures::stream::unfold(cursor, |mut c| async move {
            loop {
                if let Some(pair) = c.buffer.next() {
                    return Some((Ok(pair), c));
                }
                let rest = c.rest.take()?;
                if c.remaining == 0 || rest.begin >= rest.end {
                    return None;
                }
                let page_size = c.remaining.min(RANGE_PAGE_SIZE);
                let opts = RangeOptions {
                    limit: Some(page_size),
                    ..c.opts
                };
                match c.tx.get_range(&rest.begin, &rest.end, opts).await {
                    Err(e) => return Some((Err(e), c)),
                    Ok(page) => {
                        c.remaining -= page.len();
                        if page.len() == page_size {
                            if let Some((last, _)) = page.last() {
                                c.rest = Some(if c.opts.reverse {
                                    KeyRange {
                                        begin: rest.begin,
                                        end: last.clone(),
                                    }
                                } else {
                                    KeyRange {
                                        begin: key_after(last),
                                        end: rest.end,
                                    }
                                });
                            }
                        }
                        c.buffer = page.into_iter();
                    }
                }
            }
        })
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        if value.len() > MAX_VALUE_SIZE {
            return Err(StoreError::ValueTooLarge {
                size: value.len(),
                limit: MAX_VALUE_SIZE,
            });
        }
        let mut st = self.state();
        st.check_open()?;
        st.writes
            .insert(key.to_vec(), Pending::Value(value.to_vec()));
        Ok(())
    }

    /// Removes `key`.
    pub fn clear(&self, key: &[u8]) {
        let mut st = self.state();
        if st.done {
            tracing::warn!("clear on a finished transaction ignored");
            return;
        }
        st.writes.insert(key.to_vec(), Pending::Cleared);
    }

    /// Removes every key in `[begin, end)`; an empty or inverted range does nothing.
    pub fn clear_range(&self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        let mut st = self.state();
        if st.done {
            tracing::warn!("clear_range on a finished transaction ignored");
            return;
        }
        let doomed: Vec<Vec<u8>> = st
            .writes
            .range(begin.to_vec()..end.to_vec())
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            st.writes.remove(&k);
        }
        st.cleared.push(KeyRange {
            begin: begin.to_vec(),
            end: end.to_vec(),
        });
    }

    /// Applies an atomic operation at commit against the value current then, without a read
    /// conflict. Reads of `key` in this transaction see the operation applied.
    pub fn atomic_op(&self, key: &[u8], op: AtomicOp, param: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        if param.len() > MAX_VALUE_SIZE {
            return Err(StoreError::ValueTooLarge {
                size: param.len(),
                limit: MAX_VALUE_SIZE,
            });
        }
        let mut st = self.state();
        st.check_open()?;
        let cleared = st.in_cleared(key);
        match st.writes.get_mut(key) {
            Some(Pending::Atomic(ops)) => ops.push((op, param.to_vec())),
            Some(known) => {
                let current = match known {
                    Pending::Value(v) => Some(std::mem::take(v)),
                    _ => None,
                };
                *known = match apply_atomic(op, current.as_deref(), param) {
                    Some(v) => Pending::Value(v),
                    None => Pending::Cleared,
                };
            }
            None if cleared => {
                let p = match apply_atomic(op, None, param) {
                    Some(v) => Pending::Value(v),
                    None => Pending::Cleared,
                };
                st.writes.insert(key.to_vec(), p);
            }
            None => {
                st.writes
                    .insert(key.to_vec(), Pending::Atomic(vec![(op, param.to_vec())]));
            }
        }
        Ok(())
    }

    /// Adds `delta` to the little-endian i64 at `key` (missing counts as 0), at commit.
    pub fn add(&self, key: &[u8], delta: i64) -> Result<(), StoreError> {
        self.atomic_op(key, AtomicOp::Add, &delta.to_le_bytes())
    }

    /// Stores the smaller of the current little-endian i64 and `value`, at commit.
    pub fn min(&self, key: &[u8], value: i64) -> Result<(), StoreError> {
        self.atomic_op(key, AtomicOp::Min, &value.to_le_bytes())
    }

    /// Stores the larger of the current little-endian i64 and `value`, at commit.
    pub fn max(&self, key: &[u8], value: i64) -> Result<(), StoreError> {
        self.atomic_op(key, AtomicOp::Max, &value.to_le_bytes())
    }

    /// Clears `key` at commit if its value then equals `expected`.
    pub fn compare_and_clear(&self, key: &[u8], expected: &[u8]) -> Result<(), StoreError> {
        self.atomic_op(key, AtomicOp::CompareAndClear, expected)
    }

    /// Makes the commit fail if another transaction writes into `[begin, end)` after this
    /// transaction's read version.
    pub fn add_read_conflict_range(&self, begin: &[u8], end: &[u8]) {
        if begin < end {
            self.state().read_conflicts.push(KeyRange {
                begin: begin.to_vec(),
                end: end.to_vec(),
            });
        }
    }

    /// Read conflict on a single key.
    pub fn add_read_conflict_key(&self, key: &[u8]) {
        self.state().read_conflicts.push(KeyRange::single(key));
    }

    /// Counts `[begin, end)` as written by this transaction for other transactions' conflict
    /// checks, without writing anything.
    pub fn add_write_conflict_range(&self, begin: &[u8], end: &[u8]) {
        if begin < end {
            self.state().write_conflicts.push(KeyRange {
                begin: begin.to_vec(),
                end: end.to_vec(),
            });
        }
    }

    /// Write conflict on a single key.
    pub fn add_write_conflict_key(&self, key: &[u8]) {
        self.state().write_conflicts.push(KeyRange::single(key));
    }

    /// Commits without retrying and returns the commit version. A transaction without writes
    /// or write conflict ranges commits nothing and returns its read version. After this call
    /// every clone of the transaction is finished.
    pub async fn commit(&self) -> Result<u64, StoreError> {
        let request = {
            let mut st = self.state();
            st.check_open()?;
            let taken = std::mem::take(&mut *st);
            st.done = true;
            let st = taken;
            if st.writes.is_empty() && st.cleared.is_empty() && st.write_conflicts.is_empty() {
                return Ok(self.read_version());
            }
            build_request(self.read_version(), st)
        };
        let started = Instant::now();
        let result = self.inner.driver.commit(request).await;
        let counters = &self.inner.counters;
        counters.observe_commit(started.elapsed());
        match &result {
            Ok(_) => {
                counters
                    .commits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) if e.is_retryable() => {
                counters
                    .conflicts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(_) => {}
        }
        result
    }
}

/// Turns the buffered state into a commit request. Cleared ranges go first: a key written
/// after a range clear is in `writes`, so replaying clears then writes gives the same result.
fn build_request(read_version: u64, st: State) -> CommitRequest {
    let State {
        writes,
        cleared,
        read_conflicts,
        mut write_conflicts,
        ..
    } = st;
    let mut mutations = Vec::with_capacity(writes.len() + cleared.len());
    write_conflicts.reserve(writes.len() + cleared.len());
    for range in cleared {
        write_conflicts.push(range.clone());
        mutations.push(Mutation::ClearRange(range));
    }
    for (key, pending) in writes {
        write_conflicts.push(KeyRange::single(&key));
        match pending {
            Pending::Value(value) => mutations.push(Mutation::Set { key, value }),
            Pending::Cleared => mutations.push(Mutation::Clear { key }),
            Pending::Atomic(ops) => {
                for (op, param) in ops {
                    mutations.push(Mutation::Atomic {
                        key: key.clone(),
                        op,
                        param,
                    });
                }
            }
        }
    }
    CommitRequest {
        read_version,
        read_conflicts,
        write_conflicts,
        mutations,
    }
}

/// The smallest key greater than `key`.
fn key_after(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    k
}

/// Merges one driver page with the transaction's writes inside `covered`, in read order.
fn merge_page(st: &State, page: Vec<KeyValue>, covered: &KeyRange, reverse: bool) -> Vec<KeyValue> {
    if st.writes.is_empty() && st.cleared.is_empty() {
        return page;
    }
    let mut local: Vec<(&Vec<u8>, &Pending)> = st
        .writes
        .range(covered.begin.clone()..covered.end.clone())
        .collect();
    if reverse {
        local.reverse();
    }
    let before = |a: &[u8], b: &[u8]| if reverse { a > b } else { a < b };
    let mut out = Vec::with_capacity(page.len() + local.len());
    let mut local = local.into_iter().peekable();
    let emit_local = |out: &mut Vec<KeyValue>, k: &Vec<u8>, p: &Pending| {
        if let Some(v) = p.resolve(None) {
            out.push((k.clone(), v));
        }
    };
    for (key, value) in page {
        while let Some((lk, lp)) = local.peek() {
            if before(lk, &key) {
                emit_local(&mut out, lk, lp);
                local.next();
            } else {
                break;
            }
        }
        match local.peek() {
            Some((lk, lp)) if **lk == key => {
                if let Some(v) = lp.resolve(Some(&value)) {
                    out.push((key, v));
                }
                local.next();
            }
            _ if st.in_cleared(&key) => {}
            _ => out.push((key, value)),
        }
    }
    for (lk, lp) in local {
        emit_local(&mut out, lk, lp);
    }
    out
}
