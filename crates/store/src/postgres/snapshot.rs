//! Read views. A view is a REPEATABLE READ transaction on a pooled connection that read the
//! commit counter in its own snapshot, so its data and its version agree.
//!
//! `begin` calls that arrive while a snapshot is being opened wait for the next one, and all
//! calls waiting together share it (as FoundationDB batches read-version requests): every view
//! still starts after its `begin` was called, so it sees every commit acknowledged before, while
//! many concurrent transactions cost one round trip and one connection.

use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::SimpleQueryMessage;

use crate::driver::{BoxFuture, RangeRequest, ReadView};
use crate::error::StoreError;

use super::pg_error;
use super::schema::{Sql, SHORT_KEY_MAX};

/// Key/value pairs in key order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A waiting `begin`.
pub(crate) type SnapshotWaiter = oneshot::Sender<Result<Arc<Snapshot>, StoreError>>;

/// One open REPEATABLE READ transaction, shared by the views opened with it.
pub(crate) struct Snapshot {
    conn: Option<Object>,
    version: u64,
    /// Whether `rivet_kv_long` held keys at this version; reads skip it when not.
    has_long: bool,
    sql: Arc<Sql>,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // The connection goes back to the pool only once its transaction is rolled back; if
        // that cannot happen (no runtime, the task dropped at shutdown, an error) it is closed.
        let mut guard = DetachUnlessClean(Some(conn));
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let rolled_back = match &guard.0 {
                    Some(conn) => conn.batch_execute("ROLLBACK").await,
                    None => return,
                };
                match rolled_back {
                    Ok(()) => drop(guard.0.take()),
                    Err(e) => tracing::debug!(error = %e, "closing a read view failed; dropping its connection"),
                }
            });
        }
    }
}

/// Holds a pooled connection that may be mid-transaction: dropping the guard closes the
/// connection instead of returning it to the pool.
struct DetachUnlessClean(Option<Object>);

impl Drop for DetachUnlessClean {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(Object::take(conn));
        }
    }
}

impl Snapshot {
    fn conn(&self) -> Result<&Object, StoreError> {
        self.conn.as_ref().ok_or(StoreError::Closed)
    }
}

/// Opens snapshots for queued `begin` calls until the queue closes.
pub(crate) async fn run_opener(
    mut queue: mpsc::UnboundedReceiver<SnapshotWaiter>,
    pool: Pool,
    sql: Arc<Sql>,
) {
    while let Some(first) = queue.recv().await {
        let mut waiters = vec![first];
        while let Ok(w) = queue.try_recv() {
            waiters.push(w);
        }
        waiters.retain(|w| !w.is_closed());
        if waiters.is_empty() {
            continue;
        }
        let mut opened = open(&pool, &sql).await;
        // Pooled connections that died while idle (a restarted server, killed backends): try
        // others, then a fresh one.
        let mut attempts = pool.status().max_size + 1;
        while matches!(&opened, Err(OpenError::ConnectionLost(_))) && attempts > 0 {
            attempts -= 1;
            opened = open(&pool, &sql).await;
        }
        match opened.map_err(StoreError::from) {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                for w in waiters {
                    let _ = w.send(Ok(snapshot.clone()));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::warn!(error = %msg, "opening a read snapshot failed");
                let mut first = Some(e);
                for w in waiters {
                    let err = first
                        .take()
                        .unwrap_or_else(|| StoreError::Postgres(msg.clone()));
                    let _ = w.send(Err(err));
                }
            }
        }
    }
}

/// Why a snapshot did not open.
enum OpenError {
    /// The pooled connection turned out dead; another one may work.
    ConnectionLost(StoreError),
    Other(StoreError),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> StoreError {
        match e {
            OpenError::ConnectionLost(e) | OpenError::Other(e) => e,
        }
    }
}

async fn open(pool: &Pool, sql: &Arc<Sql>) -> Result<Snapshot, OpenError> {
    let conn = pool.get().await.map_err(|e| {
        OpenError::Other(match e {
            deadpool_postgres::PoolError::Closed => StoreError::Closed,
            other => StoreError::Postgres(format!(
                "no connection for a read view: {}",
                super::connect::error_chain(&other)
            )),
        })
    })?;
    let messages = match conn.simple_query(&sql.begin_snapshot).await {
        Ok(m) => m,
        Err(e) => {
            // The connection's state is unknown: don't return it to the pool.
            drop(Object::take(conn));
            let err = pg_error("opening a read view", &e);
            return Err(if super::connection_error(&e) {
                OpenError::ConnectionLost(err)
            } else {
                OpenError::Other(err)
            });
        }
    };
    let mut snapshot = Snapshot {
        conn: Some(conn),
        version: 0,
        has_long: false,
        sql: sql.clone(),
    };
    let meta = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => {
            let version = row.get(0).and_then(|v| v.parse::<u64>().ok())?;
            let has_long = match row.get(1)? {
                "t" => true,
                "f" => false,
                _ => return None,
            };
            Some((version, has_long))
        }
        _ => None,
    });
    match meta {
        Some((version, has_long)) => {
            snapshot.version = version;
            snapshot.has_long = has_long;
            Ok(snapshot)
        }
        // Dropping the snapshot rolls the transaction back.
        None => Err(OpenError::Other(StoreError::Corrupt(
            "the store's version row is missing or malformed".into(),
        ))),
    }
}

