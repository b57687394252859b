//! Pieces shared by the embedded drivers (memory and file_system): the log of recently committed
//! write ranges that optimistic concurrency checks against, atomic-operation arithmetic, and the
//! overlay that turns a commit group's mutations into final key states.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::driver::{AtomicOp, KeyRange, Mutation};
use crate::error::StoreError;

/// How long committed write ranges stay checkable; a transaction whose read version is older
/// than the retained history fails with `TransactionTooOld` and is retried.
pub(crate) const CONFLICT_WINDOW: Duration = Duration::from_secs(10);

/// Upper bound on retained commits, so a burst of writes cannot grow the log without limit.
const MAX_ENTRIES: usize = 2_000_000;

struct Entry {
    version: u64,
    at: Instant,
    /// Sorted by `begin`, non-overlapping, so ends are sorted too.
    ranges: Vec<KeyRange>,
}

/// The write ranges of recent commits, ordered by commit version.
pub(crate) struct ConflictLog {
    entries: VecDeque<Entry>,
    /// Read versions below this can no longer be checked.
    floor: u64,
}

impl ConflictLog {
    /// An empty log; transactions reading at `version` or later can be checked.
    pub(crate) fn new(version: u64) -> Self {
        ConflictLog {
            entries: VecDeque::new(),
            floor: version,
        }
    }

    /// Fails with `Conflict` when a read range intersects a write committed after `read_version`.
    pub(crate) fn check(&self, read_version: u64, reads: &[KeyRange]) -> Result<(), StoreError> {
        if reads.is_empty() {
            return Ok(());
        }
        if read_version < self.floor {
            return Err(StoreError::TransactionTooOld);
        }
        let start = self.entries.partition_point(|e| e.version <= read_version);
        for entry in self.entries.range(start..) {
            for read in reads {
                let i = entry.ranges.partition_point(|w| w.end <= read.begin);
                if let Some(w) = entry.ranges.get(i) {
                    if w.begin < read.end {
                        return Err(StoreError::Conflict);
                    }
                }
            }
        }
        Ok(())
    }

    /// Records the writes of the commit at `version` (versions must increase).
    pub(crate) fn record(&mut self, version: u64, mut ranges: Vec<KeyRange>, now: Instant) {
        normalize(&mut ranges);
        if ranges.is_empty() {
            return;
        }
        self.entries.push_back(Entry {
            version,
            at: now,
            ranges,
        });
    }

    /// Forgets commits no open transaction can conflict with (at or below `oldest_reader`, the
    /// oldest read version in use) and, to bound memory, commits older than the conflict
    /// window.
    pub(crate) fn prune_with_readers(&mut self, now: Instant, oldest_reader: u64) {
        while let Some(front) = self.entries.front() {
            let unneeded = front.version <= oldest_reader;
            let expired = now.duration_since(front.at) > CONFLICT_WINDOW;
            if !unneeded && !expired && self.entries.len() <= MAX_ENTRIES {
                break;
            }
            self.floor = front.version;
            self.entries.pop_front();
        }
    }
}

impl ConflictLog {
    /// Forgets commits older than the conflict window (for drivers that do not track readers).
    pub(crate) fn prune(&mut self, now: Instant) {
        self.prune_with_readers(now, 0);
    }
}

/// The read versions of open transactions, so the conflict log keeps exactly the history they
/// may conflict with.
#[derive(Default)]
pub(crate) struct Readers {
    open: Mutex<BTreeMap<u64, usize>>,
}

impl Readers {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, usize>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a reader at the version `current` returns, read under the registry's lock so
    /// a concurrent prune cannot pass it.
    pub(crate) fn register(&self, current: impl FnOnce() -> u64) -> u64 {
        let mut open = self.lock();
        let version = current();
        *open.entry(version).or_insert(0) += 1;
        version
    }

    /// Forgets one reader at `version`.
    pub(crate) fn unregister(&self, version: u64) {
        let mut open = self.lock();
        if let Some(n) = open.get_mut(&version) {
            *n -= 1;
            if *n == 0 {
                open.remove(&version);
            }
        }
    }

