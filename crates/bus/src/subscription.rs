//! The stream of messages a subscriber receives.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use crate::message::RawMessage;
use crate::postgres::Control;
use crate::registry::{Registry, Rx};
use crate::stats::Counters;
use crate::{Bus, Message};

/// A subscription: a [`Stream`] of [`Message`]s. Dropping it unsubscribes.
///
/// The stream ends when the bus is closed. On memory and PostgreSQL, messages are buffered
/// without bound between the driver and the stream, so a subscriber that stops polling holds
/// memory but never blocks a publisher; on NATS the client buffers 65,536 messages per
/// subscription and drops further ones (a "slow consumer", logged by async-nats).
pub struct Subscription {
    subject: Arc<str>,
    source: Source,
    bus: Bus,
}

enum Source {
    /// Memory and PostgreSQL: a channel fed from the bus's local registry; the guard is
    /// dropped by `unsubscribe`.
    Local { rx: Rx, guard: Option<LocalGuard> },
    /// NATS: the client's own subscriber, which unsubscribes when dropped.
    Nats(async_nats::Subscriber),
}

/// Removes a local subscriber from the registry when its subscription is dropped and, for
/// PostgreSQL, tells the listener to stop listening once the subject has no local subscriber.
pub(crate) struct LocalGuard {
    pub(crate) registry: Arc<Registry>,
    pub(crate) subject: Arc<str>,
    pub(crate) id: u64,
    pub(crate) control: Option<mpsc::UnboundedSender<Control>>,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        if self.registry.remove(&self.subject, self.id) {
            if let Some(control) = &self.control {
                // The listener task may be gone when the bus is closing; nothing to undo then.
                let _ = control.send(Control::Unlisten(self.subject.clone()));
            }
        }
    }
}

impl Subscription {
    pub(crate) fn local(bus: Bus, rx: Rx, guard: LocalGuard) -> Self {
        Self {
            subject: guard.subject.clone(),
            source: Source::Local {
                rx,
                guard: Some(guard),
            },
            bus,
        }
    }

    pub(crate) fn nats(bus: Bus, subject: Arc<str>, sub: async_nats::Subscriber) -> Self {
        Self {
            subject,
            source: Source::Nats(sub),
            bus,
        }
    }

    /// The subject this subscription listens to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Stops receiving new messages; those already delivered to this subscription can still
    /// be read (and the stream ends after them). For a subscriber that must account for every
    /// message it was sent, e.g. to refuse what it can no longer handle.
    pub async fn unsubscribe(&mut self) {
        match &mut self.source {
            Source::Local { rx, guard } => {
                guard.take();
                rx.close();
            }
            Source::Nats(sub) => {
                if let Err(error) = sub.unsubscribe().await {
                    tracing::debug!(%error, subject = %self.subject, "unsubscribe failed");
                }
            }
        }
    }

    fn counters(&self) -> &Counters {
        &self.bus.inner.counters
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let this = self.get_mut();
        let raw = match &mut this.source {
            Source::Local { rx, .. } => match rx.poll_recv(cx) {
                Poll::Ready(Some(raw)) => raw,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            },
            Source::Nats(sub) => match Pin::new(sub).poll_next(cx) {
                Poll::Ready(Some(m)) => RawMessage {
                    subject: Arc::from(m.subject.as_str()),
                    payload: m.payload,
                    reply: m.reply.map(|r| Arc::from(r.as_str())),
                },
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            },
        };
        Counters::incr(&this.counters().received);
        Poll::Ready(Some(Message::from_raw(raw, &this.bus)))
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("subject", &self.subject)
            .field("driver", &self.bus.driver())
            .finish()
    }
}
