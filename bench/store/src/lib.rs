//! Benchmark program for rivet-store; figures are recorded in docs/benchmarks.md.
//!
//! Measures, per driver: committed single-key transactions/s with 1, 16 and 64 concurrent
//! writers, point reads/s (one read-only transaction per read), and 1,000-key range scans/s.
//! Alongside, the raw fjall rate (direct batches of 64 and single writes, synced and unsynced)
//! shows what the transaction layer costs on top of the storage engine.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fjall::{Database, KeyspaceCreateOptions, PersistMode};
use rivet_store::{Db, RangeOptions, StoreConfig, StoreError};

/// A driver configuration to benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// file_system with `sync: true`.
    FsSync,
    /// file_system with `sync: false`.
    FsNoSync,
    /// PostgreSQL (a fresh schema, dropped afterwards).
    Postgres,
    /// In memory.
    Memory,
}

impl FromStr for DriverKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fs-sync" => Ok(DriverKind::FsSync),
            "fs-nosync" => Ok(DriverKind::FsNoSync),
            "postgres" => Ok(DriverKind::Postgres),
            "memory" => Ok(DriverKind::Memory),
            other => Err(format!(
                "unknown driver {other:?} (fs-sync, fs-nosync, postgres, memory)"
            )),
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverKind::FsSync => "fs-sync",
            DriverKind::FsNoSync => "fs-nosync",
            DriverKind::Postgres => "postgres",
            DriverKind::Memory => "memory",
        })
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Drivers to measure.
    pub drivers: Vec<DriverKind>,
    /// Length of each timed phase.
    pub phase: Duration,
    /// Concurrent writer counts.
    pub writers: Vec<usize>,
    /// Keys pre-filled for the read and scan phases.
    pub prefill: u32,
    /// Measure raw fjall too.
    pub raw_fjall: bool,
    /// Only the commit phases.
    pub commits_only: bool,
    /// PostgreSQL URL for the postgres driver.
    pub pg_url: String,
}

impl Options {
    /// The full run.
    pub fn full() -> Self {
        Options {
            drivers: vec![
                DriverKind::FsSync,
                DriverKind::FsNoSync,
                DriverKind::Postgres,
                DriverKind::Memory,
            ],
            phase: Duration::from_secs(5),
            writers: vec![1, 16, 64],
            prefill: 100_000,
            raw_fjall: true,
            commits_only: false,
            pg_url: "postgres://postgres@127.0.0.1:5432/test".into(),
        }
    }

    /// A tiny run that only checks every phase still works.
    pub fn smoke() -> Self {
        Options {
            phase: Duration::from_millis(150),
            writers: vec![1, 4],
            prefill: 2_000,
            ..Options::full()
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// What ran (driver or raw fjall).
    pub target: String,
    /// The workload.
    pub workload: String,
    /// Operations per second.
    pub per_second: f64,
    /// Extra detail (mean latency, conflicts).
    pub note: String,
}

/// Errors of a benchmark run.
#[derive(Debug)]
pub struct BenchError(pub String);

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<StoreError> for BenchError {
    fn from(e: StoreError) -> Self {
        BenchError(e.to_string())
    }
}

impl From<fjall::Error> for BenchError {
    fn from(e: fjall::Error) -> Self {
        BenchError(format!("fjall: {e}"))
    }
}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        BenchError(e.to_string())
    }
}

/// Runs the benchmark, printing each row as it is measured, and returns all rows.
pub fn run(opts: &Options) -> Result<Vec<Row>, BenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for &driver in &opts.drivers {
        rt.block_on(bench_driver(driver, opts, &mut rows))?;
    }
    if opts.raw_fjall {
        raw_fjall(opts, &mut rows)?;
    }
    Ok(rows)
}

fn emit(rows: &mut Vec<Row>, row: Row) {
    println!(
        "{:<12} {:<34} {:>12.0}/s  {}",
        row.target, row.workload, row.per_second, row.note
    );
    rows.push(row);
}

