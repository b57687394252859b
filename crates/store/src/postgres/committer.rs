//! Group commit. One task per driver drains the queued commit requests into one PostgreSQL
//! transaction: it locks the commit counter row (which serializes commits across every process
//! sharing the schema), checks each request's read conflict ranges against the write ranges
//! committed after its read version (other processes' from the `rivet_commit_log` table, kept in
//! a local cache, and earlier requests of the same group), gives each accepted request the next
//! version, and applies all accepted writes with a handful of pipelined bulk statements.
//!
//! Two round trips per group: (BEGIN, lock, new log rows, values for atomic operations), then
//! (range deletes, point deletes, upserts, log rows, counter, COMMIT).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use crate::conflict::{ConflictLog, CONFLICT_WINDOW};
use crate::driver::{CommitRequest, KeyRange, Mutation};
use crate::error::StoreError;

use super::connect::{connect, error_chain};
use super::plan::{normalize, WritePlan};
use super::schema::{Sql, SHORT_KEY_MAX};
use super::{connection_error, pg_error};

/// Most requests in one group.
const MAX_GROUP_JOBS: usize = 512;
/// A group stops growing past this many bytes of keys and values.
const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;
/// How often the committer records (time, version) pairs used to trim the commit log.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// A queued commit.
pub(crate) struct CommitJob {
    pub(crate) request: CommitRequest,
    pub(crate) reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// Prepared statements of the committer's connection.
struct Conn {
    client: Client,
    lock_meta: Statement,
    fetch_log: Statement,
    fetch_values: Statement,
    delete_ranges: Statement,
    delete_keys: Statement,
    upsert: Statement,
    delete_ranges_long: Statement,
    delete_keys_long: Statement,
    upsert_long: Statement,
    insert_log: Statement,
    update_meta: Statement,
    guarded_update_meta: Statement,
    trim_log: Statement,
}

/// Committed write ranges seen so far, for conflict checks without re-reading the table.
struct LogCache {
    log: ConflictLog,
    /// Every commit at or below this version is in `log` (or older than its floor).
    seen: u64,
    /// The commit-log horizon as of `seen`: older read versions cannot be checked.
    horizon: u64,
}

/// What a group will do: each request's outcome and the writes of the accepted ones.
struct Decision<'r> {
    /// The newest version before the group.
    version: u64,
    /// The version of the group's last accepted request (`version` when none was).
    next: u64,
    horizon: u64,
    outcomes: Vec<Result<u64, StoreError>>,
    plan: WritePlan<'r>,
    /// Normalized write ranges of each accepted request, by version.
    writes: Vec<(u64, Vec<KeyRange>)>,
}

/// A failed apply; `moved` when the fast path found a newer commit than it expected.
struct ApplyError {
    error: GroupError,
    moved: bool,
}

/// Why a group failed, and whether its requests may run again.
struct GroupError {
    error: StoreError,
    /// `false` once the COMMIT may have reached the server with an unknown outcome.
    retry_safe: bool,
    /// The connection failed (rather than the server refusing a statement).
    connection_lost: bool,
}

/// The committer task's state.
pub(crate) struct Committer {
    config: tokio_postgres::Config,
    redacted: String,
    sql: Arc<Sql>,
    conn: Option<Conn>,
    cache: Option<LogCache>,
    /// Whether the last group found no commit of another process, so the next one tries the
    /// one-round-trip path.
    fast_path: bool,
    /// (when, version) pairs; the log is trimmed below versions older than the conflict window.
    samples: VecDeque<(Instant, u64)>,
}

impl Committer {
    /// Connects and prepares, so that `open` fails early on a bad database.
    pub(crate) async fn connect(
        config: tokio_postgres::Config,
        redacted: String,
        sql: Arc<Sql>,
    ) -> Result<Committer, StoreError> {
        let mut committer = Committer {
            config,
            redacted,
            sql,
            conn: None,
            cache: None,
            fast_path: false,
            samples: VecDeque::new(),
        };
        committer.conn = Some(committer.new_conn().await?);
        Ok(committer)
    }

