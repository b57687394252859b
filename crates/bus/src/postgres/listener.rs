//! The two background tasks of a PostgreSQL bus: the listener (owns the LISTEN connection,
//! executes [`Control`] commands in order, reconnects) and the dispatcher (decodes notifications,
//! claims queue-group messages, delivers to the local registry in arrival order).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::conn::{is_connection_loss, Conn};
use super::wire::{self, Body};
use super::{sql, Control, DRIVER};
use crate::registry::Registry;
use crate::subject::INBOX_PREFIX;
use crate::BusError;

const HEARTBEAT: Duration = Duration::from_secs(10);
const CLEANUP: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What both tasks need.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) instance: String,
    pub(crate) registry: Arc<Registry>,
    pub(crate) conn: Arc<Conn>,
}

impl Shared {
    /// Subjects with a local subscriber, without request inboxes (they need no interest row and
    /// share the inbox channel).
    fn subscribed(&self) -> Vec<String> {
        self.registry
            .subjects()
            .iter()
            .filter(|s| !s.starts_with(INBOX_PREFIX))
            .map(|s| s.to_string())
            .collect()
    }

    async fn register(&self, subjects: Vec<String>) -> Result<(), BusError> {
        if subjects.is_empty() {
            return Ok(());
        }
        let (instance, subjects) = (&self.instance, &subjects);
        self.conn
            .run(|pg| async move { pg.client.execute(&pg.register, &[instance, subjects]).await })
            .await
            .map(drop)
    }
}

enum Outcome {
    Done,
    /// The connection is gone; the command (if any) must run again after reconnecting.
    Lost(Option<Control>),
    Closed,
}

/// The listener task. Ends when the bus is closed or dropped.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut control: mpsc::UnboundedReceiver<Control>,
    notices: mpsc::UnboundedSender<String>,
) {
    let inbox_channel = wire::inbox_channel(&shared.instance);
    let mut backoff = BACKOFF_MIN;
    let mut carry: Option<Control> = None;
    loop {
        let (client, mut connection) = match shared.config.connect(NoTls).await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "postgres bus listener cannot connect");
                // Back-off between reconnect attempts, not synchronisation.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let (dead_tx, mut dead_rx) = oneshot::channel::<()>();
        let tx = notices.clone();
        let driver = tokio::spawn(async move {
            loop {
                match futures::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if tx.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "postgres bus listener connection lost");
                        break;
                    }
                    None => break,
                }
            }
            let _ = dead_tx.send(());
        });

        if let Err(e) = listen_all(&shared, &client, &inbox_channel).await {
            tracing::warn!(error = %e, "postgres bus listener cannot LISTEN, reconnecting");
            driver.abort();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        }
        backoff = BACKOFF_MIN;
        tracing::debug!(instance = %shared.instance, "postgres bus listener connected");

        let mut heartbeat = interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut cleanup = interval_at(Instant::now() + CLEANUP, CLEANUP);
        cleanup.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let cmd = match carry.take() {
                Some(cmd) => cmd,
                None => tokio::select! {
                    cmd = control.recv() => match cmd {
                        Some(cmd) => cmd,
                        None => {
                            driver.abort();
                            return;
                        }
                    },
                    _ = heartbeat.tick() => {
                        if let Err(e) = shared.register(shared.subscribed()).await {
                            tracing::warn!(error = %e, "postgres bus interest heartbeat failed");
                        }
                        continue;
                    }
                    _ = cleanup.tick() => {
                        let conn = &shared.conn;
                        if let Err(e) = conn.run(|pg| async move { pg.client.batch_execute(sql::CLEANUP).await }).await {
                            tracing::warn!(error = %e, "postgres bus cleanup failed");
                        }
                        continue;
                    }
                    _ = &mut dead_rx => break,
                },
            };
            match handle(&shared, &client, cmd).await {
                Outcome::Done => {}
                Outcome::Lost(cmd) => {
                    carry = cmd;
                    break;
                }
                Outcome::Closed => {
                    driver.abort();
                    return;
                }
            }
        }
        driver.abort();
    }
}

/// LISTENs on the inbox channel and the channel of every subscribed subject, then refreshes the
/// interest rows (they may have expired while disconnected).
async fn listen_all(
    shared: &Shared,
    client: &Client,
    inbox_channel: &str,
) -> Result<(), tokio_postgres::Error> {
    let subjects = shared.subscribed();
    let mut channels: BTreeSet<String> = subjects.iter().map(|s| wire::channel_for(s)).collect();
    channels.insert(inbox_channel.to_owned());
    let batch: String = channels.iter().map(|c| format!("LISTEN {c};")).collect();
    client.batch_execute(&batch).await?;
    if let Err(e) = shared.register(subjects).await {
        tracing::warn!(error = %e, "postgres bus cannot register interest after reconnect");
    }
    Ok(())
}