struct Opened {
    db: Db,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

async fn open(driver: DriverKind, opts: &Options) -> Result<Opened, BenchError> {
    let mut dir = None;
    let mut schema = None;
    let config = match driver {
        DriverKind::FsSync | DriverKind::FsNoSync => {
            let d = tempfile::tempdir()?;
            let config = StoreConfig::FileSystem {
                path: d.path().to_path_buf(),
                sync: driver == DriverKind::FsSync,
            };
            dir = Some(d);
            config
        }
        DriverKind::Postgres => {
            let name = format!("rivet_bench_{:016x}", rand::random::<u64>());
            schema = Some(name.clone());
            StoreConfig::Postgres {
                url: opts.pg_url.clone(),
                pool_size: 16,
                schema: Some(name),
            }
        }
        DriverKind::Memory => StoreConfig::Memory,
    };
    let db = Db::open(config).await?;
    Ok(Opened {
        db,
        _dir: dir,
        schema,
    })
}

async fn drop_schema(url: &str, schema: &str) -> Result<(), BenchError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| BenchError(e.to_string()))?;
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .map_err(|e| BenchError(e.to_string()))?;
    drop(client);
    let _ = task.await;
    Ok(())
}

fn scan_key(i: u32) -> Vec<u8> {
    let mut k = b"scan/".to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// Runs `workers` loops of `op` for one phase and returns the completed operations.
async fn timed<F, Fut>(workers: usize, phase: Duration, op: F) -> Result<u64, BenchError>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), BenchError>> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (op, stop, done) = (op.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                op(w, i).await?;
                i += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, BenchError>(())
        }));
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let counted = done.load(Ordering::Relaxed);
    for t in tasks {
        t.await.map_err(|e| BenchError(e.to_string()))??;
    }
    Ok(counted)
}