    async fn new_conn(&self) -> Result<Conn, StoreError> {
        let client = connect(&self.config, &self.redacted).await?;
        let sql = &self.sql;
        let prep = |text: &str| {
            let client = &client;
            let text = text.to_string();
            async move {
                client
                    .prepare(&text)
                    .await
                    .map_err(|e| pg_error("preparing commit statements", &e))
            }
        };
        let (lock_meta, fetch_log, fetch_values, delete_ranges, delete_keys) = futures::try_join!(
            prep(&sql.lock_meta),
            prep(&sql.fetch_log),
            prep(&sql.fetch_values),
            prep(&sql.delete_ranges),
            prep(&sql.delete_keys),
        )?;
        let (upsert, insert_log, update_meta, guarded_update_meta, trim_log) = futures::try_join!(
            prep(&sql.upsert),
            prep(&sql.insert_log),
            prep(&sql.update_meta),
            prep(&sql.guarded_update_meta),
            prep(&sql.trim_log),
        )?;
        let (delete_ranges_long, delete_keys_long, upsert_long) = futures::try_join!(
            prep(&sql.delete_ranges_long),
            prep(&sql.delete_keys_long),
            prep(&sql.upsert_long),
        )?;
        Ok(Conn {
            client,
            lock_meta,
            fetch_log,
            fetch_values,
            delete_ranges,
            delete_keys,
            upsert,
            delete_ranges_long,
            delete_keys_long,
            upsert_long,
            insert_log,
            update_meta,
            guarded_update_meta,
            trim_log,
        })
    }