async fn handle(shared: &Shared, client: &Client, cmd: Control) -> Outcome {
    match cmd {
        Control::Listen { subject, ack } => {
            let channel = wire::channel_for(&subject);
            if let Err(e) = client.batch_execute(&format!("LISTEN {channel}")).await {
                if is_connection_loss(&e, client) {
                    return Outcome::Lost(Some(Control::Listen { subject, ack }));
                }
                let _ = ack.send(Err(BusError::Connection {
                    driver: DRIVER,
                    message: e.to_string(),
                }));
                return Outcome::Done;
            }
            let _ = ack.send(shared.register(vec![subject.to_string()]).await);
            Outcome::Done
        }
        Control::Unlisten(subject) => {
            // A new subscriber may have arrived since the last one left: its Listen command is
            // queued behind this one, but skipping here saves a round trip pair.
            if shared.registry.contains(&subject) {
                return Outcome::Done;
            }
            let channel = wire::channel_for(&subject);
            if let Err(e) = client.batch_execute(&format!("UNLISTEN {channel}")).await {
                if is_connection_loss(&e, client) {
                    return Outcome::Lost(None);
                }
                tracing::warn!(error = %e, %subject, "postgres bus UNLISTEN failed");
            }
            let (instance, subject) = (&shared.instance, subject.as_ref());
            let result = shared
                .conn
                .run(|pg| async move {
                    pg.client
                        .execute(&pg.unregister, &[instance, &subject])
                        .await
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, %subject, "postgres bus cannot drop interest row");
            }
            Outcome::Done
        }
        Control::Ready(ack) => {
            let _ = ack.send(());
            Outcome::Done
        }
        Control::Close(done) => {
            let _ = client.batch_execute("UNLISTEN *").await;
            let instance = &shared.instance;
            let result = shared
                .conn
                .run(|pg| async move { pg.client.execute(sql::UNREGISTER_NODE, &[instance]).await })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "postgres bus cannot drop interest rows on close");
            }
            let _ = done.send(());
            Outcome::Closed
        }
    }
}

/// The dispatcher task: one notification at a time, so deliveries keep arrival order.
pub(crate) async fn dispatch(shared: Arc<Shared>, mut notices: mpsc::UnboundedReceiver<String>) {
    while let Some(text) = notices.recv().await {
        let Some(notice) = wire::decode(&text) else {
            tracing::warn!(
                len = text.len(),
                "postgres bus ignored a malformed notification"
            );
            continue;
        };
        // Hash collision, or the last subscriber left while the notification was in flight.
        if !shared.registry.contains(&notice.subject) {
            continue;
        }
        let payload = match notice.body {
            Body::Inline(payload) => payload,
            Body::Stored(id) => match fetch(&shared, id).await {
                Some(payload) => payload,
                None => continue,
            },
        };
        let reply: Option<Arc<str>> = notice.reply.map(Arc::from);
        let subject = notice.subject.as_str();
        shared.registry.deliver_plain(subject, &payload, &reply);
        for group in shared.registry.groups_of(subject) {
            if claim(&shared, &notice.msg_id, &group).await {
                shared
                    .registry
                    .deliver_group(subject, &group, &payload, &reply);
            }
        }
    }
}

async fn fetch(shared: &Shared, id: i64) -> Option<Bytes> {
    let result = shared
        .conn
        .run(|pg| async move { pg.client.query_opt(&pg.fetch, &[&id]).await })
        .await;
    match result {
        Ok(Some(row)) => match row.try_get::<_, Vec<u8>>(0) {
            Ok(body) => Some(Bytes::from(body)),
            Err(e) => {
                tracing::warn!(error = %e, id, "postgres bus payload row unreadable");
                None
            }
        },
        Ok(None) => {
            tracing::warn!(
                id,
                "postgres bus payload row already deleted, message dropped"
            );
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, id, "postgres bus cannot fetch payload, message dropped");
            None
        }
    }
}

/// True when this node won `msg_id` for `group`.
async fn claim(shared: &Shared, msg_id: &str, group: &str) -> bool {
    let result = shared
        .conn
        .run(|pg| async move { pg.client.execute(&pg.claim, &[&msg_id, &group]).await })
        .await;
    match result {
        Ok(n) => n == 1,
        Err(e) => {
            tracing::warn!(error = %e, msg_id, group, "postgres bus claim failed, message dropped");
            false
        }
    }
}
