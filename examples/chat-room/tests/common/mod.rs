//! The `example-chat-room` binary on free ports with a temporary data directory.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rivet_test_support::process::ChildProcess;
use rivetkit_client::{ActorHandle, Client};

pub const BIN: &str = env!("CARGO_BIN_EXE_example-chat-room");
/// Upper bound for anything the tests wait for (a cold start on a loaded machine).
pub const WAIT: Duration = Duration::from_secs(60);

/// The page's directory in the source tree.
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// The example, running.
pub struct Server {
    pub process: ChildProcess,
    pub endpoint: String,
    /// The engine's address (REST API and gateway).
    pub addr: SocketAddr,
    pub web: SocketAddr,
    pub client: Client,
}

/// Starts the example storing in `dir`, serving the page from `web_dir`.
pub async fn serve(dir: &Path, web_dir: &Path) -> Server {
    let port = rivet_test_support::free_port();
    let web_port = rivet_test_support::free_port();
    let mut process = ChildProcess::spawn(
        "chat-room",
        Command::new(BIN)
            .args(["--port", &port.to_string()])
            .args(["--web-port", &web_port.to_string()])
            .arg("--data-dir")
            .arg(dir)
            .arg("--web-dir")
            .arg(web_dir),
    );
    let ready = process.wait_for_line("Chat room is ready on", WAIT).await;
    let endpoint = format!("http://127.0.0.1:{port}");
    assert!(ready.ends_with(&endpoint), "{ready}");
    let page = process.wait_for_line("Web page:", WAIT).await;
    assert!(
        page.ends_with(&format!("http://127.0.0.1:{web_port}")),
        "{page}"
    );
    Server {
        process,
        client: Client::new(endpoint.as_str()).unwrap(),
        endpoint,
        addr: ([127, 0, 0, 1], port).into(),
        web: ([127, 0, 0, 1], web_port).into(),
    }
}

impl Server {
    /// A handle on room `room` for user `name`.
    pub fn room_as(&self, room: &str, name: &str) -> ActorHandle {
        self.client
            .get_or_create("chatRoom", [room])
            .with_params(&serde_json::json!({ "name": name }))
            .unwrap()
    }
}

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
