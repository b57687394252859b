//! Messaging between engine nodes: publish/subscribe, queue groups and request/reply over memory,
//! NATS or PostgreSQL.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rivet_bus::BusError> {
//! use futures::StreamExt;
//! use rivet_bus::{Bus, BusConfig};
//! use std::time::Duration;
//!
//! let bus = Bus::connect(BusConfig::Memory).await?;
//! let mut sub = bus.subscribe("actor.a1.wake").await?; // registered when this returns
//! bus.publish("actor.a1.wake", "hi".into()).await?;
//! let msg = sub.next().await.expect("open");
//! assert_eq!(&msg.payload()[..], b"hi");
//!
//! let mut svc = bus.queue_subscribe("svc.echo", "workers").await?;
//! tokio::spawn(async move {
//!     while let Some(req) = svc.next().await {
//!         let _ = req.respond(req.payload().clone()).await;
//!     }
//! });
//! let reply = bus.request("svc.echo", "ping".into(), Duration::from_secs(1)).await?;
//! # Ok(()) }
//! ```
//!
//! # Semantics (all drivers)
//! - Subjects are exact: dot-separated tokens, no wildcards (see [`validate_subject`]).
//! - Delivery is at most once. Every plain subscriber gets every message published while it is
//!   subscribed; a queue group (same subject + group name, across all nodes) gets each message
//!   once, handed to one member.
//! - Messages from one publisher (one `Bus` and its clones, publishing sequentially) arrive at a
//!   subscriber in publish order.
//! - `subscribe().await` returning means the subscription is registered at the server, so a
//!   publish that starts afterwards reaches it.
//! - `request` fails fast with [`BusError::NoResponders`] when nobody subscribes to the subject
//!   and with [`BusError::Timeout`] when somebody does but no reply comes in time.
//! - After a lost server connection, NATS and PostgreSQL reconnect on their own and restore every
//!   live subscription; messages published while a node is cut off may be lost.
//!
//! The drivers are described in their modules' docs: memory (in process, zero copy), `nats`
//! (async-nats) and `postgres` (LISTEN/NOTIFY, see [`postgres`] for the schema, the payload
//! format, large payloads and how queue groups pick one member across processes).

#![warn(missing_docs)]

mod error;
mod memory;
mod message;
mod nats;
pub mod postgres;
mod registry;
mod stats;
mod subject;
mod subscription;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use error::{redact_url, BusError};
pub use message::Message;
pub use stats::BusStats;
pub use subject::{validate_group, validate_subject, MAX_GROUP_LEN, MAX_SUBJECT_LEN};
pub use subscription::Subscription;

use memory::MemoryDriver;
use nats::NatsDriver;
use postgres::PgDriver;
use registry::Registry;
use stats::Counters;
use subject::INBOX_PREFIX;
use subscription::LocalGuard;

/// Which driver a [`Bus`] uses and where its server is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BusConfig {
    /// In-process only (the default): for a single node. Costs a hash lookup per publish.
    #[default]
    Memory,
    /// A NATS server, e.g. `nats://127.0.0.1:4222`.
    Nats {
        /// Server URL; credentials in it are redacted from errors and logs.
        url: String,
    },
    /// PostgreSQL LISTEN/NOTIFY, e.g. `postgres://postgres@127.0.0.1:5432/test`.
    Postgres {
        /// Connection URL (or libpq key/value string); the password is redacted from errors.
        url: String,
    },
}

/// A handle to the bus. Cloning is cheap (one reference count); clones share connections,
/// subscriptions and [`BusStats`].
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    driver: Driver,
    counters: Counters,
    closed: AtomicBool,
    /// Unique per `Bus::connect`; names inboxes and server-side connections.
    instance_id: String,
    next_request: AtomicU64,
}

enum Driver {
    Memory(MemoryDriver),
    Nats(NatsDriver),
    Postgres(PgDriver),
}

