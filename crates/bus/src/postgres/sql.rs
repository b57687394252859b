//! The SQL of the PostgreSQL driver, in one place.

/// Creates the driver's three tables. Run under an advisory lock because concurrent
/// `CREATE TABLE IF NOT EXISTS` can still fail on the catalog's unique index.
pub(crate) const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7262397164620871009);
CREATE TABLE IF NOT EXISTS rivet_bus_payload (
    id BIGSERIAL PRIMARY KEY,
    body BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS rivet_bus_payload_created ON rivet_bus_payload (created_at);
CREATE TABLE IF NOT EXISTS rivet_bus_claim (
    msg TEXT NOT NULL,
    grp TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (msg, grp)
);
CREATE INDEX IF NOT EXISTS rivet_bus_claim_created ON rivet_bus_claim (created_at);
CREATE TABLE IF NOT EXISTS rivet_bus_interest (
    node TEXT NOT NULL,
    subject TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (node, subject)
);
CREATE INDEX IF NOT EXISTS rivet_bus_interest_subject ON rivet_bus_interest (subject);
COMMIT;
";

/// $1 channel, $2 payload.
pub(crate) const NOTIFY: &str = "SELECT pg_notify($1::text, $2::text)";

/// $1 channel, $2 payload prefix (the row id is appended), $3 body. The notification is sent at
/// commit, when the row is visible to receivers.
pub(crate) const NOTIFY_STORED: &str = "
WITH ins AS (INSERT INTO rivet_bus_payload (body) VALUES ($3::bytea) RETURNING id)
SELECT pg_notify($1::text, $2::text || ins.id::text) FROM ins";

/// As [`NOTIFY`], sent only when some node registered interest in subject $3; returns one row
/// when sent, none otherwise (no responders).
pub(crate) const NOTIFY_IF_INTEREST: &str = "
SELECT pg_notify($1::text, $2::text)
WHERE EXISTS (SELECT 1 FROM rivet_bus_interest WHERE subject = $3::text AND expires_at > now())";

/// As [`NOTIFY_STORED`], only when some node registered interest in subject $4.
pub(crate) const NOTIFY_STORED_IF_INTEREST: &str = "
WITH ins AS (
    INSERT INTO rivet_bus_payload (body) SELECT $3::bytea
    WHERE EXISTS (SELECT 1 FROM rivet_bus_interest WHERE subject = $4::text AND expires_at > now())
    RETURNING id)
SELECT pg_notify($1::text, $2::text || ins.id::text) FROM ins";

/// $1 message id, $2 group: one row affected for the one node that wins the message.
pub(crate) const CLAIM: &str =
    "INSERT INTO rivet_bus_claim (msg, grp) VALUES ($1::text, $2::text) ON CONFLICT DO NOTHING";

/// $1 payload row id.
pub(crate) const FETCH: &str = "SELECT body FROM rivet_bus_payload WHERE id = $1::bigint";

/// $1 node, $2 subjects: (re)registers interest for 30 s (the heartbeat runs every 10 s).
pub(crate) const REGISTER: &str = "
INSERT INTO rivet_bus_interest (node, subject, expires_at)
SELECT $1::text, s, now() + interval '30 seconds' FROM unnest($2::text[]) AS s
ON CONFLICT (node, subject) DO UPDATE SET expires_at = EXCLUDED.expires_at";

/// $1 node, $2 subject.
pub(crate) const UNREGISTER: &str =
    "DELETE FROM rivet_bus_interest WHERE node = $1::text AND subject = $2::text";

/// $1 node.
pub(crate) const UNREGISTER_NODE: &str = "DELETE FROM rivet_bus_interest WHERE node = $1::text";

/// Garbage collection, run by every node now and then.
pub(crate) const CLEANUP: &str = "
DELETE FROM rivet_bus_payload WHERE created_at < now() - interval '60 seconds';
DELETE FROM rivet_bus_claim WHERE created_at < now() - interval '60 seconds';
DELETE FROM rivet_bus_interest WHERE expires_at < now();";
