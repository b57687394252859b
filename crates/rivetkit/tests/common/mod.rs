//! Shared fixtures: a registry of test actors on an in-process engine.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use rivetkit::{EmbeddedOptions, Registry, RegistryConfig, RunningRegistry};

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Configuration independent of the environment the tests run in.
pub fn config() -> RegistryConfig {
    RegistryConfig {
        endpoint: "http://127.0.0.1:6420".into(),
        token: None,
        namespace: "default".into(),
        pool: "default".into(),
        version: 1,
        region: "test-region".into(),
        drain_timeout: Duration::from_secs(30),
    }
}

/// Starts `registry` with an embedded engine on a free port, storing in `dir` (memory when
/// `None`).
pub async fn start_embedded(registry: Registry, dir: Option<&Path>) -> RunningRegistry {
    init_tracing();
    registry
        .config(config())
        .start_embedded_with(EmbeddedOptions {
            data_dir: dir.map(Path::to_path_buf),
            port: 0,
        })
        .await
        .expect("embedded registry starts")
}

/// A standalone engine storing in `dir` on a free port, and its endpoint URL, for tests
/// whose hosts come and go (or are child processes) while the engine stays.
pub async fn start_engine(dir: &Path) -> (rivet_engine::Engine, String) {
    let engine = rivet_engine::Engine::start(&rivet_test_support::engine_config(dir, &[]))
        .await
        .expect("engine starts");
    let endpoint = format!("http://{}", engine.guard_addr());
    (engine, endpoint)
}

/// Polls `check` until it returns `Some`, failing after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The engine's address from a registry's endpoint.
pub fn addr(running: &RunningRegistry) -> std::net::SocketAddr {
    running
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .expect("endpoint is http://ip:port")
}

/// The engine's view of an actor (`GET /actors?actor_ids=`).
pub async fn actor_view(running: &RunningRegistry, actor_id: &str) -> serde_json::Value {
    let response = rivet_test_support::get(
        addr(running),
        &format!("/actors?namespace=default&actor_ids={actor_id}"),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["actors"][0].clone()
}

/// Waits until the engine reports the actor asleep.
pub async fn wait_asleep(running: &RunningRegistry, actor_id: &str) {
    eventually(Duration::from_secs(20), "actor asleep", || async {
        let view = actor_view(running, actor_id).await;
        (!view["sleep_ts"].is_null()).then_some(())
    })
    .await
}

/// Waits until the engine reports the actor destroyed.
pub async fn wait_destroyed(running: &RunningRegistry, actor_id: &str) {
    eventually(Duration::from_secs(20), "actor destroyed", || async {
        let view = actor_view(running, actor_id).await;
        (!view["destroy_ts"].is_null()).then_some(())
    })
    .await
}

/// The body of a test binary's host-process entry point (an ignored `#[test]` its tests
/// start as a child process with [`spawn_self`]): serves `registry` on the engine at
/// `endpoint` until SIGTERM, then drains.
pub fn serve_until_terminated(registry: Registry, endpoint: String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let running = registry
            .config(RegistryConfig {
                endpoint,
                ..config()
            })
            .start()
            .await
            .unwrap();
        running.wait().await.unwrap();
    });
}

/// Starts the ignored test `test` of this test binary as a child process (killed on drop).
pub fn spawn_self(test: &str, env: &[(&str, &str)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--ignored", "--exact", test, "--nocapture"])
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().unwrap()
}