impl Bus {
    /// Connects a bus with the given driver. For NATS and PostgreSQL this opens the connections
    /// and fails with [`BusError::Connect`] (URL redacted) when the server is unreachable.
    pub async fn connect(config: BusConfig) -> Result<Bus, BusError> {
        let instance_id = format!("{:016x}", rand::random::<u64>());
        let driver = match config {
            BusConfig::Memory => Driver::Memory(MemoryDriver::default()),
            BusConfig::Nats { url } => Driver::Nats(NatsDriver::connect(&url, &instance_id).await?),
            BusConfig::Postgres { url } => {
                Driver::Postgres(PgDriver::connect(&url, &instance_id).await?)
            }
        };
        Ok(Bus {
            inner: Arc::new(Inner {
                driver,
                counters: Counters::default(),
                closed: AtomicBool::new(false),
                instance_id,
                next_request: AtomicU64::new(0),
            }),
        })
    }

    /// An in-memory bus, without the `async` of [`Bus::connect`].
    pub fn memory() -> Bus {
        Bus {
            inner: Arc::new(Inner {
                driver: Driver::Memory(MemoryDriver::default()),
                counters: Counters::default(),
                closed: AtomicBool::new(false),
                instance_id: format!("{:016x}", rand::random::<u64>()),
                next_request: AtomicU64::new(0),
            }),
        }
    }

