//! The driver's tables, their versioned migrations, and the SQL text of every statement, built
//! once per driver for its schema.

use tokio_postgres::Client;

use crate::error::StoreError;

use super::pg_error;

/// Migrations in order; entry `i` brings the schema to version `i + 1`. Applied ones are never
/// edited: a change is a new entry.
const MIGRATIONS: &[&str] = &[
    // 1: the keyspace, the commit counter and the log of committed write ranges. Keys longer
    // than a B-tree index row allows live in `rivet_kv_long`, indexed by a prefix plus a hash
    // of the whole key; `has_long_keys` lets reads skip that table while it is unused.
    "CREATE TABLE {s}.rivet_kv (
        key bytea PRIMARY KEY,
        value bytea NOT NULL
    );
    CREATE TABLE {s}.rivet_kv_long (
        key bytea NOT NULL,
        value bytea NOT NULL,
        prefix bytea NOT NULL GENERATED ALWAYS AS (substring(key FROM 1 FOR 2048)) STORED,
        hash bytea NOT NULL GENERATED ALWAYS AS (sha256(key)) STORED,
        PRIMARY KEY (prefix, hash)
    );
    CREATE TABLE {s}.rivet_meta (
        id int PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL,
        horizon bigint NOT NULL,
        has_long_keys boolean NOT NULL
    );
    INSERT INTO {s}.rivet_meta (id, version, horizon, has_long_keys) VALUES (1, 0, 0, false);
    CREATE TABLE {s}.rivet_commit_log (
        version bigint NOT NULL,
        begin_key bytea NOT NULL,
        end_key bytea NOT NULL
    );
    CREATE INDEX rivet_commit_log_version ON {s}.rivet_commit_log (version);",
];

/// Keys up to this length live in `rivet_kv`; longer ones in `rivet_kv_long`, whose index
/// holds their first this many bytes (PostgreSQL's B-tree rows are limited to ~2.7 KB).
pub(crate) const SHORT_KEY_MAX: usize = 2048;

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Quotes an SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A stable advisory-lock key for migrating one schema (FNV-1a), so that concurrent starts on
/// the same schema serialize while different schemas don't wait for each other.
fn migration_lock_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "rivet-store-migrate:".bytes().chain(schema.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_le_bytes(hash.to_le_bytes())
}

/// Creates the schema and applies missing migrations. Safe when several processes start at
/// once: everything runs in one transaction under a transaction-level advisory lock, taken
/// before the first `CREATE` (concurrent `CREATE ... IF NOT EXISTS` can otherwise fail).
pub(crate) async fn migrate(client: &Client, schema: &str) -> Result<(), StoreError> {
    let s = quote_ident(schema);
    let run = async {
        client.batch_execute("BEGIN").await?;
        client
            .execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&migration_lock_key(schema)],
            )
            .await?;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {s};
                 CREATE TABLE IF NOT EXISTS {s}.rivet_schema_version (
                     version int PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now()
                 );"
            ))
            .await?;
        let row = client
            .query_one(
                &format!("SELECT coalesce(max(version), 0) FROM {s}.rivet_schema_version"),
                &[],
            )
            .await?;
        let current: i32 = row.try_get(0)?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
            let version = i as i32 + 1;
            tracing::info!(schema, version, "applying store migration");
            client.batch_execute(&migration.replace("{s}", &s)).await?;
            client
                .execute(
                    &format!("INSERT INTO {s}.rivet_schema_version (version) VALUES ($1)"),
                    &[&version],
                )
                .await?;
        }
        client.batch_execute("COMMIT").await?;
        Ok::<i32, tokio_postgres::Error>(current)
    };
    match run.await {
        Ok(current) if current > SCHEMA_VERSION => Err(StoreError::Config(format!(
            "schema {schema} is at version {current}, newer than this build knows ({SCHEMA_VERSION})"
        ))),
        Ok(_) => Ok(()),
        Err(e) => {
            // The connection is dropped by the caller on error; the transaction dies with it.
            Err(pg_error("migrating the store schema", &e))
        }
    }
}

/// The text of every statement the driver runs, qualified with its schema.
#[derive(Debug)]
pub(crate) struct Sql {
    /// Opens a read snapshot and reads its version in one round trip.
    pub(crate) begin_snapshot: String,
    pub(crate) get: String,
    pub(crate) get_long: String,
    pub(crate) range_asc: String,
    pub(crate) range_desc: String,
    pub(crate) range_long_asc: String,
    pub(crate) range_long_desc: String,
    pub(crate) lock_meta: String,
    pub(crate) fetch_log: String,
    pub(crate) fetch_values: String,
    pub(crate) delete_ranges: String,
    pub(crate) delete_ranges_long: String,
    pub(crate) delete_keys: String,
    pub(crate) delete_keys_long: String,
    pub(crate) upsert: String,
    pub(crate) upsert_long: String,
    pub(crate) insert_log: String,
    pub(crate) update_meta: String,
    /// Takes the counter row's lock and bumps it only if it still holds `$1`; otherwise fails
    /// with division by zero, which aborts the transaction (the fast commit path).
    pub(crate) guarded_update_meta: String,
    pub(crate) trim_log: String,
}

