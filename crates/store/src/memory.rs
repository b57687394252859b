//! The in-memory driver: multi-version ordered map with the same optimistic concurrency as the
//! file_system driver. For tests and demos; nothing is persisted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::conflict::{BaseState, ConflictLog, Overlay};
use crate::driver::{BoxFuture, CommitRequest, Driver, KeyRange, KeyValue, RangeRequest, ReadView};
use crate::error::StoreError;

/// Versions of one key, oldest first; `None` is a deletion.
type Chain = Vec<(u64, Option<Arc<[u8]>>)>;

struct State {
    data: BTreeMap<Vec<u8>, Chain>,
    version: u64,
    log: ConflictLog,
    /// Read versions of open views, with counts; versions older than the oldest are pruned.
    readers: BTreeMap<u64, usize>,
    closed: bool,
}

impl State {
    fn oldest_reader(&self) -> u64 {
        self.readers.keys().next().copied().unwrap_or(self.version)
    }
}

fn visible(chain: &Chain, version: u64) -> Option<&Arc<[u8]>> {
    chain
        .iter()
        .rev()
        .find(|(v, _)| *v <= version)
        .and_then(|(_, value)| value.as_ref())
}

/// The in-memory driver.
pub struct MemoryDriver {
    state: Arc<Mutex<State>>,
}

impl Default for MemoryDriver {
    fn default() -> Self {
        Self::new()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryDriver {
    /// An empty database at version 0.
    pub fn new() -> Self {
        MemoryDriver {
            state: Arc::new(Mutex::new(State {
                data: BTreeMap::new(),
                version: 0,
                log: ConflictLog::new(0),
                readers: BTreeMap::new(),
                closed: false,
            })),
        }
    }

    fn commit_now(&self, request: CommitRequest) -> Result<u64, StoreError> {
        let mut st = lock(&self.state);
        if st.closed {
            return Err(StoreError::Closed);
        }
        let now = Instant::now();
        let horizon = st.oldest_reader();
        st.log.prune_with_readers(now, horizon);
        st.log
            .check(request.read_version, &request.read_conflicts)?;
        let version = st.version + 1;
        let mut overlay = Overlay::default();
        overlay.apply(request.mutations, &mut Latest(&st.data))?;
        for (key, value) in overlay.keys {
            let chain = st.data.entry(key.clone()).or_default();
            chain.push((version, value.map(Arc::from)));
            // Keep the newest version every open reader can see, and everything newer.
            let keep_from = chain.iter().rposition(|(v, _)| *v <= horizon).unwrap_or(0);
            chain.drain(..keep_from);
            if chain.len() == 1 && chain[0].1.is_none() && chain[0].0 <= horizon {
                st.data.remove(&key);
            }
        }
        st.version = version;
        st.log.record(version, request.write_conflicts, now);
        Ok(version)
    }
}

/// The newest committed state, for atomic operations and range clears at commit.
struct Latest<'a>(&'a BTreeMap<Vec<u8>, Chain>);

impl BaseState for Latest<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .0
            .get(key)
            .and_then(|c| c.last())
            .and_then(|(_, v)| v.as_ref())
            .map(|v| v.to_vec()))
    }

    fn keys_in(&mut self, range: &KeyRange) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .0
            .range(range.begin.clone()..range.end.clone())
            .filter(|(_, c)| c.last().is_some_and(|(_, v)| v.is_some()))
            .map(|(k, _)| k.clone())
            .collect())
    }
}

struct MemoryView {
    state: Arc<Mutex<State>>,
    version: u64,
}

impl Drop for MemoryView {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        if let Some(n) = st.readers.get_mut(&self.version) {
            *n -= 1;
            if *n == 0 {
                st.readers.remove(&self.version);
            }
        }
    }
}

impl ReadView for MemoryView {
    fn read_version(&self) -> u64 {
        self.version
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let st = lock(&self.state);
        let result = if st.closed {
            Err(StoreError::Closed)
        } else {
            Ok(st
                .data
                .get(key)
                .and_then(|c| visible(c, self.version))
                .map(|v| v.to_vec()))
        };
        Box::pin(std::future::ready(result))
    }

    fn get_range<'a>(
        &'a self,
        request: &'a RangeRequest,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StoreError>> {
        let st = lock(&self.state);
        let result = if st.closed {
            Err(StoreError::Closed)
        } else if request.range.begin >= request.range.end {
            Ok(Vec::new())
        } else {
            let limit = request.limit.unwrap_or(usize::MAX);
            let range = st
                .data
                .range(request.range.begin.clone()..request.range.end.clone());
            let pick = |(k, c): (&Vec<u8>, &Chain)| {
                visible(c, self.version).map(|v| (k.clone(), v.to_vec()))
            };
            Ok(if request.reverse {
                range.rev().filter_map(pick).take(limit).collect()
            } else {
                range.filter_map(pick).take(limit).collect()
            })
        };
        Box::pin(std::future::ready(result))
    }
}

impl Driver for MemoryDriver {
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn ReadView>, StoreError>> {
        let mut st = lock(&self.state);
        let result: Result<Box<dyn ReadView>, StoreError> = if st.closed {
            Err(StoreError::Closed)
        } else {
            let version = st.version;
            *st.readers.entry(version).or_insert(0) += 1;
            Ok(Box::new(MemoryView {
                state: self.state.clone(),
                version,
            }))
        };
        Box::pin(std::future::ready(result))
    }

    fn commit(&self, request: CommitRequest) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(std::future::ready(self.commit_now(request)))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut st = lock(&self.state);
        st.closed = true;
        st.data.clear();
        Box::pin(std::future::ready(Ok(())))
    }
}
