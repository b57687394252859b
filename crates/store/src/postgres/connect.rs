//! Connection settings: parsing the URL, redacting its password for messages, the read pool and
//! the committer's own connection.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{Client, NoTls};

use crate::error::StoreError;

/// How long opening one connection may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read view waits for a free pooled connection.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The URL with any password replaced by `***`, safe for logs and error messages. Handles the
/// URL form (`postgres://user:secret@host/db`, `?password=secret`) and the key/value form
/// (`host=h password=secret`).
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let pw_start = rest_start + colon + 1;
                out.replace_range(pw_start..rest_start + at, "***");
            }
        }
    }
    redact_password_params(&out)
}

/// Replaces the value of every `password=` parameter (query string or key/value form).
fn redact_password_params(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(found) = lower[i..].find("password=") {
        let start = i + found;
        let preceded_ok =
            start == 0 || matches!(s.as_bytes()[start - 1], b'?' | b'&' | b' ' | b'\t' | b'\n');
        let value_start = start + "password=".len();
        out.push_str(&s[i..value_start]);
        if !preceded_ok {
            i = value_start;
            continue;
        }
        let bytes = s.as_bytes();
        let value_end = if bytes.get(value_start) == Some(&b'\'') {
            // Quoted key/value form: runs to the closing unescaped quote.
            let mut j = value_start + 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(bytes.len())
        } else {
            s[value_start..]
                .find(['&', ' ', '\t', '\n', '#'])
                .map_or(s.len(), |k| value_start + k)
        };
        out.push_str("***");
        i = value_end;
    }
    out.push_str(&s[i..]);
    out
}

/// Parses the connection URL.
pub(crate) fn parse_config(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        StoreError::Config(format!("invalid postgres URL {}: {e}", redact_url(url)))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("rivet-store");
    }
    Ok(config)
}

/// The pool of connections read views take their snapshots on.
pub(crate) fn build_pool(
    config: tokio_postgres::Config,
    pool_size: usize,
    redacted: &str,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Config(format!("postgres pool for {redacted}: {e}")))
}

/// Opens one connection outside the pool (the committer's, and migrations'), driving it on a
/// task that ends when the client is dropped.
pub(crate) async fn connect(
    config: &tokio_postgres::Config,
    redacted: &str,
) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        StoreError::Postgres(format!("cannot connect to {redacted}: {}", error_chain(&e)))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

/// An error with its sources, one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(
            redact_url("postgres://bob:s3cr%40t@db.example:5432/app"),
            "postgres://bob:***@db.example:5432/app"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            redact_url("postgresql://u@h/db?sslmode=disable&password=hunter2&x=1"),
            "postgresql://u@h/db?sslmode=disable&password=***&x=1"
        );
        assert_eq!(
            redact_url("host=localhost password='a b\\'c' user=x"),
            "host=localhost password=*** user=x"
        );
        assert_eq!(redact_url("host=h password=pw"), "host=h password=***");
        assert_eq!(
            redact_url("postgres://u:p@h/db_password=x"),
            "postgres://u:***@h/db_password=x"
        );
    }
}