    /// The oldest registered read version, or `current` (read under the lock) when none.
    pub(crate) fn oldest(&self, current: impl FnOnce() -> u64) -> u64 {
        let open = self.lock();
        open.keys().next().copied().unwrap_or_else(current)
    }
}

/// Sorts ranges and merges overlapping or touching ones.
fn normalize(ranges: &mut Vec<KeyRange>) {
    ranges.retain(|r| r.begin < r.end);
    if ranges.len() <= 1 {
        return;
    }
    ranges.sort_unstable_by(|a, b| a.begin.cmp(&b.begin));
    let mut out: Vec<KeyRange> = Vec::with_capacity(ranges.len());
    for r in ranges.drain(..) {
        match out.last_mut() {
            Some(last) if r.begin <= last.end => {
                if r.end > last.end {
                    last.end = r.end;
                }
            }
            _ => out.push(r),
        }
    }
    *ranges = out;
}

/// Reads an i64 the way atomic operations see it: little-endian, zero-extended when shorter
/// than 8 bytes, truncated when longer.
fn as_i64(bytes: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    i64::from_le_bytes(buf)
}

/// Applies one atomic operation to the current value; `None` means the key is (or becomes) absent.
pub(crate) fn apply_atomic(op: AtomicOp, current: Option<&[u8]>, param: &[u8]) -> Option<Vec<u8>> {
    let p = as_i64(param);
    match op {
        AtomicOp::Add => {
            let c = current.map_or(0, as_i64);
            Some(c.wrapping_add(p).to_le_bytes().to_vec())
        }
        AtomicOp::Min => {
            let v = current.map_or(p, |c| as_i64(c).min(p));
            Some(v.to_le_bytes().to_vec())
        }
        AtomicOp::Max => {
            let v = current.map_or(p, |c| as_i64(c).max(p));
            Some(v.to_le_bytes().to_vec())
        }
        AtomicOp::CompareAndClear => match current {
            Some(c) if c == param => None,
            other => other.map(<[u8]>::to_vec),
        },
    }
}

/// Read access to the committed state a commit group builds on.
pub(crate) trait BaseState {
    /// The committed value of `key`.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every committed key in `range`, in order.
    fn keys_in(&mut self, range: &KeyRange) -> Result<Vec<Vec<u8>>, StoreError>;
}

