//! The PostgreSQL driver: LISTEN/NOTIFY for delivery, three small tables for what NOTIFY alone
//! cannot do.
//!
//! # Connections
//! Each bus opens two connections (`application_name` `rivet-bus:{instance}` and
//! `rivet-bus-listen:{instance}`):
//! - the *listener* runs `LISTEN` and yields notifications (`poll_message`); one task owns it and
//!   executes LISTEN/UNLISTEN commands in order, so `subscribe().await` returns after its LISTEN
//!   ran. When the connection drops, the task reconnects (back-off 50 ms → 2 s) and re-LISTENs
//!   every subject that has a local subscriber;
//! - the *query* connection publishes (`pg_notify`), claims queue-group messages and fetches large
//!   payloads; it reconnects on the next call after it closed, retrying that call once.
//!
//! # Channels and payloads
//! A subject maps to channel `rivet_bus_{fnv1a64(subject):016x}` (names are limited to 63 bytes);
//! every request inbox of one bus shares the channel of `_INBOX.{instance}`. The payload is text,
//! `r1 <msg-id> <subject> <reply> i<base64>` (empty reply field when none); receivers match the subject exactly. When that
//! would exceed NOTIFY's 8,000 bytes, the body goes into `rivet_bus_payload` in the same statement
//! and the notification carries `t<row id>` instead; rows are deleted after 60 s, so a receiver
//! more than a minute behind drops such a message (with a warning).
//!
//! # Queue groups
//! Every node with a local member of group `g` on the subject receives the notification and runs
//! `INSERT INTO rivet_bus_claim (msg, grp) VALUES (<msg-id>, g) ON CONFLICT DO NOTHING`. The one
//! insert that affects a row wins: that node hands the message to one of its members (round
//! robin); the others drop it. Message ids are `{instance}.{counter}`, unique per publish. Claim
//! rows are deleted after 60 s.
//!
//! # No responders
//! NOTIFY cannot tell whether anyone listens, so subscribers register interest rows
//! `rivet_bus_interest (node, subject, expires_at)` when they subscribe, refresh them every 10 s
//! (expiring after 30 s) and delete them when the last local subscriber of the subject goes away. A
//! request notifies only `WHERE EXISTS` such a row, in one statement, and reports no responders
//! when no row came back. A node that died without cleaning up makes requests to its subjects
//! time out instead of failing fast, for up to 30 s.
//!
//! # Ordering and delivery
//! Notifications of one session arrive in commit order, and a bus publishes on one connection,
//! so messages from one publisher arrive in order. Delivery is at most once: a message published
//! while a listener is reconnecting is not seen by that listener.

mod conn;
mod listener;
mod sql;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::redact_url;
use crate::registry::Registry;
use crate::BusError;
use conn::Conn;

pub(crate) const DRIVER: &str = "postgres";

/// Largest payload the driver accepts (stored in a `bytea` row).
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// How long `subscribe` and `connect` wait for the listener connection.
const LISTENER_WAIT: Duration = Duration::from_secs(30);

/// Commands to the listener task, executed in order.
pub(crate) enum Control {
    /// LISTEN on the subject's channel and register interest; answers when done.
    Listen {
        subject: Arc<str>,
        ack: oneshot::Sender<Result<(), BusError>>,
    },
    /// The subject lost its last local subscriber: UNLISTEN and drop the interest row, unless a
    /// new subscriber arrived in the meantime.
    Unlisten(Arc<str>),
    /// Answers once the listener is connected and listening on the inbox channel.
    Ready(oneshot::Sender<()>),
    /// Stop listening, delete this node's interest rows, end the task.
    Close(oneshot::Sender<()>),
}

pub(crate) struct PgDriver {
    pub(crate) registry: Arc<Registry>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    conn: Arc<Conn>,
    instance: String,
    next_msg: AtomicU64,
    tasks: Vec<JoinHandle<()>>,
}

