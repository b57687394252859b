//! The query connection: publishes, claims and payload fetches, with prepared statements and a
//! transparent reconnect after the server dropped it.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::{sql, DRIVER};
use crate::BusError;

/// A live client with its statements prepared.
pub(crate) struct Pg {
    pub(crate) client: Client,
    pub(crate) notify: Statement,
    pub(crate) notify_stored: Statement,
    pub(crate) notify_if_interest: Statement,
    pub(crate) notify_stored_if_interest: Statement,
    pub(crate) claim: Statement,
    pub(crate) fetch: Statement,
    pub(crate) register: Statement,
    pub(crate) unregister: Statement,
}

/// Hands out the current [`Pg`], reconnecting when the previous one is closed.
pub(crate) struct Conn {
    config: Config,
    current: Mutex<Option<Arc<Pg>>>,
}

pub(crate) fn db_error(e: tokio_postgres::Error) -> BusError {
    BusError::Connection {
        driver: DRIVER,
        message: describe(&e),
    }
}

/// The error with the server's message; tokio-postgres' `Display` only says "db error".
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", e, db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl Conn {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            current: Mutex::new(None),
        }
    }

    /// The live connection, opening a new one when there is none or it was closed.
    pub(crate) async fn get(&self) -> Result<Arc<Pg>, BusError> {
        self.get_replacing(None).await
    }

    /// As [`Self::get`], but also replaces `broken` (a connection a call just saw fail, which
    /// tokio-postgres may not have marked closed yet).
    async fn get_replacing(&self, broken: Option<&Arc<Pg>>) -> Result<Arc<Pg>, BusError> {
        let mut current = self.current.lock().await;
        if let Some(pg) = current.as_ref() {
            let is_broken = broken.is_some_and(|b| Arc::ptr_eq(b, pg));
            if !is_broken && !pg.client.is_closed() {
                return Ok(pg.clone());
            }
            tracing::info!("postgres bus query connection lost, reconnecting");
        }
        let pg = Arc::new(open(&self.config).await?);
        *current = Some(pg.clone());
        Ok(pg)
    }

    /// Runs `op` on the live connection, retrying once on a fresh connection when it failed
    /// because the connection closed (e.g. the backend was terminated).
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, BusError>
    where
        F: Fn(Arc<Pg>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let pg = self.get().await?;
        match op(pg.clone()).await {
            Ok(v) => Ok(v),
            Err(e) if is_connection_loss(&e, &pg.client) => {
                tracing::info!(error = %e, "postgres bus query failed on a closed connection, retrying");
                op(self.get_replacing(Some(&pg)).await?)
                    .await
                    .map_err(db_error)
            }
            Err(e) => Err(db_error(e)),
        }
    }
}

/// True when `e` means the connection is gone (closed socket, or the server terminating the
/// backend), as opposed to an error in the statement.
pub(crate) fn is_connection_loss(e: &tokio_postgres::Error, client: &Client) -> bool {
    use tokio_postgres::error::SqlState;
    e.is_closed()
        || client.is_closed()
        || matches!(
            e.code(),
            Some(&SqlState::ADMIN_SHUTDOWN) | Some(&SqlState::CRASH_SHUTDOWN)
        )
}

/// Opens a client, drives its connection on a task, prepares the statements.
async fn open(config: &Config) -> Result<Pg, BusError> {
    let (client, connection) = config.connect(NoTls).await.map_err(db_error)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres bus query connection ended");
        }
    });
    // Every (re)connect: cheap (IF NOT EXISTS), and the statements below need the tables.
    client.batch_execute(sql::SCHEMA).await.map_err(db_error)?;
    let p = |q| client.prepare(q);
    let (notify, notify_stored, notify_if_interest, notify_stored_if_interest) =
        futures::try_join!(
            p(sql::NOTIFY),
            p(sql::NOTIFY_STORED),
            p(sql::NOTIFY_IF_INTEREST),
            p(sql::NOTIFY_STORED_IF_INTEREST)
        )
        .map_err(db_error)?;
    let (claim, fetch, register, unregister) = futures::try_join!(
        p(sql::CLAIM),
        p(sql::FETCH),
        p(sql::REGISTER),
        p(sql::UNREGISTER)
    )
    .map_err(db_error)?;
    Ok(Pg {
        client,
        notify,
        notify_stored,
        notify_if_interest,
        notify_stored_if_interest,
        claim,
        fetch,
        register,
        unregister,
    })
}
