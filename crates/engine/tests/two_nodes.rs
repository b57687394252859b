//! Two engine processes on one PostgreSQL database and one NATS server behave as one engine:
//! an actor created through one is started by a host connected to the other, and a sleep asked
//! of one reaches the host through the other.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rivet_envoy_protocol::{Command as EnvoyCommand, StopActorReason};
use rivet_test_host::{HostOptions, TestHost};
use rivet_test_support::{free_port, get, send, wait_healthy};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_rivet-engine");
const WAIT: Duration = Duration::from_secs(15);

fn pg_base() -> String {
    std::env::var("RIVET_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn nats_url() -> String {
    std::env::var("RIVET_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// A fresh database for this test, dropped at the end.
struct Database {
    name: String,
    admin: tokio_postgres::Client,
}

impl Database {
    async fn create() -> Database {
        let (admin, conn) = tokio_postgres::connect(&pg_base(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let name = format!("rivet_two_nodes_{:016x}", rand::random::<u64>());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Database { name, admin }
    }

    fn url(&self) -> String {
        // Same server and credentials, other database.
        let base = pg_base();
        let (server, _) = base.rsplit_once('/').unwrap();
        format!("{server}/{}", self.name)
    }

    async fn drop_it(self) {
        let _ = self
            .admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

struct Node {
    child: Child,
    guard: SocketAddr,
    _home: tempfile::TempDir,
}

impl Node {
    async fn start(database: &str) -> Node {
        let home = tempfile::tempdir().unwrap();
        let guard_port = free_port();
        let child = Command::new(BIN)
            .arg("start")
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RIVET__guard__port", guard_port.to_string())
            .env("RIVET__api_peer__port", free_port().to_string())
            .env("RIVET__metrics__port", free_port().to_string())
            .env("RIVET__postgres__url", database)
            .env("RIVET__pubsub__nats__url", nats_url())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let guard: SocketAddr = format!("127.0.0.1:{guard_port}").parse().unwrap();
        wait_healthy(guard, WAIT).await;
        Node {
            child,
            guard,
            _home: home,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_actor_created_on_one_node_runs_on_a_host_of_the_other() {
    let database = Database::create().await;
    let url = database.url();
    // One after the other: both create the default namespace; the second finds it.
    let a = Node::start(&url).await;
    let b = Node::start(&url).await;
    let namespaces = get(b.guard, "/namespaces").await.json();
    assert_eq!(namespaces["namespaces"].as_array().unwrap().len(), 1);

    let response = send(
        a.guard,
        "PUT",
        "/runner-configs/default?namespace=default",
        &[("content-type", "application/json")],
        &json!({"datacenters": {"default": {"normal": {}}}}).to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);

    // The host connects to node B only.
    let host = TestHost::connect(HostOptions::new(format!("http://{}", b.guard), "default"))
        .await
        .unwrap();
    let response = send(
        a.guard,
        "POST",
        "/actors?namespace=default",
        &[("content-type", "application/json")],
        &json!({"name": "counter", "key": "x", "runner_name_selector": "default", "crash_policy": "sleep"}).to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let id = response.json()["actor"]["actor_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));

    // Node A sees it connectable (the Running event was written through node B).
    let deadline = Instant::now() + WAIT;
    loop {
        let actor = get(
            a.guard,
            &format!("/actors?namespace=default&actor_ids={id}"),
        )
        .await
        .json();
        if actor["actors"][0]["connectable_ts"].is_i64() {
            break;
        }
        assert!(Instant::now() < deadline, "never connectable: {actor}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A gateway request to node A is tunnelled to the host on node B (over NATS) and back.
    let host = std::sync::Arc::new(host);
    let server = host.clone();
    let answering = tokio::spawn(async move {
        while let Some(message) = server.next_tunnel_message(WAIT).await {
            if let rivet_envoy_protocol::ToEnvoyTunnelMessageKind::RequestStart(start) =
                message.message_kind
            {
                let answer = rivet_envoy_protocol::ToRivet::TunnelMessage(
                    rivet_envoy_protocol::ToRivetTunnelMessage {
                        message_id: message.message_id,
                        message_kind: rivet_envoy_protocol::ToRivetTunnelMessageKind::ResponseStart(
                            rivet_envoy_protocol::ToRivetResponseStart {
                                status: 200,
                                headers: Default::default(),
                                body: Some(format!("via B: {}", start.path).into_bytes()),
                                stream: false,
                            },
                        ),
                    },
                );
                let _ = server.send_raw(answer).await;
                return;
            }
        }
    });
    let response = send(a.guard, "GET", &format!("/gateway/{id}/hello?x=1"), &[], "").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, "via B: /hello?x=1");
    answering.await.unwrap();

    // A sleep asked of node A reaches the host through node B.
    let response = send(
        a.guard,
        "POST",
        &format!("/actors/{id}/sleep?namespace=default"),
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    loop {
        let command = host.next_command(WAIT).await.expect("no stop arrived");
        if let EnvoyCommand::StopActor(stop) = command.inner {
            assert_eq!(stop.reason, StopActorReason::SleepIntent);
            break;
        }
    }
    drop(a);
    drop(b);
    database.drop_it().await;
}