async fn bench_driver(
    driver: DriverKind,
    opts: &Options,
    rows: &mut Vec<Row>,
) -> Result<(), BenchError> {
    let opened = open(driver, opts).await?;
    let db = opened.db.clone();
    let target = driver.to_string();

    for &writers in &opts.writers {
        let before = db.stats();
        let dbw = db.clone();
        let started = Instant::now();
        let n = timed(writers, opts.phase, move |w, i| {
            let db = dbw.clone();
            async move {
                let key = format!("w/{w:03}/{i:012}").into_bytes();
                db.txn(|tx| {
                    let key = key.clone();
                    async move { tx.set(&key, b"0123456789abcdef0123456789abcdef") }
                })
                .await?;
                Ok(())
            }
        })
        .await?;
        let secs = started.elapsed().as_secs_f64();
        let after = db.stats();
        let lat = &after.commit_latency;
        let commits = lat.count - before.commit_latency.count;
        let mean = (lat.sum_seconds - before.commit_latency.sum_seconds) / commits.max(1) as f64;
        emit(
            rows,
            Row {
                target: target.clone(),
                workload: format!("commit 1 key, {writers} writers"),
                per_second: n as f64 / secs,
                note: format!(
                    "mean commit {:.3} ms, conflicts {}",
                    mean * 1e3,
                    after.conflicts - before.conflicts
                ),
            },
        );
    }

    // Contention: every writer increments the same key with a read-modify-write, so all but
    // one of the transactions racing at a moment conflict and retry.
    let contenders = opts.writers.iter().copied().max().unwrap_or(1).min(16);
    let before = db.stats();
    let dbc = db.clone();
    let started = Instant::now();
    let n = timed(contenders, opts.phase, move |_, _| {
        let db = dbc.clone();
        async move {
            db.txn(|tx| async move {
                let n = tx
                    .get(b"hot")
                    .await?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                    .map_or(0, u64::from_le_bytes);
                tx.set(b"hot", &(n + 1).to_le_bytes())
            })
            .await?;
            Ok(())
        }
    })
    .await?;
    let after = db.stats();
    emit(
        rows,
        Row {
            target: target.clone(),
            workload: format!("read-modify-write 1 hot key, {contenders} writers"),
            per_second: n as f64 / started.elapsed().as_secs_f64(),
            note: format!(
                "conflicts {}, retries {}",
                after.conflicts - before.conflicts,
                after.retries - before.retries
            ),
        },
    );

    if opts.commits_only {
        db.close().await?;
        if let Some(schema) = &opened.schema {
            drop_schema(&opts.pg_url, schema).await?;
        }
        return Ok(());
    }

    // Pre-fill for reads and scans.
    let prefill = opts.prefill;
    for start in (0..prefill).step_by(5_000) {
        db.txn(move |tx| async move {
            for i in start..(start + 5_000).min(prefill) {
                tx.set(&scan_key(i), &i.to_le_bytes())?;
            }
            Ok::<_, StoreError>(())
        })
        .await?;
    }

    for readers in [1usize, 16] {
        let dbr = db.clone();
        let started = Instant::now();
        let n = timed(readers, opts.phase, move |_, _| {
            let db = dbr.clone();
            async move {
                let i = rand::random_range(0..prefill);
                let got = db
                    .txn(|tx| async move { tx.get(&scan_key(i)).await })
                    .await?;
                if got.is_none() {
                    return Err(BenchError(format!("key {i} missing")));
                }
                Ok(())
            }
        })
        .await?;
        emit(
            rows,
            Row {
                target: target.clone(),
                workload: format!("point read (1 txn each), {readers} readers"),
                per_second: n as f64 / started.elapsed().as_secs_f64(),
                note: String::new(),
            },
        );
    }

    let dbs = db.clone();
    let started = Instant::now();
    let n = timed(1, opts.phase, move |_, _| {
        let db = dbs.clone();
        async move {
            let first = rand::random_range(0..prefill.saturating_sub(1_000).max(1));
            let got = db
                .txn(|tx| async move {
                    tx.get_range(
                        &scan_key(first),
                        &scan_key(first + 1_000),
                        RangeOptions::new(),
                    )
                    .await
                })
                .await?;
            if got.len() != 1_000.min(prefill as usize) {
                return Err(BenchError(format!("scan returned {} keys", got.len())));
            }
            Ok(())
        }
    })
    .await?;
    let per_second = n as f64 / started.elapsed().as_secs_f64();
    emit(
        rows,
        Row {
            target: target.clone(),
            workload: "range scan 1,000 keys, 1 reader".into(),
            per_second,
            note: format!("{:.0} keys/s", per_second * 1_000.0),
        },
    );

    db.close().await?;
    if let Some(schema) = &opened.schema {
        drop_schema(&opts.pg_url, schema).await?;
    }
    Ok(())
}

/// Direct fjall writes, without our transaction layer, as the floor to compare with.
fn raw_fjall(opts: &Options, rows: &mut Vec<Row>) -> Result<(), BenchError> {
    let value = b"0123456789abcdef0123456789abcdef";
    for (batch, mode, label) in [
        (1usize, PersistMode::SyncAll, "single write, fsync each"),
        (1, PersistMode::Buffer, "single write, unsynced"),
        (64, PersistMode::SyncAll, "batch of 64, fsync each"),
        (64, PersistMode::Buffer, "batch of 64, unsynced"),
    ] {
        let dir = tempfile::tempdir()?;
        let db = Database::builder(dir.path())
            .manual_journal_persist(true)
            .open()?;
        let ks = db.keyspace("data", KeyspaceCreateOptions::default)?;
        let started = Instant::now();
        let mut written = 0u64;
        while started.elapsed() < opts.phase {
            let mut b = db.batch().durability(Some(mode));
            for _ in 0..batch {
                b.insert(&ks, written.to_be_bytes(), value);
                written += 1;
            }
            b.commit()?;
        }
        emit(
            rows,
            Row {
                target: "raw fjall".into(),
                workload: label.into(),
                per_second: written as f64 / started.elapsed().as_secs_f64(),
                note: "writes/s".into(),
            },
        );
    }
    Ok(())
}
