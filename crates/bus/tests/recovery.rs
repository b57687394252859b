//! Recovery after the connection to the server drops (not applicable to the memory driver,
//! which has no server).
//!
//! NATS: the test runs its own short-lived `nats-server` on a free port and kills and restarts
//! it, leaving the machine's shared server alone. PostgreSQL: the test terminates the bus's
//! backends (`pg_terminate_backend`, found by `application_name`).

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{next_within, pg_url, prefix, WAIT};
use futures::StreamExt;
use rivet_bus::{Bus, BusConfig, BusError, Subscription};

/// Publishes from `from` until `sub` receives one (the reconnect is asynchronous), then returns
/// the payload it got.
async fn publish_until_received(from: &Bus, subject: &str, sub: &mut Subscription) -> Bytes {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no delivery after reconnect");
        // A publish may fail while the publisher itself is reconnecting; keep trying.
        let _ = from.publish(subject, "after".into()).await;
        if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            return msg.into_payload();
        }
    }
}

async fn request_until_ok(from: &Bus, subject: &str) -> Bytes {
    let deadline = Instant::now() + WAIT;
    loop {
        match from
            .request(subject, "ping".into(), Duration::from_millis(500))
            .await
        {
            Ok(reply) => return reply,
            Err(e) => assert!(Instant::now() < deadline, "request never recovered: {e}"),
        }
    }
}

fn spawn_echo(mut svc: Subscription) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(req) = svc.next().await {
            let _ = req.respond(req.payload().clone()).await;
        }
    })
}

struct NatsServer {
    child: Child,
    port: u16,
}

impl NatsServer {
    async fn start(port: u16) -> Self {
        // The Debian package installs it in /usr/sbin, which is not on every PATH.
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server installed (apt-get install nats-server)");
        let deadline = Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::task::yield_now().await;
        }
        Self { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_recovers_after_server_restart() {
    let mut server = NatsServer::start(free_port()).await;
    let config = BusConfig::Nats { url: server.url() };
    let a = Bus::connect(config.clone()).await.unwrap();
    let b = Bus::connect(config).await.unwrap();
    let p = prefix();
    let subject = format!("{p}.events");
    let svc_subject = format!("{p}.svc");
    let mut sub = b.subscribe(&subject).await.unwrap();
    let echo = spawn_echo(b.queue_subscribe(&svc_subject, "svc").await.unwrap());
    a.publish(&subject, "before".into()).await.unwrap();
    assert_eq!(&next_within(&mut sub, WAIT).await.payload()[..], b"before");

    let port = server.port;
    server.stop();
    let _restarted = NatsServer::start(port).await;

    assert_eq!(
        &publish_until_received(&a, &subject, &mut sub).await[..],
        b"after"
    );
    assert_eq!(&request_until_ok(&a, &svc_subject).await[..], b"ping");
    echo.abort();
}

async fn terminate_backends(bus: &Bus) -> usize {
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let pattern = format!("rivet-bus%:{}", bus.instance_id());
    let rows = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1",
            &[&pattern],
        )
        .await
        .unwrap();
    rows.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_recovers_after_backends_are_terminated() {
    let config = BusConfig::Postgres { url: pg_url() };
    let a = Bus::connect(config.clone()).await.unwrap();
    let b = Bus::connect(config).await.unwrap();
    let p = prefix();
    let subject = format!("{p}.events");
    let back = format!("{p}.back");
    let svc_subject = format!("{p}.svc");
    let mut sub = b.subscribe(&subject).await.unwrap();
    let mut back_sub = a.subscribe(&back).await.unwrap();
    let echo = spawn_echo(b.queue_subscribe(&svc_subject, "svc").await.unwrap());
    a.publish(&subject, "before".into()).await.unwrap();
    assert_eq!(&next_within(&mut sub, WAIT).await.payload()[..], b"before");

    // Both of b's connections: the listener and the query connection.
    assert_eq!(terminate_backends(&b).await, 2);

    // b's listener reconnects and LISTENs again.
    assert_eq!(
        &publish_until_received(&a, &subject, &mut sub).await[..],
        b"after"
    );
    // b's query connection reconnects on its next use, the publish itself succeeding.
    b.publish(&back, "from b".into()).await.unwrap();
    assert_eq!(
        &next_within(&mut back_sub, WAIT).await.payload()[..],
        b"from b"
    );
    // Queue group + inbox channel work again.
    assert_eq!(&request_until_ok(&a, &svc_subject).await[..], b"ping");

    // The publisher's connections drop: its very next publish still succeeds (one retry).
    assert_eq!(terminate_backends(&a).await, 2);
    a.publish(&subject, "after publisher reconnect".into())
        .await
        .unwrap();
    loop {
        let msg = next_within(&mut sub, WAIT).await;
        if &msg.payload()[..] == b"after publisher reconnect" {
            break;
        }
    }
    echo.abort();
}

#[tokio::test]
async fn postgres_unreachable_is_a_connect_error() {
    let err = Bus::connect(BusConfig::Postgres {
        url: "postgres://postgres:pw@127.0.0.1:1/test".into(),
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            BusError::Connect {
                driver: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
}