/// A view on a shared snapshot.
pub(crate) struct PgView {
    pub(crate) snapshot: Arc<Snapshot>,
}

impl ReadView for PgView {
    fn read_version(&self) -> u64 {
        self.snapshot.version
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let snap = &self.snapshot;
            let long = key.len() > SHORT_KEY_MAX;
            if long && !snap.has_long {
                return Ok(None);
            }
            let conn = snap.conn()?;
            let sql = if long {
                &snap.sql.get_long
            } else {
                &snap.sql.get
            };
            let stmt = conn
                .prepare_cached(sql)
                .await
                .map_err(|e| pg_error("preparing a read", &e))?;
            let row = conn
                .query_opt(&stmt, &[&key])
                .await
                .map_err(|e| pg_error("reading a key", &e))?;
            match row {
                None => Ok(None),
                Some(row) => row
                    .try_get::<_, Vec<u8>>(0)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt(format!("value column: {e}"))),
            }
        })
    }

    fn get_range<'a>(
        &'a self,
        request: &'a RangeRequest,
    ) -> BoxFuture<'a, Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>> {
        Box::pin(async move {
            let range = &request.range;
            if range.begin >= range.end || request.limit == Some(0) {
                return Ok(Vec::new());
            }
            let snap = &self.snapshot;
            let (short_sql, long_sql) = if request.reverse {
                (&snap.sql.range_desc, &snap.sql.range_long_desc)
            } else {
                (&snap.sql.range_asc, &snap.sql.range_long_asc)
            };
            let short = snap.range(short_sql, request);
            if !snap.has_long {
                return short.await;
            }
            // Both tables, each sorted and limited, merged in key order.
            let (short, long) = futures::try_join!(short, snap.range(long_sql, request))?;
            Ok(merge(short, long, request.reverse, request.limit))
        })
    }
}

impl Snapshot {
    async fn range(&self, sql: &str, request: &RangeRequest) -> Result<Pairs, StoreError> {
        let conn = self.conn()?;
        let stmt = conn
            .prepare_cached(sql)
            .await
            .map_err(|e| pg_error("preparing a range read", &e))?;
        let limit: Option<i64> = request.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let rows = conn
            .query(&stmt, &[&request.range.begin, &request.range.end, &limit])
            .await
            .map_err(|e| pg_error("reading a range", &e))?;
        rows.into_iter()
            .map(|row| {
                let key: Vec<u8> = row
                    .try_get(0)
                    .map_err(|e| StoreError::Corrupt(format!("key column: {e}")))?;
                let value: Vec<u8> = row
                    .try_get(1)
                    .map_err(|e| StoreError::Corrupt(format!("value column: {e}")))?;
                Ok((key, value))
            })
            .collect()
    }
}

/// Merges two runs sorted the same way (ascending, or descending when `reverse`), keeping at
/// most `limit` pairs. The runs never share a key.
fn merge(a: Pairs, b: Pairs, reverse: bool, limit: Option<usize>) -> Pairs {
    let limit = limit.unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity((a.len() + b.len()).min(limit));
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    while out.len() < limit {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => (x.0 < y.0) != reverse,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_a { a.next() } else { b.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge;

    fn pairs(keys: &[&[u8]]) -> Vec<(Vec<u8>, Vec<u8>)> {
        keys.iter().map(|k| (k.to_vec(), Vec::new())).collect()
    }

    #[test]
    fn merges_in_order_with_limit() {
        let a = pairs(&[b"a", b"c", b"e"]);
        let b = pairs(&[b"b", b"d"]);
        let all = merge(a.clone(), b.clone(), false, None);
        assert_eq!(all, pairs(&[b"a", b"b", b"c", b"d", b"e"]));
        assert_eq!(merge(a, b, false, Some(2)), pairs(&[b"a", b"b"]));
        let ra = pairs(&[b"e", b"c", b"a"]);
        let rb = pairs(&[b"d", b"b"]);
        assert_eq!(merge(ra, rb, true, Some(3)), pairs(&[b"e", b"d", b"c"]));
        assert!(merge(Vec::new(), Vec::new(), false, Some(5)).is_empty());
    }
}
