//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use rivet_bus::{Bus, BusConfig, Message, Subscription};

/// The shared NATS server (`RIVET_TEST_NATS_URL`, default nats://127.0.0.1:4222).
pub fn nats_url() -> String {
    std::env::var("RIVET_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The test database (`RIVET_TEST_PG_URL`, default postgres://postgres@127.0.0.1:5432/test).
pub fn pg_url() -> String {
    std::env::var("RIVET_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Upper bound for anything the tests wait for; generous because the machine is shared.
pub const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy)]
pub enum DriverKind {
    Memory,
    Nats,
    Postgres,
}

impl DriverKind {
    pub fn config(self) -> BusConfig {
        match self {
            DriverKind::Memory => BusConfig::Memory,
            DriverKind::Nats => BusConfig::Nats { url: nats_url() },
            DriverKind::Postgres => BusConfig::Postgres { url: pg_url() },
        }
    }

    pub async fn connect(self) -> Bus {
        Bus::connect(self.config()).await.unwrap()
    }
}

/// A subject prefix no other test uses.
pub fn prefix() -> String {
    format!("t{:016x}", rand::random::<u64>())
}

/// The next message, or a panic after `within`.
pub async fn next_within(sub: &mut Subscription, within: Duration) -> Message {
    tokio::time::timeout(within, sub.next())
        .await
        .unwrap_or_else(|_| panic!("no message on {} within {within:?}", sub.subject()))
        .unwrap_or_else(|| panic!("subscription {} ended", sub.subject()))
}
