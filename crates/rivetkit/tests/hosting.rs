//! Hosting against a separate engine: namespace and token from the endpoint, the pool's runner
//! config created on start, a refused token reported, reconnecting after an engine restart
//! without restarting actors, and draining on SIGTERM.

mod common;

use std::time::Duration;

use rivet_engine::Engine;
use rivet_test_support::{engine_config, free_port, send};
use rivetkit::{actor, Ctx, HostError, Registry, RegistryConfig};
use rivetkit_client::Client;
use serde::{Deserialize, Serialize};
use tokio::process::Child;

#[derive(Default, Serialize, Deserialize)]
struct Tally {
    count: u64,
    slept: bool,
}

/// Counts the actor's own starts; lives only in memory.
#[derive(Default)]
struct Boots {
    calls: u64,
}

#[actor(rename_all = "camelCase")]
impl Tally {
    async fn create_vars() -> Boots {
        Boots::default()
    }

    async fn on_sleep(&mut self) {
        self.slept = true;
    }

    /// `(count, calls since this start, generation, slept before)`
    async fn bump(&mut self, ctx: &mut Ctx<Self>) -> (u64, u64, u32, bool) {
        self.count += 1;
        ctx.vars_mut().calls += 1;
        (self.count, ctx.vars().calls, ctx.generation(), self.slept)
    }
}

fn registry(config: RegistryConfig) -> Registry {
    Registry::new().register::<Tally>("tally").config(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_token_from_the_endpoint() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&engine_config(
        dir.path(),
        &[("RIVET__auth__admin_token", "s3cret")],
    ))
    .await
    .unwrap();
    let addr = engine.guard_addr();
    let created = send(
        addr,
        "POST",
        "/namespaces",
        &[
            ("authorization", "Bearer s3cret"),
            ("content-type", "application/json"),
        ],
        r#"{"name":"team","display_name":"Team"}"#,
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);

    // A wrong token is a configuration error, reported at once.
    let refused = registry(RegistryConfig {
        endpoint: format!("http://team:wrong@{addr}"),
        ..common::config()
    })
    .start()
    .await;
    match refused {
        Err(HostError::Api { .. } | HostError::Refused { .. }) => {}
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("a wrong token was accepted"),
    }

    let host = registry(RegistryConfig {
        endpoint: format!("http://team:s3cret@{addr}"),
        pool: "workers".into(),
        ..common::config()
    })
    .start()
    .await
    .unwrap();
    let configs = send(
        addr,
        "GET",
        "/runner-configs?namespace=team",
        &[("authorization", "Bearer s3cret")],
        "",
    )
    .await;
    assert!(
        !configs.json()["runner_configs"]["workers"].is_null(),
        "the pool's runner config was created: {}",
        configs.body
    );
    let client = Client::builder(format!("http://{addr}"))
        .namespace("team")
        .pool("workers")
        .token("s3cret")
        .build()
        .unwrap();
    let t = client.get_or_create("tally", ["t"]);
    let (count, ..): (u64, u64, u32, bool) = t.action("bump", ()).await.unwrap();
    assert_eq!(count, 1);
    assert_eq!(host.actor_count(), 1);
    // Other namespaces do not see it.
    let other = Client::builder(format!("http://{addr}"))
        .token("s3cret")
        .build()
        .unwrap();
    assert!(other.get("tally", ["t"]).resolve().await.is_err());
    host.shutdown().await.unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_reconnects_after_an_engine_restart_and_its_actors_keep_running() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = [("RIVET__guard__port", port.as_str())];
    let engine = Engine::start(&engine_config(dir.path(), &env))
        .await
        .unwrap();
    let endpoint = format!("http://{}", engine.guard_addr());
    let host = registry(RegistryConfig {
        endpoint: endpoint.clone(),
        ..common::config()
    })
    .start()
    .await
    .unwrap();
    let client = Client::new(&endpoint).unwrap();
    let t = client.get_or_create("tally", ["steady"]);
    let first: (u64, u64, u32, bool) = t.action("bump", ()).await.unwrap();
    assert_eq!(first, (1, 1, 1, false));

    engine.shutdown().await.unwrap();
    let engine = Engine::start(&engine_config(dir.path(), &env))
        .await
        .unwrap();
    // The host reconnects with the same key: the engine replays what it had not seen
    // acknowledged, and the actor, still running in the host, is neither restarted nor
    // duplicated (its in-memory vars kept counting).
    let second: (u64, u64, u32, bool) = common::eventually(
        Duration::from_secs(30),
        "served after the restart",
        || async { t.action("bump", ()).await.ok() },
    )
    .await;
    assert_eq!(second, (2, 2, 1, false));
    assert_eq!(host.actor_count(), 1);
    host.shutdown().await.unwrap();
    engine.shutdown().await.unwrap();
}

/// Not a test: a host the SIGTERM test runs as a child process.
#[test]
#[ignore = "helper process of the SIGTERM test"]
fn host_process() {
    if let Ok(endpoint) = std::env::var("HOSTING_ENDPOINT") {
        common::serve_until_terminated(Registry::new().register::<Tally>("tally"), endpoint);
    }
}

fn spawn_host(endpoint: &str) -> Child {
    common::spawn_self("host_process", &[("HOSTING_ENDPOINT", endpoint)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_host() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (engine, endpoint) = common::start_engine(dir.path()).await;
    let mut child = spawn_host(&endpoint);
    let client = Client::new(&endpoint).unwrap();
    let t = client.get_or_create("tally", ["drained"]);
    let first: (u64, u64, u32, bool) =
        common::eventually(Duration::from_secs(60), "child host serving", || async {
            t.action("bump", ()).await.ok()
        })
        .await;
    assert_eq!(first.0, 1);

    let pid = child.id().expect("child running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the host exits after draining")
        .unwrap();
    assert!(exit.success(), "host exit status {exit}");

    // The actor stopped gracefully (on_sleep ran and was saved) rather than being lost.
    let mut next = spawn_host(&endpoint);
    let after: (u64, u64, u32, bool) =
        common::eventually(Duration::from_secs(60), "new host serving", || async {
            t.action("bump", ()).await.ok()
        })
        .await;
    assert_eq!(after.0, 2);
    assert!(after.3, "on_sleep's change was saved during the drain");
    next.start_kill().unwrap();
    next.wait().await.unwrap();
    engine.shutdown().await.unwrap();
}
