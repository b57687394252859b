//! The file_system driver: fjall underneath, our optimistic concurrency and group commit on top.
//!
//! One committer thread owns every write. It takes all commit requests waiting in its queue,
//! checks each against the log of recently committed write ranges (earlier requests of the same
//! group are in that log too), folds the accepted ones into one fjall batch together with the new
//! commit version, writes and syncs the journal once, and only then answers every request of the
//! group. fjall makes a batch visible to snapshots after its journal write (and sync), so readers
//! never see a commit that is not durable yet.
//!
//! Reads run on the caller's task against a fjall snapshot; they are memory or page-cache reads
//! in the common case, so they are not moved to a blocking thread.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use tokio::sync::oneshot;

use crate::conflict::{BaseState, ConflictLog, Overlay, Readers};
use crate::driver::{BoxFuture, CommitRequest, Driver, KeyRange, KeyValue, RangeRequest, ReadView};
use crate::error::StoreError;

/// Name of the lock file that keeps a second process out of the data directory.
pub const LOCK_FILE: &str = "rivet-store.lock";
const DATA_KEYSPACE: &str = "data";
const META_KEYSPACE: &str = "meta";
const VERSION_KEY: &[u8] = b"commit_version";
/// Most requests folded into one batch; bounds the latency one group adds to the next.
const MAX_GROUP: usize = 1024;

type Reply = oneshot::Sender<Result<u64, StoreError>>;

enum Message {
    Commit(CommitRequest, Reply),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

struct Handles {
    db: Database,
    data: Keyspace,
}

/// The fjall-backed driver. Open it through `Db::open(StoreConfig::FileSystem { .. })`.
pub struct FsDriver {
    handles: std::sync::RwLock<Option<Arc<Handles>>>,
    published: Arc<AtomicU64>,
    readers: Arc<Readers>,
    failed: Arc<AtomicBool>,
    groups: Arc<AtomicU64>,
    queue: mpsc::Sender<Message>,
    committer: Mutex<Option<JoinHandle<()>>>,
    lock_file: Mutex<Option<File>>,
    path: PathBuf,
}

/// Takes the data-directory lock: an advisory `flock` that the OS drops with the process.
// fjall 3 already needs Rust 1.90, so `File::try_lock` (1.89) is within reach.
#[allow(clippy::incompatible_msrv)]
fn lock_dir(path: &Path) -> Result<File, StoreError> {
    let lock_path = path.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::io(format!("opening {}", lock_path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(
            format!("locking {}", lock_path.display()),
            e,
        )),
    }
}

fn engine(context: &'static str) -> impl Fn(fjall::Error) -> StoreError {
    move |e| StoreError::engine(context, e)
}

/// Block cache size.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// One memtable's size before it is sealed and flushed.
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

impl FsDriver {
    /// Opens (or creates) the data directory; blocking (runs journal recovery).
    pub fn open(path: &Path, sync: bool) -> Result<FsDriver, StoreError> {
        std::fs::create_dir_all(path)
            .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
        let lock_file = lock_dir(path)?;
        // Resident memory is mostly the block cache plus memtables not yet flushed; fjall's
        // 64 MiB memtables would dominate a small engine's footprint.
        let db = Database::builder(path.join("fjall"))
            .manual_journal_persist(true)
            .cache_size(CACHE_BYTES)
            .open()
            .map_err(engine("opening the database"))?;
        let data = db
            .keyspace(DATA_KEYSPACE, || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(engine("opening the data keyspace"))?;
        let meta = db
            .keyspace(META_KEYSPACE, KeyspaceCreateOptions::default)
            .map_err(engine("opening the meta keyspace"))?;
        let version = match meta
            .get(VERSION_KEY)
            .map_err(engine("reading the commit version"))?
        {
            None => 0,
            Some(bytes) => {
                let raw: [u8; 8] = bytes.as_ref().try_into().map_err(|_| {
                    StoreError::Corrupt(format!("commit version has {} bytes", bytes.len()))
                })?;
                u64::from_be_bytes(raw)
            }
        };
        tracing::info!(path = %path.display(), version, sync, "file_system store opened");

        let published = Arc::new(AtomicU64::new(version));
        let readers = Arc::new(Readers::default());
        let failed = Arc::new(AtomicBool::new(false));
        let groups = Arc::new(AtomicU64::new(0));
        let (queue, inbox) = mpsc::channel();
        let committer = Committer {
            db: db.clone(),
            data: data.clone(),
            meta,
            mode: if sync {
                PersistMode::SyncAll
            } else {
                PersistMode::Buffer
            },
            version,
            log: ConflictLog::new(version),
            published: published.clone(),
            readers: readers.clone(),
            failed: failed.clone(),
            groups: groups.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("rivet-store-commit".into())
            .spawn(move || committer.run(inbox))
            .map_err(|e| StoreError::io("starting the commit thread", e))?;
        Ok(FsDriver {
            handles: std::sync::RwLock::new(Some(Arc::new(Handles { db, data }))),
            published,
            readers,
            failed,
            groups,
            queue,
            committer: Mutex::new(Some(thread)),
            lock_file: Mutex::new(Some(lock_file)),
            path: path.to_path_buf(),
        })
    }

    /// How many commit groups (journal writes, each synced when `sync` is on) were written
    /// since open; fewer than the commits when group commit folds concurrent commits together.
    pub fn commit_groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    fn handles(&self) -> Result<Arc<Handles>, StoreError> {
        self.handles
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Closed)
    }
}

struct Committer {
    db: Database,
    data: Keyspace,
    meta: Keyspace,
    mode: PersistMode,
    version: u64,
    log: ConflictLog,
    published: Arc<AtomicU64>,
    readers: Arc<Readers>,
    failed: Arc<AtomicBool>,
    groups: Arc<AtomicU64>,
}

/// The newest committed state (only the committer writes, so "latest" is stable during a group).
struct Latest<'a>(&'a Keyspace);

impl BaseState for Latest<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .0
            .get(key)
            .map_err(engine("reading for an atomic operation"))?
            .map(|v| v.to_vec()))
    }

    fn keys_in(&mut self, range: &KeyRange) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys = Vec::new();
        for guard in self.0.range(range.begin.as_slice()..range.end.as_slice()) {
            let key = guard.key().map_err(engine("listing a cleared range"))?;
            keys.push(key.to_vec());
        }
        Ok(keys)
    }
}

