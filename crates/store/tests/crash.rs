//! Crash test for the file_system driver: a child process commits transactions and prints each
//! acknowledged commit; the parent kills it with SIGKILL mid-stream, reopens the directory and
//! checks that every acknowledged commit is there.
//!
//! The child is this same test binary, re-run with an environment variable that turns the
//! `crash_child` test into the writer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rivet_store::{Db, RangeOptions, StoreConfig, StoreError};

const DIR_VAR: &str = "RIVET_STORE_CRASH_DIR";
const SYNC_VAR: &str = "RIVET_STORE_CRASH_SYNC";
const WRITERS: u32 = 8;

fn key(writer: u32, seq: u64) -> Vec<u8> {
    format!("w/{writer:02}/{seq:010}").into_bytes()
}

fn value(writer: u32, seq: u64) -> Vec<u8> {
    // Big enough that a batch spans several journal blocks.
    format!("{writer}:{seq}:").repeat(40).into_bytes()
}

/// The writer: runs only when re-executed by `run_crash` (the variable is unset otherwise).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let sync = std::env::var(SYNC_VAR).as_deref() == Ok("1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let db = Db::open(StoreConfig::FileSystem {
            path: dir.into(),
            sync,
        })
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for seq in 0u64.. {
                    let ((), version) = db
                        .txn_versioned(|tx| async move {
                            tx.set(&key(writer, seq), &value(writer, seq))?;
                            tx.add(b"count", 1)?;
                            Ok::<_, StoreError>(())
                        })
                        .await
                        .unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {writer} {seq} {version}").unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn run_crash(sync: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir.path())
        .env(SYNC_VAR, if sync { "1" } else { "0" })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked: HashMap<u32, u64> = HashMap::new();
    let mut max_version = 0u64;
    let mut acks = 0u64;
    let mut record = |line: &str, acked: &mut HashMap<u32, u64>| {
        let mut parts = line.split_whitespace();
        if parts.next() != Some("ACK") {
            return false;
        }
        let writer: u32 = parts.next().unwrap().parse().unwrap();
        let seq: u64 = parts.next().unwrap().parse().unwrap();
        let version: u64 = parts.next().unwrap().parse().unwrap();
        let e = acked.entry(writer).or_insert(0);
        *e = (*e).max(seq + 1);
        max_version = max_version.max(version);
        acks += 1;
        true
    };
    // Let it run for a while, then kill it in the middle of the stream.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while seen < 3000 {
        assert!(Instant::now() < deadline, "child produced only {seen} acks");
        let line = lines
            .next()
            .expect("child exited early")
            .expect("reading child stdout");
        if record(&line, &mut acked) {
            seen += 1;
        }
    }
    child.kill().unwrap(); // SIGKILL
                           // Acks already in the pipe were acknowledged before the kill: they count too.
    for line in lines {
        let Ok(line) = line else { break };
        record(&line, &mut acked);
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "child must have been killed");
    assert!(acks >= 3000);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let db = Db::open(StoreConfig::FileSystem {
            path: dir.path().to_path_buf(),
            sync,
        })
        .await
        .unwrap();
        let tx = db.begin().await.unwrap();
        assert!(
            tx.read_version() >= max_version,
            "recovered version {} < acknowledged {max_version}",
            tx.read_version()
        );
        for (&writer, &count) in &acked {
            for seq in 0..count {
                let got = tx.get(&key(writer, seq)).await.unwrap();
                assert_eq!(
                    got,
                    Some(value(writer, seq)),
                    "acknowledged commit {writer}/{seq} lost"
                );
            }
        }
        // Atomicity: the counter matches the keys present, acknowledged or not.
        let present = tx
            .get_range(b"w/", b"w0", RangeOptions::new())
            .await
            .unwrap()
            .len() as i64;
        let count =
            i64::from_le_bytes(tx.get(b"count").await.unwrap().unwrap().try_into().unwrap());
        assert_eq!(present, count);
        assert!(present as u64 >= acks);
        drop(tx);
        // The store keeps working after recovery.
        db.txn(|tx| async move { tx.set(b"after", b"crash") })
            .await
            .unwrap();
        db.close().await.unwrap();
    });
}

#[test]
fn acknowledged_commits_survive_sigkill_sync_on() {
    if std::env::var(DIR_VAR).is_ok() {
        return;
    }
    run_crash(true);
}

#[test]
fn acknowledged_commits_survive_sigkill_sync_off() {
    if std::env::var(DIR_VAR).is_ok() {
        return;
    }
    run_crash(false);
}
