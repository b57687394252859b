//! Shared by the integration tests: our engine in-process (file_system store) with the npm
//! rivetkit@2.3.19 TypeScript host from tests/compat attached, and a TCP proxy that counts
//! connections and records what the engine sends.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rivet_engine::Engine;
use rivet_test_support::{engine_config, send};
use rivetkit_client::{Client, Encoding};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const NAMESPACE: &str = "default";
pub const POOL: &str = "default";
/// A cold tsx start compiles the host first; generous on a loaded 2-core machine.
const HOST_READY: Duration = Duration::from_secs(120);

/// An engine with one npm actor host connected to pool `default`. Kills the host on drop.
pub struct Fixture {
    engine: Engine,
    host: tokio::process::Child,
    dir: tempfile::TempDir,
}

fn compat_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat");
    assert!(
        dir.join("node_modules/rivetkit").is_dir(),
        "{}/node_modules is missing: install the npm packages first (scripts/test.sh does: \
         `cd tests/compat && npm ci`)",
        dir.display()
    );
    dir
}

impl Fixture {
    pub async fn start() -> Fixture {
        let compat = compat_dir();
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("engine");
        std::fs::create_dir_all(&home).unwrap();
        let engine = Engine::start(&engine_config(&home, &[])).await.unwrap();
        let addr = engine.guard_addr();

        let put = send(
            addr,
            "PUT",
            &format!("/runner-configs/{POOL}?namespace={NAMESPACE}"),
            &[("content-type", "application/json")],
            r#"{"datacenters":{"default":{"normal":{}}}}"#,
        )
        .await;
        assert_eq!(put.status, 200, "runner config: {}", put.body);

        let storage = dir.path().join("host-storage");
        std::fs::create_dir_all(&storage).unwrap();
        let log = std::fs::File::create(dir.path().join("host.log")).unwrap();
        let host = tokio::process::Command::new("node")
            .args(["--import", "tsx", "host/registry.ts"])
            .current_dir(&compat)
            .env("RIVET_ENDPOINT", format!("http://{addr}"))
            .env("RIVET_NAMESPACE", NAMESPACE)
            .env("RIVET_POOL", POOL)
            .env("RIVET_RUN_SERVICES", "0")
            .env("RIVETKIT_STORAGE_PATH", &storage)
            .env("COMPAT_EVENTS_FILE", dir.path().join("events.jsonl"))
            .env("RIVET_LOG_LEVEL", "warn")
            .env_remove("RIVET_ENGINE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node (is Node.js installed?)");
        let mut fixture = Fixture { engine, host, dir };
        fixture.wait_for_envoy().await;
        fixture
    }

    pub fn addr(&self) -> SocketAddr {
        self.engine.guard_addr()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn host_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host.log")).unwrap_or_default()
    }

    /// Polls `GET /envoys` until the host is listed; fails early if the host exits.
    async fn wait_for_envoy(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.host.try_wait().unwrap() {
                panic!("npm host exited with {status}:\n{}", self.host_log());
            }
            let list = send(
                self.addr(),
                "GET",
                &format!("/envoys?namespace={NAMESPACE}&name={POOL}"),
                &[],
                "",
            )
            .await;
            let envoys = list.json()["envoys"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !envoys.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < HOST_READY,
                "npm host not listed in GET /envoys within {HOST_READY:?}:\n{}",
                self.host_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn client(&self, encoding: Encoding) -> Client {
        self.client_at(&self.endpoint(), encoding)
    }

    /// A client of this engine reached through `endpoint` (e.g. a [`Proxy`]).
    pub fn client_at(&self, endpoint: &str, encoding: Encoding) -> Client {
        Client::builder(endpoint)
            .namespace(NAMESPACE)
            .pool(POOL)
            .encoding(encoding)
            .build()
            .unwrap()
    }
}

/// A TCP proxy in front of the engine. It counts the connections it accepted, records every
/// byte the engine sent back (to look for event frames on the wire), and can cut all
/// connections, then report when the client has closed its side too.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    accepted: AtomicUsize,
    /// Connections whose client side has ended (after a cut, or by the client itself).
    client_closed: AtomicUsize,
    /// Everything the engine sent, over all connections.
    downstream: Mutex<Vec<u8>>,
    /// Bumped by `cut`: connections started before the bump close.
    generation: tokio::sync::watch::Sender<u64>,
    changed: tokio::sync::Notify,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let accept_state = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accept_state.accepted.fetch_add(1, Ordering::SeqCst);
                accept_state.changed.notify_waiters();
                tokio::spawn(pipe(client, upstream, accept_state.clone()));
            }
        });
        Proxy { addr, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// How many times `needle` occurs in what the engine sent so far.
    pub fn downstream_count(&self, needle: &[u8]) -> usize {
        let bytes = self.state.downstream.lock().unwrap();
        bytes.windows(needle.len()).filter(|w| *w == needle).count()
    }

    /// Closes every open connection (FIN to the client) and waits until the client has
    /// closed its side of each, i.e. it noticed.
    pub async fn cut_all(&self) {
        let open = self.accepted() - self.state.client_closed.load(Ordering::SeqCst);
        let target = self.state.client_closed.load(Ordering::SeqCst) + open;
        self.state.generation.send_modify(|g| *g += 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.state.changed.notified();
            if self.state.client_closed.load(Ordering::SeqCst) >= target {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the client did not close its side of the cut connections"
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

async fn pipe(mut client: TcpStream, upstream: SocketAddr, state: Arc<ProxyState>) {
    let mut cut = state.generation.subscribe();
    cut.borrow_and_update();
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut up = vec![0u8; 16 * 1024];
    let mut down = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            n = client_read.read(&mut up) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => if server_write.write_all(&up[..n]).await.is_err() { break },
            },
            n = server_read.read(&mut down) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    state.downstream.lock().unwrap().extend_from_slice(&down[..n]);
                    if client_write.write_all(&down[..n]).await.is_err() { break }
                }
            },
            _ = cut.changed() => {
                let _ = client_write.shutdown().await;
                // Wait for the client's end of stream: it saw the close and dropped the socket.
                let mut rest = [0u8; 1024];
                while let Ok(n) = client_read.read(&mut rest).await {
                    if n == 0 { break }
                }
                break;
            }
        }
    }
    state.client_closed.fetch_add(1, Ordering::SeqCst);
    state.changed.notify_waiters();
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