impl PgDriver {
    pub(crate) async fn connect(url: &str, instance: &str) -> Result<Self, BusError> {
        let connect_error = |message: String| BusError::Connect {
            driver: DRIVER,
            url: redact_url(url, false),
            message,
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| connect_error(conn::describe(&e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let mut listen_config = config.clone();
        config.application_name(format!("rivet-bus:{instance}"));
        listen_config.application_name(format!("rivet-bus-listen:{instance}"));

        let conn = Arc::new(Conn::new(config));
        conn.get().await.map_err(|e| match e {
            BusError::Connection { message, .. } => connect_error(message),
            other => connect_error(other.to_string()),
        })?;

        let registry = Arc::new(Registry::default());
        let (control, control_rx) = mpsc::unbounded_channel();
        let (notices, notices_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(listener::Shared {
            config: listen_config,
            instance: instance.to_owned(),
            registry: registry.clone(),
            conn: conn.clone(),
        });
        let tasks = vec![
            tokio::spawn(listener::run(shared.clone(), control_rx, notices)),
            tokio::spawn(listener::dispatch(shared, notices_rx)),
        ];
        let driver = Self {
            registry,
            control,
            conn,
            instance: instance.to_owned(),
            next_msg: AtomicU64::new(0),
            tasks,
        };
        let (ready, ready_rx) = oneshot::channel();
        let _ = driver.control.send(Control::Ready(ready));
        match tokio::time::timeout(LISTENER_WAIT, ready_rx).await {
            Ok(Ok(())) => Ok(driver),
            _ => Err(connect_error("listener connection not ready".into())),
        }
    }

    /// Makes sure the listener LISTENs on `subject`'s channel and its interest row exists.
    pub(crate) async fn listen(&self, subject: Arc<str>) -> Result<(), BusError> {
        let (ack, ack_rx) = oneshot::channel();
        self.control
            .send(Control::Listen { subject, ack })
            .map_err(|_| BusError::Closed)?;
        match tokio::time::timeout(LISTENER_WAIT, ack_rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(BusError::Closed),
            Err(_) => Err(BusError::Connection {
                driver: DRIVER,
                message: "listener connection not available".into(),
            }),
        }
    }

    fn header(&self, subject: &str, reply: Option<&str>, size: usize) -> Result<String, BusError> {
        if size > MAX_PAYLOAD {
            return Err(BusError::PayloadTooLarge {
                size,
                max: MAX_PAYLOAD,
            });
        }
        let seq = self.next_msg.fetch_add(1, Ordering::Relaxed);
        Ok(wire::header(
            &format!("{}.{seq}", self.instance),
            subject,
            reply,
        ))
    }

    pub(crate) async fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        let header = self.header(subject, reply, payload.len())?;
        let channel = wire::channel_for(subject);
        match wire::encode_inline(&header, &payload) {
            Some(text) => {
                self.conn
                    .run(|pg| {
                        let (channel, text) = (&channel, &text);
                        async move { pg.client.query(&pg.notify, &[channel, text]).await }
                    })
                    .await?;
            }
            None => {
                let prefix = wire::stored_prefix(&header);
                let body: &[u8] = &payload;
                self.conn
                    .run(|pg| {
                        let (channel, prefix) = (&channel, &prefix);
                        async move {
                            pg.client
                                .query(&pg.notify_stored, &[channel, prefix, &body])
                                .await
                        }
                    })
                    .await?;
            }
        }
        Ok(())
    }

    /// Publishes a request with reply subject `inbox` only if some node subscribes to `subject`;
    /// false when none does.
    pub(crate) async fn publish_if_interest(
        &self,
        subject: &str,
        inbox: &str,
        payload: Bytes,
    ) -> Result<bool, BusError> {
        let header = self.header(subject, Some(inbox), payload.len())?;
        let channel = wire::channel_for(subject);
        let rows = match wire::encode_inline(&header, &payload) {
            Some(text) => {
                self.conn
                    .run(|pg| {
                        let (channel, text) = (&channel, &text);
                        async move {
                            pg.client
                                .query(&pg.notify_if_interest, &[channel, text, &subject])
                                .await
                        }
                    })
                    .await?
            }
            None => {
                let prefix = wire::stored_prefix(&header);
                let body: &[u8] = &payload;
                self.conn
                    .run(|pg| {
                        let (channel, prefix) = (&channel, &prefix);
                        async move {
                            pg.client
                                .query(
                                    &pg.notify_stored_if_interest,
                                    &[channel, prefix, &body, &subject],
                                )
                                .await
                        }
                    })
                    .await?
            }
        };
        Ok(!rows.is_empty())
    }

    pub(crate) async fn close(&self) -> Result<(), BusError> {
        let (done, done_rx) = oneshot::channel();
        if self.control.send(Control::Close(done)).is_ok() {
            // Bounded: a listener stuck reconnecting must not hang shutdown.
            let _ = tokio::time::timeout(Duration::from_secs(5), done_rx).await;
        }
        self.registry.clear();
        Ok(())
    }
}

impl Drop for PgDriver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