impl Committer {
    fn run(mut self, inbox: mpsc::Receiver<Message>) {
        let mut group: Vec<(CommitRequest, Reply)> = Vec::with_capacity(MAX_GROUP);
        let mut results: Vec<Result<u64, StoreError>> = Vec::with_capacity(MAX_GROUP);
        let mut close: Option<oneshot::Sender<Result<(), StoreError>>> = None;
        while close.is_none() {
            let Ok(first) = inbox.recv() else { break };
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Commit(request, reply) => group.push((request, reply)),
                    Message::Close(reply) => {
                        close = Some(reply);
                        break;
                    }
                }
                if group.len() < MAX_GROUP {
                    next = inbox.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit_group(&mut group, &mut results);
            }
        }
        let flushed = self
            .db
            .persist(PersistMode::SyncAll)
            .map_err(engine("flushing the journal at close"));
        // Anything that raced with close is refused rather than silently dropped.
        while let Ok(message) = inbox.try_recv() {
            match message {
                Message::Commit(_, reply) => {
                    let _ = reply.send(Err(StoreError::Closed));
                }
                Message::Close(reply) => {
                    let _ = reply.send(Ok(()));
                }
            }
        }
        drop(inbox);
        if let Some(reply) = close {
            let _ = reply.send(flushed);
        }
    }

    fn commit_group(
        &mut self,
        group: &mut Vec<(CommitRequest, Reply)>,
        results: &mut Vec<Result<u64, StoreError>>,
    ) {
        results.clear();
        if self.failed.load(Ordering::Acquire) {
            for (_, reply) in group.drain(..) {
                let _ = reply.send(Err(StoreError::engine(
                    "committing",
                    "an earlier journal write failed; reopen the store",
                )));
            }
            return;
        }
        let now = Instant::now();
        let oldest = self
            .readers
            .oldest(|| self.published.load(Ordering::Acquire));
        self.log.prune_with_readers(now, oldest);
        let mut overlay = Overlay::default();
        let mut version = self.version;
        let mut failure: Option<StoreError> = None;
        for (request, _) in group.iter_mut() {
            if failure.is_some() {
                break;
            }
            if let Err(e) = self
                .log
                .check(request.read_version, &request.read_conflicts)
            {
                results.push(Err(e));
                continue;
            }
            let mutations = std::mem::take(&mut request.mutations);
            if let Err(e) = overlay.apply(mutations, &mut Latest(&self.data)) {
                failure = Some(e);
                break;
            }
            version += 1;
            self.log
                .record(version, std::mem::take(&mut request.write_conflicts), now);
            results.push(Ok(version));
        }
        if failure.is_none() && version > self.version {
            let mut batch = self.db.batch().durability(Some(self.mode));
            for (key, value) in std::mem::take(&mut overlay.keys) {
                match value {
                    Some(value) => batch.insert(&self.data, key, value),
                    None => batch.remove(&self.data, key),
                }
            }
            batch.insert(&self.meta, VERSION_KEY, version.to_be_bytes());
            match batch.commit() {
                Ok(()) => {
                    self.groups.fetch_add(1, Ordering::Relaxed);
                    self.version = version;
                    self.published.store(version, Ordering::Release);
                }
                Err(e) => failure = Some(StoreError::engine("writing a commit batch", e)),
            }
        }
        if let Some(e) = failure {
            // The log may now name versions that never committed and fjall poisons itself
            // after a journal error: refuse everything from here on.
            tracing::error!(error = %e, "file_system commit failed; store is now read-only");
            self.failed.store(true, Ordering::Release);
            let message = e.to_string();
            for (_, reply) in group.drain(..) {
                let _ = reply.send(Err(StoreError::engine("committing", &message)));
            }
            return;
        }
        for ((_, reply), result) in group.drain(..).zip(results.drain(..)) {
            let _ = reply.send(result);
        }
    }
}