/// The final state of every key a commit group touches: `Some(value)` or `None` (deleted).
#[derive(Default)]
pub(crate) struct Overlay {
    pub(crate) keys: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Overlay {
    /// Applies one transaction's mutations on top of the base state and earlier transactions of
    /// the group.
    pub(crate) fn apply(
        &mut self,
        mutations: Vec<Mutation>,
        base: &mut dyn BaseState,
    ) -> Result<(), StoreError> {
        for m in mutations {
            match m {
                Mutation::Set { key, value } => {
                    self.keys.insert(key, Some(value));
                }
                Mutation::Clear { key } => {
                    self.keys.insert(key, None);
                }
                Mutation::ClearRange(range) => {
                    if range.begin >= range.end {
                        continue;
                    }
                    for (_, v) in self.keys.range_mut(range.begin.clone()..range.end.clone()) {
                        *v = None;
                    }
                    for key in base.keys_in(&range)? {
                        self.keys.insert(key, None);
                    }
                }
                Mutation::Atomic { key, op, param } => {
                    let result = match self.keys.get(&key) {
                        Some(current) => apply_atomic(op, current.as_deref(), &param),
                        None => apply_atomic(op, base.get(&key)?.as_deref(), &param),
                    };
                    self.keys.insert(key, result);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(b: &[u8], e: &[u8]) -> KeyRange {
        KeyRange {
            begin: b.to_vec(),
            end: e.to_vec(),
        }
    }

    #[test]
    fn detects_conflicts_after_read_version_only() {
        let now = Instant::now();
        let mut log = ConflictLog::new(0);
        log.record(1, vec![r(b"a", b"c"), r(b"x", b"y")], now);
        log.record(2, vec![KeyRange::single(b"m")], now);
        assert!(log.check(0, &[r(b"b", b"b\0")]).is_err());
        assert!(log.check(1, &[r(b"b", b"b\0")]).is_ok());
        assert!(log.check(1, &[r(b"l", b"n")]).is_err());
        assert!(log.check(0, &[r(b"c", b"m")]).is_ok());
        assert!(log.check(0, &[r(b"d", b"e"), r(b"x\0", b"x\x01")]).is_err());
        assert!(log.check(2, &[r(b"a", b"z")]).is_ok());
    }

    #[test]
    fn pruned_history_is_too_old() {
        let start = Instant::now();
        let mut log = ConflictLog::new(0);
        log.record(1, vec![KeyRange::single(b"a")], start);
        log.record(2, vec![KeyRange::single(b"b")], start + CONFLICT_WINDOW);
        log.prune(start + CONFLICT_WINDOW + Duration::from_millis(1));
        assert!(matches!(
            log.check(0, &[KeyRange::single(b"z")]),
            Err(StoreError::TransactionTooOld)
        ));
        assert!(log.check(1, &[KeyRange::single(b"b")]).is_err());
        assert!(log.check(1, &[KeyRange::single(b"a")]).is_ok());
    }

    #[test]
    fn history_below_the_oldest_reader_is_dropped() {
        let now = Instant::now();
        let mut log = ConflictLog::new(0);
        for v in 1..=5 {
            log.record(v, vec![KeyRange::single(b"k")], now);
        }
        log.prune_with_readers(now, 3);
        assert_eq!(log.entries.len(), 2);
        assert!(log.check(3, &[KeyRange::single(b"k")]).is_err());
        assert!(matches!(
            log.check(2, &[KeyRange::single(b"k")]),
            Err(StoreError::TransactionTooOld)
        ));
        let readers = Readers::default();
        assert_eq!(readers.oldest(|| 9), 9);
        let a = readers.register(|| 4);
        let b = readers.register(|| 6);
        assert_eq!(readers.oldest(|| 9), 4);
        readers.unregister(a);
        assert_eq!(readers.oldest(|| 9), 6);
        readers.unregister(b);
        assert_eq!(readers.oldest(|| 9), 9);
    }

    #[test]
    fn normalize_merges() {
        let mut v = vec![r(b"c", b"d"), r(b"a", b"b"), r(b"b", b"c"), r(b"z", b"a")];
        normalize(&mut v);
        assert_eq!(v, vec![r(b"a", b"d")]);
    }

    #[test]
    fn atomic_arithmetic() {
        let five = 5i64.to_le_bytes();
        let m2 = (-2i64).to_le_bytes();
        assert_eq!(
            apply_atomic(AtomicOp::Add, None, &five),
            Some(five.to_vec())
        );
        assert_eq!(
            apply_atomic(AtomicOp::Add, Some(&five), &m2),
            Some(3i64.to_le_bytes().to_vec())
        );
        assert_eq!(
            apply_atomic(AtomicOp::Min, Some(&five), &m2),
            Some(m2.to_vec())
        );
        assert_eq!(
            apply_atomic(AtomicOp::Max, Some(&five), &m2),
            Some(five.to_vec())
        );
        assert_eq!(apply_atomic(AtomicOp::Max, None, &m2), Some(m2.to_vec()));
        assert_eq!(
            apply_atomic(AtomicOp::CompareAndClear, Some(b"x"), b"x"),
            None
        );
        assert_eq!(
            apply_atomic(AtomicOp::CompareAndClear, Some(b"x"), b"y"),
            Some(b"x".to_vec())
        );
        assert_eq!(apply_atomic(AtomicOp::CompareAndClear, None, b"y"), None);
        let max = i64::MAX.to_le_bytes();
        assert_eq!(
            apply_atomic(AtomicOp::Add, Some(&max), &1i64.to_le_bytes()),
            Some(i64::MIN.to_le_bytes().to_vec())
        );
    }
}