impl Sql {
    /// The statements for tables in `schema`.
    pub(crate) fn new(schema: &str) -> Sql {
        let s = quote_ident(schema);
        let n = SHORT_KEY_MAX;
        // Finds long keys through the (prefix, hash) index.
        let long_match =
            format!("l.prefix = substring(k.key FROM 1 FOR {n}) AND l.hash = sha256(k.key)");
        // The prefix bounds are implied by the key bounds (truncation keeps order) and let the
        // index narrow the scan.
        let long_range = format!(
            "prefix >= substring($1::bytea FROM 1 FOR {n}) \
             AND prefix <= substring($2::bytea FROM 1 FOR {n}) AND key >= $1 AND key < $2"
        );
        Sql {
            begin_snapshot: format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
                 SELECT version, has_long_keys FROM {s}.rivet_meta WHERE id = 1"
            ),
            get: format!("SELECT value FROM {s}.rivet_kv WHERE key = $1"),
            get_long: format!(
                "SELECT value FROM {s}.rivet_kv_long \
                 WHERE prefix = substring($1::bytea FROM 1 FOR {n}) AND hash = sha256($1::bytea)"
            ),
            range_asc: format!(
                "SELECT key, value FROM {s}.rivet_kv WHERE key >= $1 AND key < $2 \
                 ORDER BY key LIMIT $3"
            ),
            range_desc: format!(
                "SELECT key, value FROM {s}.rivet_kv WHERE key >= $1 AND key < $2 \
                 ORDER BY key DESC LIMIT $3"
            ),
            range_long_asc: format!(
                "SELECT key, value FROM {s}.rivet_kv_long WHERE {long_range} \
                 ORDER BY key LIMIT $3"
            ),
            range_long_desc: format!(
                "SELECT key, value FROM {s}.rivet_kv_long WHERE {long_range} \
                 ORDER BY key DESC LIMIT $3"
            ),
            lock_meta: format!(
                "SELECT version, horizon FROM {s}.rivet_meta WHERE id = 1 FOR UPDATE"
            ),
            fetch_log: format!(
                "SELECT version, begin_key, end_key FROM {s}.rivet_commit_log \
                 WHERE version > $1 ORDER BY version"
            ),
            fetch_values: format!(
                "SELECT key, value FROM {s}.rivet_kv WHERE key = ANY($1::bytea[]) \
                 UNION ALL \
                 SELECT l.key, l.value FROM {s}.rivet_kv_long l \
                 JOIN unnest($2::bytea[]) AS k(key) ON {long_match}"
            ),
            delete_ranges: format!(
                "DELETE FROM {s}.rivet_kv k USING unnest($1::bytea[], $2::bytea[]) AS r(b, e) \
                 WHERE k.key >= r.b AND k.key < r.e"
            ),
            delete_ranges_long: format!(
                "DELETE FROM {s}.rivet_kv_long l \
                 USING unnest($1::bytea[], $2::bytea[]) AS r(b, e) \
                 WHERE l.prefix >= substring(r.b FROM 1 FOR {n}) \
                 AND l.prefix <= substring(r.e FROM 1 FOR {n}) \
                 AND l.key >= r.b AND l.key < r.e"
            ),
            delete_keys: format!("DELETE FROM {s}.rivet_kv WHERE key = ANY($1::bytea[])"),
            delete_keys_long: format!(
                "DELETE FROM {s}.rivet_kv_long l USING unnest($1::bytea[]) AS k(key) \
                 WHERE {long_match}"
            ),
            upsert: format!(
                "INSERT INTO {s}.rivet_kv (key, value) \
                 SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            upsert_long: format!(
                "INSERT INTO {s}.rivet_kv_long (key, value) \
                 SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (prefix, hash) DO UPDATE SET value = EXCLUDED.value"
            ),
            insert_log: format!(
                "INSERT INTO {s}.rivet_commit_log (version, begin_key, end_key) \
                 SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[])"
            ),
            update_meta: format!(
                "UPDATE {s}.rivet_meta SET version = $1, horizon = GREATEST(horizon, $2), \
                 has_long_keys = has_long_keys OR $3 WHERE id = 1"
            ),
            guarded_update_meta: format!(
                "UPDATE {s}.rivet_meta \
                 SET version = CASE WHEN version = $1 THEN $2 ELSE 1 / (version - version) END, \
                 horizon = GREATEST(horizon, $3), has_long_keys = has_long_keys OR $4 \
                 WHERE id = 1"
            ),
            trim_log: format!("DELETE FROM {s}.rivet_commit_log WHERE version <= $1"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("plain"), "\"plain\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn lock_key_depends_on_schema() {
        assert_eq!(migration_lock_key("a"), migration_lock_key("a"));
        assert_ne!(migration_lock_key("a"), migration_lock_key("b"));
    }
}
