//! `kill -9` of the engine process: actors, alarms and keys survive, and the actors of a host
//! that died together with the engine's socket are declared lost after the threshold (no
//! disconnect was ever recorded for it).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rivet_test_host::{HostOptions, TestHost};
use rivet_test_support::{free_port, get, send, wait_healthy};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_rivet-engine");

struct Ports {
    guard: u16,
    peer: u16,
    metrics: u16,
}

fn start(home: &Path, ports: &Ports) -> Child {
    Command::new(BIN)
        .arg("start")
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RIVET__guard__port", ports.guard.to_string())
        .env("RIVET__api_peer__port", ports.peer.to_string())
        .env("RIVET__metrics__port", ports.metrics.to_string())
        .env("RIVET__file_system__path", home.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn actor(addr: SocketAddr, id: &str) -> Value {
    get(addr, &format!("/actors?namespace=default&actor_ids={id}"))
        .await
        .json()["actors"][0]
        .clone()
}

#[tokio::test]
async fn actors_and_alarms_survive_kill_9_and_a_dead_host_is_declared_lost() {
    let home = tempfile::tempdir().unwrap();
    let ports = Ports {
        guard: free_port(),
        peer: free_port(),
        metrics: free_port(),
    };
    let addr: SocketAddr = format!("127.0.0.1:{}", ports.guard).parse().unwrap();
    let mut engine = start(home.path(), &ports);
    wait_healthy(addr, Duration::from_secs(15)).await;
    let response = send(
        addr,
        "PUT",
        "/runner-configs/default?namespace=default",
        &[("content-type", "application/json")],
        &json!({"datacenters": {"default": {"normal": {}}}}).to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let host = TestHost::connect(HostOptions::new(format!("http://{addr}"), "default"))
        .await
        .unwrap();
    let create = |key: &'static str| async move {
        let response = send(
            addr,
            "POST",
            "/actors?namespace=default",
            &[("content-type", "application/json")],
            &json!({"name": "c", "key": key, "runner_name_selector": "default", "crash_policy": "sleep"})
                .to_string(),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()["actor"]["actor_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let busy = create("busy").await;
    let sleepy = create("sleepy").await;
    assert_eq!(
        host.wait_running(&busy, Duration::from_secs(10)).await,
        Some(1)
    );
    assert_eq!(
        host.wait_running(&sleepy, Duration::from_secs(10)).await,
        Some(1)
    );
    // The sleepy actor sleeps with an alarm a few seconds out.
    let alarm = rivet_orchestrator::shell::now_ms() + 4_000;
    host.set_alarm(&sleepy, 1, Some(alarm)).await.unwrap();
    host.sleep_intent(&sleepy, 1).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !actor(addr, &sleepy).await["sleep_ts"].is_i64()
        || actor(addr, &sleepy).await["connectable_ts"].is_i64()
    {
        assert!(Instant::now() < deadline, "never slept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The engine dies hard, and its host with it.
    engine.kill().unwrap();
    engine.wait().unwrap();
    host.kill();
    let mut engine = start(home.path(), &ports);
    wait_healthy(addr, Duration::from_secs(15)).await;

    // Everything is still there, the key still taken.
    assert!(actor(addr, &busy).await["connectable_ts"].is_i64());
    let duplicate = send(
        addr,
        "POST",
        "/actors?namespace=default",
        &[("content-type", "application/json")],
        &json!({"name": "c", "key": "busy", "runner_name_selector": "default", "crash_policy": "sleep"})
            .to_string(),
    )
    .await;
    assert_eq!(duplicate.json()["code"], "duplicate_key");

    // A new host takes the alarm: the sleeping actor starts there at its time.
    let fresh = TestHost::connect(HostOptions::new(format!("http://{addr}"), "default"))
        .await
        .unwrap();
    assert_eq!(
        fresh.wait_running(&sleepy, Duration::from_secs(15)).await,
        Some(2)
    );
    assert!(rivet_orchestrator::shell::now_ms() >= alarm);

    // The dead host's running actor is declared lost (threshold 15 s, sweep every 5 s).
    let deadline = Instant::now() + Duration::from_secs(40);
    let lost = loop {
        let a = actor(addr, &busy).await;
        if a["sleep_ts"].is_i64() {
            break a;
        }
        assert!(Instant::now() < deadline, "never lost: {a}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(lost["error"]["envoy_connection_lost"].is_object(), "{lost}");
    assert!(lost["connectable_ts"].is_null(), "{lost}");
    engine.kill().unwrap();
    engine.wait().unwrap();
}