struct FsView {
    snapshot: fjall::Snapshot,
    data: Keyspace,
    version: u64,
    readers: Arc<Readers>,
}

impl Drop for FsView {
    fn drop(&mut self) {
        self.readers.unregister(self.version);
    }
}

impl FsView {
    fn range_now(&self, request: &RangeRequest) -> Result<Vec<KeyValue>, StoreError> {
        let range = &request.range;
        if range.begin >= range.end {
            return Ok(Vec::new());
        }
        let limit = request.limit.unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(limit.min(1024));
        let iter = self
            .snapshot
            .range(&self.data, range.begin.as_slice()..range.end.as_slice());
        let mut push = |guard: fjall::Guard| -> Result<bool, StoreError> {
            let (k, v) = guard.into_inner().map_err(engine("reading a range"))?;
            out.push((k.to_vec(), v.to_vec()));
            Ok(out.len() < limit)
        };
        if limit > 0 {
            if request.reverse {
                for guard in iter.rev() {
                    if !push(guard)? {
                        break;
                    }
                }
            } else {
                for guard in iter {
                    if !push(guard)? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}

impl ReadView for FsView {
    fn read_version(&self) -> u64 {
        self.version
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let result = self
            .snapshot
            .get(&self.data, key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(engine("reading a key"));
        Box::pin(std::future::ready(result))
    }

    fn get_range<'a>(
        &'a self,
        request: &'a RangeRequest,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StoreError>> {
        Box::pin(std::future::ready(self.range_now(request)))
    }
}

impl Driver for FsDriver {
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn ReadView>, StoreError>> {
        let result = self.handles().map(|h| {
            // Load the version before taking the snapshot: the snapshot then holds at least
            // that version (possibly a newer group, which only makes conflict checks stricter).
            let version = self
                .readers
                .register(|| self.published.load(Ordering::Acquire));
            let snapshot = h.db.snapshot();
            Box::new(FsView {
                snapshot,
                data: h.data.clone(),
                version,
                readers: self.readers.clone(),
            }) as Box<dyn ReadView>
        });
        Box::pin(std::future::ready(result))
    }

    fn commit(&self, request: CommitRequest) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            if self.failed.load(Ordering::Acquire) {
                return Err(StoreError::engine(
                    "committing",
                    "an earlier journal write failed; reopen the store",
                ));
            }
            let (reply, answer) = oneshot::channel();
            self.queue
                .send(Message::Commit(request, reply))
                .map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let flushed = if self.queue.send(Message::Close(reply)).is_ok() {
                answer.await.unwrap_or(Ok(()))
            } else {
                Ok(())
            };
            let thread = self
                .committer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            self.handles
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(thread) = thread {
                // Joining drops the committer's fjall handles; fjall stops its workers on the
                // last drop, which may wait on a running flush.
                let joined = tokio::task::spawn_blocking(move || thread.join()).await;
                if !matches!(joined, Ok(Ok(()))) {
                    tracing::error!("file_system commit thread ended abnormally");
                }
            }
            self.lock_file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            tracing::info!(path = %self.path.display(), "file_system store closed");
            flushed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Db;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_share_journal_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let driver = Arc::new(FsDriver::open(dir.path(), true).unwrap());
        let db = Db::from_driver(driver.clone());
        let mut tasks = Vec::new();
        for t in 0..64u32 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..20u32 {
                    db.txn(|tx| async move { tx.set(format!("{t}/{i}").as_bytes(), b"x") })
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let commits = db.stats().commits;
        let groups = driver.commit_groups();
        assert_eq!(commits, 64 * 20);
        assert!(
            groups * 2 <= commits,
            "{groups} journal syncs for {commits} commits: group commit is not grouping"
        );
        db.close().await.unwrap();
    }
}
