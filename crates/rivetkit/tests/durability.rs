//! Acknowledged means durable: the actor host runs in a child process that is killed with
//! SIGKILL while callers are incrementing counters; a new host then serves the actors, and
//! every increment a caller saw acknowledged is there.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rivetkit::{actor, Registry, RegistryConfig};
use rivetkit_client::Client;
use serde::{Deserialize, Serialize};
use tokio::process::Child;
use tokio::sync::Mutex;

#[derive(Default, Serialize, Deserialize)]
struct Ledger {
    count: u64,
    /// Grows the state past one storage chunk now and then.
    padding: String,
}

#[actor]
impl Ledger {
    async fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        if self.count.is_multiple_of(50) {
            self.padding = "x".repeat(130 * 1024 * usize::from(self.padding.is_empty()));
        }
        self.count
    }

    async fn count(&self) -> u64 {
        self.count
    }
}

/// Not a test: the actor host the durability test starts as a child process and kills.
#[test]
#[ignore = "helper process of the durability test"]
fn host_process() {
    if let Ok(endpoint) = std::env::var("DURABILITY_ENDPOINT") {
        common::serve_until_terminated(Registry::new().register::<Ledger>("ledger"), endpoint);
    }
}

fn spawn_host(endpoint: &str) -> Child {
    common::spawn_self("host_process", &[("DURABILITY_ENDPOINT", endpoint)])
}

const ACTORS: usize = 8;
const CALLERS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_actions_survive_kill_9_of_the_host() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (engine, endpoint) = common::start_engine(dir.path()).await;
    let mut host = spawn_host(&endpoint);
    let client = Client::new(&endpoint).unwrap();
    let handles: Vec<_> = (0..ACTORS)
        .map(|i| client.get_or_create("ledger", [format!("l{i}")]))
        .collect();
    // Every actor started and answering before the load begins.
    for h in &handles {
        common::eventually(Duration::from_secs(60), "host serving", || async {
            h.action::<_, u64>("count", ()).await.ok()
        })
        .await;
    }

    // The highest count each actor acknowledged.
    let acked = Arc::new(Mutex::new(vec![0u64; ACTORS]));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut callers = Vec::new();
    for c in 0..CALLERS {
        let handles = handles.clone();
        let acked = acked.clone();
        let stop = stop_rx.clone();
        callers.push(tokio::spawn(async move {
            let mut i = c;
            while !*stop.borrow() {
                let a = i % ACTORS;
                if let Ok(count) = handles[a].action::<_, u64>("add", (1,)).await {
                    let mut acked = acked.lock().await;
                    acked[a] = acked[a].max(count);
                }
                i += 1;
            }
        }));
    }
    common::eventually(Duration::from_secs(60), "load under way", || async {
        (acked.lock().await.iter().sum::<u64>() >= 400).then_some(())
    })
    .await;
    host.start_kill().unwrap();
    host.wait().await.unwrap();
    let _ = stop_tx.send(true);
    for c in callers {
        c.await.unwrap();
    }
    let acked = acked.lock().await.clone();

    let mut host = spawn_host(&endpoint);
    for (i, h) in handles.iter().enumerate() {
        let count: u64 =
            common::eventually(Duration::from_secs(60), "new host serving", || async {
                h.action::<_, u64>("count", ()).await.ok()
            })
            .await;
        assert!(
            count >= acked[i],
            "actor l{i}: {count} stored, {} acknowledged",
            acked[i]
        );
    }
    host.start_kill().unwrap();
    host.wait().await.unwrap();
    engine.shutdown().await.unwrap();
}

/// Relaxed persistence: replies do not wait for storage; changes are saved within the interval.
#[derive(Default, Serialize, Deserialize)]
struct Loose {
    count: u64,
}

#[actor]
impl Loose {
    fn options() -> rivetkit::ActorOptions {
        rivetkit::ActorOptions {
            persistence: rivetkit::Persistence::Relaxed {
                interval: Duration::from_millis(200),
            },
            ..rivetkit::ActorOptions::default()
        }
    }

    async fn add(&mut self) -> u64 {
        self.count += 1;
        self.count
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxed_mode_saves_within_its_interval() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (engine, endpoint) = common::start_engine(dir.path()).await;
    let config = || RegistryConfig {
        endpoint: endpoint.clone(),
        ..common::config()
    };
    let start = || {
        Registry::new()
            .register::<Loose>("loose")
            .config(config())
            .start()
    };
    let host = start().await.unwrap();
    let client = Client::new(&endpoint).unwrap();
    let h = client.get_or_create("loose", ["l"]);
    for _ in 0..20 {
        h.action::<_, u64>("add", ()).await.unwrap();
    }
    let id = h.resolve().await.unwrap();
    // Seen in the engine's storage without any stop: the state record (one chunk, CBOR
    // `{count: 20}`) under key 01 00.
    common::eventually(Duration::from_secs(10), "count 20 saved", || async {
        let r = rivet_test_support::get(
            engine.guard_addr(),
            &format!("/actors/{id}/kv/keys/AQA=?namespace=default"),
        )
        .await;
        (r.status == 200 && r.json()["value"] == "AaFlY291bnQU").then_some(())
    })
    .await;
    host.kill();
    let host = start().await.unwrap();
    assert_eq!(h.action::<_, u64>("add", ()).await.unwrap(), 21);
    host.shutdown().await.unwrap();
    engine.shutdown().await.unwrap();
}