    /// Commits queued requests group by group until the queue closes and is drained.
    pub(crate) async fn run(mut self, mut queue: mpsc::UnboundedReceiver<CommitJob>) {
        while let Some(first) = queue.recv().await {
            let mut bytes = request_bytes(&first.request);
            let mut group = vec![first];
            while group.len() < MAX_GROUP_JOBS && bytes < MAX_GROUP_BYTES {
                match queue.try_recv() {
                    Ok(job) => {
                        bytes += request_bytes(&job.request);
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group).await;
        }
        tracing::debug!("postgres committer stopped");
    }

    async fn commit_group(&mut self, group: Vec<CommitJob>) {
        let (requests, replies): (Vec<CommitRequest>, Vec<_>) =
            group.into_iter().map(|j| (j.request, j.reply)).unzip();
        let mut result = self.try_group(&requests).await;
        if matches!(&result, Err(e) if e.retry_safe && e.connection_lost) {
            // Nothing was written: a connection that died since the last group (a restarted
            // server, a killed backend) gets one fresh retry before anyone sees an error.
            tracing::info!("commit connection lost before commit; retrying on a new connection");
            result = self.try_group(&requests).await;
        }
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) if e.retry_safe && !e.connection_lost && requests.len() > 1 => {
                // The server refused the group: one bad request must not fail its neighbours,
                // so run each alone.
                tracing::warn!(error = %e.error, size = requests.len(), "commit group failed; retrying its requests one by one");
                for (request, reply) in requests.into_iter().zip(replies) {
                    let outcome = match self.try_group(std::slice::from_ref(&request)).await {
                        Ok(mut o) => o.pop().unwrap_or(Err(StoreError::Closed)),
                        Err(e) => Err(e.error),
                    };
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                let msg = e.error.to_string();
                tracing::warn!(error = %msg, "commit group failed");
                let mut first = Some(e.error);
                for reply in replies {
                    let err = first
                        .take()
                        .unwrap_or_else(|| StoreError::Postgres(msg.clone()));
                    let _ = reply.send(Err(err));
                }
            }
        }
    }

    /// Runs one group in one transaction; on error the connection and the log cache are
    /// dropped (both are rebuilt on the next group).
    async fn try_group(
        &mut self,
        requests: &[CommitRequest],
    ) -> Result<Vec<Result<u64, StoreError>>, GroupError> {
        let conn = match self.conn.take() {
            Some(c) if !c.client.is_closed() => c,
            _ => self.new_conn().await.map_err(|error| GroupError {
                error,
                retry_safe: false,
                connection_lost: true,
            })?,
        };
        let result = self.run_group(&conn, requests).await;
        match &result {
            Ok(_) => self.conn = Some(conn),
            Err(_) => self.cache = None,
        }
        result
    }

    /// Commits a group: on the fast path when this process wrote the newest commit last time
    /// (no log rows to fetch, so one round trip), else on the locking path.
    async fn run_group(
        &mut self,
        conn: &Conn,
        requests: &[CommitRequest],
    ) -> Result<Vec<Result<u64, StoreError>>, GroupError> {
        let has_atomic = requests.iter().any(|r| {
            r.mutations
                .iter()
                .any(|m| matches!(m, Mutation::Atomic { .. }))
        });
        if self.fast_path && !has_atomic {
            if let Some((seen, horizon)) = self.cache.as_ref().map(|c| (c.seen, c.horizon)) {
                let now = Instant::now();
                let decision = self.decide(requests, seen, horizon, &HashMap::new(), now);
                match self.apply(conn, decision, Some(seen), now).await {
                    Err(e) if e.moved => {
                        // Another process committed since: take the lock and read its writes.
                        self.fast_path = false;
                    }
                    result => return result.map_err(|e| e.error),
                }
            }
        }
        self.locking_path(conn, requests).await
    }

    /// Round trip 1 locks the counter row and reads what other processes committed since the
    /// cache's version plus the values atomic operations build on; round trip 2 applies.
    async fn locking_path(
        &mut self,
        conn: &Conn,
        requests: &[CommitRequest],
    ) -> Result<Vec<Result<u64, StoreError>>, GroupError> {
        let client = &conn.client;
        let before_commit = |e: tokio_postgres::Error| GroupError {
            error: pg_error("starting a commit", &e),
            retry_safe: true,
            connection_lost: connection_error(&e),
        };
        let mut atomic_keys: Vec<&[u8]> = Vec::new();
        let mut atomic_long_keys: Vec<&[u8]> = Vec::new();
        let mut seen_keys: HashSet<&[u8]> = HashSet::new();
        for r in requests {
            for m in &r.mutations {
                if let Mutation::Atomic { key, .. } = m {
                    if seen_keys.insert(key) {
                        if key.len() > SHORT_KEY_MAX {
                            atomic_long_keys.push(key);
                        } else {
                            atomic_keys.push(key);
                        }
                    }
                }
            }
        }
        let since = self.cache.as_ref().map_or(0, |c| c.seen);
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        let (_, meta, log_rows, value_rows) = futures::try_join!(
            client.batch_execute("BEGIN"),
            client.query_one(&conn.lock_meta, &[]),
            async { client.query(&conn.fetch_log, &[&since]).await },
            async {
                if atomic_keys.is_empty() && atomic_long_keys.is_empty() {
                    Ok(Vec::new())
                } else {
                    client
                        .query(&conn.fetch_values, &[&atomic_keys, &atomic_long_keys])
                        .await
                }
            },
        )
        .map_err(before_commit)?;
        let corrupt = |what: &str, e: tokio_postgres::Error| GroupError {
            error: StoreError::Corrupt(format!("{what}: {e}")),
            retry_safe: true,
            connection_lost: false,
        };
        let version: i64 = meta.try_get(0).map_err(|e| corrupt("version", e))?;
        let horizon: i64 = meta.try_get(1).map_err(|e| corrupt("horizon", e))?;
        let (version, horizon) = (version.max(0) as u64, horizon.max(0) as u64);
        let mut committed: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(value_rows.len());
        for row in &value_rows {
            let key: Vec<u8> = row.try_get(0).map_err(|e| corrupt("key", e))?;
            let value: Vec<u8> = row.try_get(1).map_err(|e| corrupt("value", e))?;
            committed.insert(key, value);
        }

        let now = Instant::now();
        let cache = self.cache.get_or_insert_with(|| LogCache {
            log: ConflictLog::new(horizon),
            seen: horizon,
            horizon,
        });
        // The fast path pays off again once nobody else has committed since our last group.
        self.fast_path = cache.seen == version;
        let mut pending: Option<(u64, Vec<KeyRange>)> = None;
        for row in &log_rows {
            let v: i64 = row.try_get(0).map_err(|e| corrupt("log version", e))?;
            let v = v.max(0) as u64;
            if v <= cache.seen {
                continue;
            }
            let range = KeyRange {
                begin: row.try_get(1).map_err(|e| corrupt("log begin", e))?,
                end: row.try_get(2).map_err(|e| corrupt("log end", e))?,
            };
            match &mut pending {
                Some((pv, ranges)) if *pv == v => ranges.push(range),
                _ => {
                    if let Some((pv, ranges)) = pending.take() {
                        cache.log.record(pv, ranges, now);
                    }
                    pending = Some((v, vec![range]));
                }
            }
        }
        if let Some((pv, ranges)) = pending {
            cache.log.record(pv, ranges, now);
        }
        cache.seen = cache.seen.max(version);
        cache.horizon = cache.horizon.max(horizon);
        cache.log.prune(now);

        let decision = self.decide(requests, version, horizon, &committed, now);
        self.apply(conn, decision, None, now)
            .await
            .map_err(|e| e.error)
    }

    /// Decides each request in order against the cached log and the earlier requests of the
    /// group, and builds the writes of the accepted ones.
    fn decide<'r>(
        &self,
        requests: &'r [CommitRequest],
        version: u64,
        horizon: u64,
        committed: &HashMap<Vec<u8>, Vec<u8>>,
        now: Instant,
    ) -> Decision<'r> {
        let mut d = Decision {
            version,
            next: version,
            horizon,
            outcomes: Vec::with_capacity(requests.len()),
            plan: WritePlan::default(),
            writes: Vec::new(),
        };
        // Versions in the group are above every read version, so a log starting at 0 checks
        // requests against the accepted ones before them.
        let mut group_log = ConflictLog::new(0);
        for r in requests {
            let check = if r.read_conflicts.is_empty() {
                Ok(())
            } else if r.read_version < horizon {
                Err(StoreError::TransactionTooOld)
            } else {
                match &self.cache {
                    Some(cache) => cache.log.check(r.read_version, &r.read_conflicts),
                    None => Err(StoreError::TransactionTooOld),
                }
                .and_then(|()| group_log.check(r.read_version, &r.read_conflicts))
            };
            if let Err(e) = check {
                d.outcomes.push(Err(e));
                continue;
            }
            d.next += 1;
            let writes = normalize(&r.write_conflicts);
            group_log.record(d.next, writes.clone(), now);
            d.writes.push((d.next, writes));
            d.plan.add(&r.mutations, committed);
            d.outcomes.push(Ok(d.next));
        }
        d
    }

    /// Applies a decision and commits. `expected` selects the fast path: the transaction opens
    /// here and only commits if the counter still holds `expected` (else `moved`).
    async fn apply(
        &mut self,
        conn: &Conn,
        d: Decision<'_>,
        expected: Option<u64>,
        now: Instant,
    ) -> Result<Vec<Result<u64, StoreError>>, ApplyError> {
        let client = &conn.client;
        if d.next == d.version {
            // Nothing accepted: release the lock (the fast path holds none).
            if expected.is_none() {
                client
                    .batch_execute("ROLLBACK")
                    .await
                    .map_err(|e| ApplyError {
                        error: GroupError {
                            error: pg_error("ending a commit", &e),
                            retry_safe: true,
                            connection_lost: connection_error(&e),
                        },
                        moved: false,
                    })?;
            }
            return Ok(d.outcomes);
        }
        let new_horizon = self.trim_target(now, d.horizon);
        let params = d.plan.params();
        let mut log_versions: Vec<i64> = Vec::new();
        let mut log_begins: Vec<&[u8]> = Vec::new();
        let mut log_ends: Vec<&[u8]> = Vec::new();
        for (v, ranges) in &d.writes {
            for r in ranges {
                log_versions.push(*v as i64);
                log_begins.push(&r.begin);
                log_ends.push(&r.end);
            }
        }
        let new_version = d.next as i64;
        let horizon_param = new_horizon.unwrap_or(d.horizon) as i64;
        let expected_param = expected.map_or(0, |v| v as i64);
        let has_long = !params.upsert_long_keys.is_empty();
        // Parameter lists live here because the pipelined futures below borrow them.
        let clear_params: [&(dyn ToSql + Sync); 2] = [&params.clear_begins, &params.clear_ends];
        let delete_params: [&(dyn ToSql + Sync); 1] = [&params.delete_keys];
        let upsert_params: [&(dyn ToSql + Sync); 2] = [&params.upsert_keys, &params.upsert_values];
        let delete_long_params: [&(dyn ToSql + Sync); 1] = [&params.delete_long_keys];
        let upsert_long_params: [&(dyn ToSql + Sync); 2] =
            [&params.upsert_long_keys, &params.upsert_long_values];
        let log_params: [&(dyn ToSql + Sync); 3] = [&log_versions, &log_begins, &log_ends];
        let trim_params: [&(dyn ToSql + Sync); 1] = [&horizon_param];
        // Sent in this order in one flight (each future sends on its first poll).
        let result = futures::try_join!(
            async {
                match expected {
                    Some(_) => client.batch_execute("BEGIN").await.map(|()| 0),
                    None => Ok(0),
                }
            },
            async {
                match expected {
                    Some(_) => {
                        client
                            .execute(
                                &conn.guarded_update_meta,
                                &[&expected_param, &new_version, &horizon_param, &has_long],
                            )
                            .await
                    }
                    None => {
                        client
                            .execute(
                                &conn.update_meta,
                                &[&new_version, &horizon_param, &has_long],
                            )
                            .await
                    }
                }
            },
            execute_if(
                client,
                !params.clear_begins.is_empty(),
                &conn.delete_ranges,
                &clear_params,
            ),
            execute_if(
                client,
                !params.delete_keys.is_empty(),
                &conn.delete_keys,
                &delete_params,
            ),
            execute_if(
                client,
                !params.upsert_keys.is_empty(),
                &conn.upsert,
                &upsert_params,
            ),
            // The long-key table only needs range deletes once it holds keys; an empty one
            // answers from its index at once.
            execute_if(
                client,
                !params.clear_begins.is_empty(),
                &conn.delete_ranges_long,
                &clear_params,
            ),
            execute_if(
                client,
                !params.delete_long_keys.is_empty(),
                &conn.delete_keys_long,
                &delete_long_params,
            ),
            execute_if(
                client,
                !params.upsert_long_keys.is_empty(),
                &conn.upsert_long,
                &upsert_long_params,
            ),
            execute_if(
                client,
                !log_versions.is_empty(),
                &conn.insert_log,
                &log_params,
            ),
            execute_if(client, new_horizon.is_some(), &conn.trim_log, &trim_params,),
            client.batch_execute("COMMIT"),
        );
        if let Err(e) = result {
            // A server-side error aborts the transaction, so the COMMIT behind it rolls back;
            // any other failure may have lost the answer to a COMMIT that went through.
            // A refusal (not a lost connection or a terminated backend) means rolled back.
            let db_error = !connection_error(&e);
            let moved = expected.is_some() && e.code() == Some(&SqlState::DIVISION_BY_ZERO);
            let error = if db_error {
                pg_error("committing", &e)
            } else {
                StoreError::Postgres(format!(
                    "commit outcome unknown (connection failed during commit): {}",
                    error_chain(&e)
                ))
            };
            return Err(ApplyError {
                error: GroupError {
                    error,
                    retry_safe: db_error,
                    connection_lost: !db_error,
                },
                moved,
            });
        }
        if let Some(h) = new_horizon {
            tracing::debug!(horizon = h, "trimmed the commit log");
        }
        if let Some(cache) = &mut self.cache {
            for (v, ranges) in d.writes {
                cache.log.record(v, ranges, now);
            }
            cache.seen = d.next;
            cache.horizon = new_horizon.unwrap_or(d.horizon);
        }
        self.record_sample(now, d.next);
        Ok(d.outcomes)
    }

    /// The version to trim the commit log to, if a recorded version is older than the window.
    fn trim_target(&self, now: Instant, horizon: u64) -> Option<u64> {
        self.samples
            .iter()
            .rev()
            .find(|(at, _)| now.duration_since(*at) > CONFLICT_WINDOW)
            .map(|(_, v)| *v)
            .filter(|v| *v > horizon)
    }

    fn record_sample(&mut self, now: Instant, version: u64) {
        if self
            .samples
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= SAMPLE_EVERY)
        {
            self.samples.push_back((now, version));
        }
        // Keep only the newest sample past the window, plus the younger ones.
        while self.samples.len() >= 2 && now.duration_since(self.samples[1].0) > CONFLICT_WINDOW {
            self.samples.pop_front();
        }
    }
}

/// Bytes of keys and values a request writes, to bound a group's size.
fn request_bytes(r: &CommitRequest) -> usize {
    r.mutations
        .iter()
        .map(|m| match m {
            Mutation::Set { key, value } => key.len() + value.len(),
            Mutation::Clear { key } => key.len(),
            Mutation::ClearRange(range) => range.begin.len() + range.end.len(),
            Mutation::Atomic { key, param, .. } => key.len() + param.len(),
        })
        .sum()
}

/// Runs `statement` when `run` holds and answers 0 rows otherwise. Like `Client::execute`, the
/// statement is sent on the first poll, so a `try_join!` of these pipelines them in order.
async fn execute_if(
    client: &Client,
    run: bool,
    statement: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    if run {
        client.execute(statement, params).await
    } else {
        Ok(0)
    }
}
