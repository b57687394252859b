//! The engine keeps creating and waking actors while both cores are saturated by other
//! processes (the reference engine stops running new work for 15 s to minutes then).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rivet_engine::Engine;
use rivet_envoy_protocol::Command as EnvoyCommand;
use rivet_orchestrator::lifecycle::WaitOutcome;
use rivet_test_host::{HostOptions, TestHost};
use rivet_test_support::{engine_config, send};
use serde_json::json;

/// Busy loops at normal priority, killed on drop.
struct Burners(Vec<Child>);

impl Burners {
    fn start(n: usize) -> Burners {
        Burners(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .stdout(Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
}

impl Drop for Burners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_and_wakes_keep_flowing_with_both_cores_busy() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("data");
    let engine = Engine::start(&engine_config(
        home.path(),
        &[("RIVET__file_system__path", dir.to_str().unwrap())],
    ))
    .await
    .unwrap();
    let addr = engine.guard_addr();
    let response = send(
        addr,
        "PUT",
        "/runner-configs/default?namespace=default",
        &[("content-type", "application/json")],
        &json!({"datacenters": {"default": {"normal": {}}}}).to_string(),
    )
    .await;
    assert_eq!(response.status, 200);
    let host = TestHost::connect(HostOptions::new(format!("http://{addr}"), "default"))
        .await
        .unwrap();
    let _burners = Burners::start(2);
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..50 {
        let response = send(
            addr,
            "POST",
            "/actors?namespace=default",
            &[("content-type", "application/json")],
            &json!({"name": "a", "key": format!("k{i}"), "runner_name_selector": "default", "crash_policy": "sleep"}).to_string(),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        ids.push(
            response.json()["actor"]["actor_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        assert_eq!(
            host.wait_running(id, Duration::from_secs(10)).await,
            Some(1)
        );
    }
    // Sleep a few and wake them again.
    for id in ids.iter().take(10) {
        host.sleep_intent(id, 1).await.unwrap();
    }
    let mut stops = 0;
    while stops < 10 {
        let command = host
            .next_command(Duration::from_secs(10))
            .await
            .expect("stop commands stalled");
        if let EnvoyCommand::StopActor(_) = command.inner {
            stops += 1;
        }
    }
    for id in ids.iter().take(10) {
        let actor = id.parse().unwrap();
        // Wait for the stop to land before waking (a wake while stopping restarts at once too).
        let outcome = engine
            .shell()
            .wake(actor, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            matches!(outcome, WaitOutcome::Ready { generation: 2, .. }),
            "{outcome:?}"
        );
    }
    // Generous: the point is that nothing stalls for many seconds, as the reference does.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
