//! The NATS driver: a thin mapping onto `async-nats`, which reconnects on its own and
//! re-subscribes every live subscription after a reconnect.

use std::time::Duration;

use bytes::Bytes;

use crate::error::redact_url;
use crate::BusError;

const DRIVER: &str = "nats";

pub(crate) struct NatsDriver {
    pub(crate) client: async_nats::Client,
    /// A subject nobody subscribes to; see [`NatsDriver::barrier`].
    barrier_subject: String,
}

/// How long `subscribe` waits for the server to confirm.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(10);

fn connection_error(e: impl std::fmt::Display) -> BusError {
    BusError::Connection {
        driver: DRIVER,
        message: e.to_string(),
    }
}

impl NatsDriver {
    pub(crate) async fn connect(url: &str, instance: &str) -> Result<Self, BusError> {
        let name = format!("rivet-bus:{instance}");
        let client = async_nats::ConnectOptions::new()
            .name(name)
            // Retry fast after a server restart: engine nodes should resume within a second,
            // not after async-nats' default exponential back-off of several seconds.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(2_000))
            })
            .connect(url)
            .await
            .map_err(|e| BusError::Connect {
                driver: DRIVER,
                url: redact_url(url, true),
                message: e.to_string(),
            })?;
        tracing::debug!(url = %redact_url(url, true), "nats bus connected");
        Ok(Self {
            client,
            barrier_subject: format!("_RIVET_BARRIER.{instance}"),
        })
    }

    fn check_size(&self, size: usize) -> Result<(), BusError> {
        let max = self.client.server_info().max_payload;
        if max > 0 && size > max {
            return Err(BusError::PayloadTooLarge { size, max });
        }
        Ok(())
    }

    pub(crate) async fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        self.check_size(payload.len())?;
        let result = match reply {
            None => self.client.publish(subject.to_owned(), payload).await,
            Some(reply) => {
                self.client
                    .publish_with_reply(subject.to_owned(), reply.to_owned(), payload)
                    .await
            }
        };
        result.map_err(connection_error)
    }

    /// Returns once the server has processed everything this client sent before.
    ///
    /// `flush` only empties the socket buffer; the server handles each connection's operations
    /// in order, so a request to a subject nobody subscribes to comes back as "no responders"
    /// only after our earlier SUB was processed. async-nats has no public PING round trip.
    async fn barrier(&self) -> Result<(), BusError> {
        use async_nats::client::RequestErrorKind;
        let request = async_nats::Request::new().timeout(Some(BARRIER_TIMEOUT));
        match self
            .client
            .send_request(self.barrier_subject.clone(), request)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
            Err(e) => Err(connection_error(e)),
        }
    }

    /// Subscribes and waits for the server to have registered the subscription.
    pub(crate) async fn subscribe(
        &self,
        subject: &str,
        group: Option<&str>,
    ) -> Result<async_nats::Subscriber, BusError> {
        let sub = match group {
            None => self.client.subscribe(subject.to_owned()).await,
            Some(group) => {
                self.client
                    .queue_subscribe(subject.to_owned(), group.to_owned())
                    .await
            }
        }
        .map_err(connection_error)?;
        self.barrier().await?;
        Ok(sub)
    }

    pub(crate) async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        use async_nats::client::RequestErrorKind;
        self.check_size(payload.len())?;
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(timeout));
        match self.client.send_request(subject.to_owned(), request).await {
            Ok(msg) => Ok(msg.payload),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => BusError::NoResponders {
                    subject: subject.to_owned(),
                },
                RequestErrorKind::TimedOut => BusError::Timeout {
                    subject: subject.to_owned(),
                    timeout,
                },
                _ => connection_error(e),
            }),
        }
    }

    pub(crate) async fn close(&self) -> Result<(), BusError> {
        // Flush first so messages published just before close still leave.
        self.client.flush().await.map_err(connection_error)?;
        self.client.drain().await.map_err(connection_error)
    }
}