    /// The driver's name: `memory`, `nats` or `postgres`.
    pub fn driver(&self) -> &'static str {
        match &self.inner.driver {
            Driver::Memory(_) => "memory",
            Driver::Nats(_) => "nats",
            Driver::Postgres(_) => "postgres",
        }
    }

    /// A random id unique to this bus (shared by its clones). It names the bus's request inboxes
    /// and its server connections (NATS client name and PostgreSQL `application_name`, both
    /// `rivet-bus…:{id}`), which helps operators find them.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// Cumulative counters since `connect`, shared by all clones.
    pub fn stats(&self) -> BusStats {
        self.inner.counters.snapshot()
    }

    fn check_open(&self) -> Result<(), BusError> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(BusError::Closed)
        } else {
            Ok(())
        }
    }

    /// Publishes `payload` to every subscriber of `subject` (and one member of each queue group).
    /// Publishing to a subject nobody subscribes to is not an error.
    pub async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        validate_subject(subject)?;
        self.publish_inner(subject, None, payload).await
    }

    /// Publishes `payload`, telling how many subscribers got it when the driver knows
    /// (memory: `Some(n)`; NATS and PostgreSQL deliver elsewhere: `None`). Lets a sender
    /// notice at once that nobody listens on a subject it expected to be served.
    pub async fn publish_counted(
        &self,
        subject: &str,
        payload: Bytes,
    ) -> Result<Option<usize>, BusError> {
        validate_subject(subject)?;
        self.check_open()?;
        let delivered = match &self.inner.driver {
            Driver::Memory(m) => Some(m.publish(subject, None, payload)),
            Driver::Nats(n) => {
                n.publish(subject, None, payload).await?;
                None
            }
            Driver::Postgres(p) => {
                p.publish(subject, None, payload).await?;
                None
            }
        };
        Counters::incr(&self.inner.counters.published);
        Ok(delivered)
    }

    /// Publishes `payload` with a reply subject, for callers that collect replies themselves.
    pub async fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: Bytes,
    ) -> Result<(), BusError> {
        validate_subject(subject)?;
        validate_subject(reply)?;
        self.publish_inner(subject, Some(reply), payload).await
    }

    /// Publishes a reply: the subject came from a received message, so it is not re-validated
    /// (NATS inboxes of other clients need not follow our subject rules).
    pub(crate) async fn publish_reply(&self, reply: &str, payload: Bytes) -> Result<(), BusError> {
        self.publish_inner(reply, None, payload).await
    }

    async fn publish_inner(
        &self,
        subject: &str,
        reply: Option<&str>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        self.check_open()?;
        match &self.inner.driver {
            Driver::Memory(m) => {
                m.publish(subject, reply.map(Arc::from), payload);
            }
            Driver::Nats(n) => n.publish(subject, reply, payload).await?,
            Driver::Postgres(p) => p.publish(subject, reply, payload).await?,
        }
        Counters::incr(&self.inner.counters.published);
        Ok(())
    }

    /// Subscribes to `subject`. When this returns, the subscription is registered with the
    /// server: anything published afterwards reaches it.
    pub async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        validate_subject(subject)?;
        self.subscribe_inner(subject, None).await
    }

    /// Joins queue group `group` on `subject`: each message goes to one member of the group,
    /// across every bus (node) connected to the same server.
    pub async fn queue_subscribe(
        &self,
        subject: &str,
        group: &str,
    ) -> Result<Subscription, BusError> {
        validate_subject(subject)?;
        validate_group(group)?;
        self.subscribe_inner(subject, Some(group)).await
    }

    async fn subscribe_inner(
        &self,
        subject: &str,
        group: Option<&str>,
    ) -> Result<Subscription, BusError> {
        self.check_open()?;
        let subject: Arc<str> = Arc::from(subject);
        match &self.inner.driver {
            Driver::Memory(m) => {
                let (rx, guard) = local_subscribe(&m.registry, &subject, group, None);
                Ok(Subscription::local(self.clone(), rx, guard))
            }
            Driver::Nats(n) => {
                let sub = n.subscribe(&subject, group).await?;
                Ok(Subscription::nats(self.clone(), subject, sub))
            }
            Driver::Postgres(p) => {
                let (rx, guard) =
                    local_subscribe(&p.registry, &subject, group, Some(p.control.clone()));
                // Always wait for the listener, even when another subscription of this subject
                // exists: its LISTEN may still be in flight.
                p.listen(subject.clone()).await?;
                Ok(Subscription::local(self.clone(), rx, guard))
            }
        }
    }

    /// Sends a request and waits up to `timeout` for the first reply.
    ///
    /// Fails with [`BusError::NoResponders`] when no subscriber exists for `subject` and with
    /// [`BusError::Timeout`] when no reply arrives in time.
    pub async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        validate_subject(subject)?;
        self.check_open()?;
        Counters::incr(&self.inner.counters.requests);
        let result = self.request_inner(subject, payload, timeout).await;
        match &result {
            Err(BusError::NoResponders { .. }) => {
                Counters::incr(&self.inner.counters.no_responders)
            }
            Err(BusError::Timeout { .. }) => Counters::incr(&self.inner.counters.timeouts),
            _ => {}
        }
        result
    }

    async fn request_inner(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        let (registry, control) = match &self.inner.driver {
            Driver::Nats(n) => {
                let reply = n.request(subject, payload, timeout).await?;
                Counters::incr(&self.inner.counters.published);
                return Ok(reply);
            }
            Driver::Memory(m) => (&m.registry, None),
            Driver::Postgres(p) => (&p.registry, Some(p)),
        };
        let seq = self.inner.next_request.fetch_add(1, Ordering::Relaxed);
        let inbox: Arc<str> = Arc::from(format!("{INBOX_PREFIX}{}.{seq}", self.inner.instance_id));
        // The inbox lives only in the local registry: the PostgreSQL listener already listens
        // on this bus's inbox channel, so no round trip is needed to receive the reply.
        let (mut rx, _guard) = local_subscribe(registry, &inbox, None, None);
        let delivered = match control {
            None => registry.deliver_all(subject, &payload, &Some(inbox.clone())) > 0,
            Some(p) => p.publish_if_interest(subject, &inbox, payload).await?,
        };
        if !delivered {
            return Err(BusError::NoResponders {
                subject: subject.to_owned(),
            });
        }
        Counters::incr(&self.inner.counters.published);
        match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(reply)) => Ok(reply.payload),
            Ok(None) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout {
                subject: subject.to_owned(),
                timeout,
            }),
        }
    }

    /// Closes the bus for all clones: ends every subscription stream, flushes what was published
    /// (NATS) and releases the server connections. Later calls fail with [`BusError::Closed`].
    pub async fn close(&self) -> Result<(), BusError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match &self.inner.driver {
            Driver::Memory(m) => {
                m.registry.clear();
                Ok(())
            }
            Driver::Nats(n) => n.close().await,
            Driver::Postgres(p) => p.close().await,
        }
    }
}

fn local_subscribe(
    registry: &Arc<Registry>,
    subject: &Arc<str>,
    group: Option<&str>,
    control: Option<tokio::sync::mpsc::UnboundedSender<postgres::Control>>,
) -> (registry::Rx, LocalGuard) {
    let (id, rx, _first) = registry.add(subject, group);
    let guard = LocalGuard {
        registry: registry.clone(),
        subject: subject.clone(),
        id,
        control,
    };
    (rx, guard)
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("driver", &self.driver())
            .field("instance_id", &self.inner.instance_id)
            .finish()
    }
}
