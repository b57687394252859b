//! Messages handed to subscribers.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::{Bus, BusError};

/// A message as the drivers move it internally: shared subject, shared payload, no bus handle.
#[derive(Debug, Clone)]
pub(crate) struct RawMessage {
    pub(crate) subject: Arc<str>,
    pub(crate) payload: Bytes,
    pub(crate) reply: Option<Arc<str>>,
}

/// A message received from a [`crate::Subscription`].
///
/// Cloning is cheap: the subject and payload are shared, never copied. On the memory driver the
/// payload is the very allocation the publisher passed in.
#[derive(Clone)]
pub struct Message {
    subject: Arc<str>,
    payload: Bytes,
    reply: Option<Arc<str>>,
    /// Set only when `reply` is, so plain messages carry no bus handle.
    bus: Option<Bus>,
}

impl Message {
    pub(crate) fn from_raw(raw: RawMessage, bus: &Bus) -> Self {
        let bus = raw.reply.as_ref().map(|_| bus.clone());
        Self {
            subject: raw.subject,
            payload: raw.payload,
            reply: raw.reply,
            bus,
        }
    }

    /// The subject the message was published to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Takes the payload out of the message.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }

    /// The reply subject, set when the message is a request.
    pub fn reply(&self) -> Option<&str> {
        self.reply.as_deref()
    }

    /// Answers a request: publishes `payload` to the message's reply subject on the bus that
    /// received it.
    ///
    /// Fails with [`BusError::NoReplySubject`] when the message is not a request.
    pub async fn respond(&self, payload: Bytes) -> Result<(), BusError> {
        match (&self.reply, &self.bus) {
            (Some(reply), Some(bus)) => bus.publish_reply(reply, payload).await,
            _ => Err(BusError::NoReplySubject),
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("subject", &self.subject)
            .field("payload_len", &self.payload.len())
            .field("reply", &self.reply)
            .finish()
    }
}
