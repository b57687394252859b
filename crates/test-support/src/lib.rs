//! Helpers for the workspace's integration tests: a minimal HTTP/1.1 client (enough to check
//! status, headers and JSON bodies without pulling an HTTP client crate into every test build)
//! and engine configs on free ports; [`process::ChildProcess`] runs a program under test as a
//! child process. Test code only: failures panic with the reason.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use rivet_config::{Config, Sources};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub mod process;

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, String>,
    /// Body text (de-chunked).
    pub body: String,
}

impl Response {
    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// One header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
pub async fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<HashMap<_, _>>();
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// [`try_send`], panicking on a connection error.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    try_send(addr, method, path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    send(addr, "GET", path, &[], "").await
}

/// Polls `GET /health` until it answers 200 or the deadline passes; returns the elapsed time.
pub async fn wait_healthy(addr: SocketAddr, deadline: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok(response) = try_send(addr, "GET", "/health", &[], "").await {
            if response.status == 200 {
                return start.elapsed();
            }
        }
        assert!(
            start.elapsed() < deadline,
            "engine on {addr} not healthy within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An engine config with `HOME` at `home`, every listener on a free port, plus `env`.
pub fn engine_config(home: &Path, env: &[(&str, &str)]) -> Config {
    let mut vars = vec![
        ("HOME".to_string(), home.display().to_string()),
        ("RIVET__guard__port".to_string(), "0".to_string()),
        ("RIVET__api_peer__port".to_string(), "0".to_string()),
        ("RIVET__metrics__port".to_string(), "0".to_string()),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::load_from(&Sources {
        config_paths: vec![],
        default_dir: None,
        env: vars,
    })
    .unwrap_or_else(|e| panic!("test config: {e}"))
}

/// `tests/compat`, where the npm packages the compatibility tests run live; panics with the
/// command that installs them when they are missing.
pub fn compat_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat");
    for package in ["rivetkit", "rivetkit211", "tsx"] {
        let manifest = dir.join("node_modules").join(package).join("package.json");
        assert!(
            manifest.exists(),
            "npm packages missing ({}): run `npm ci --ignore-scripts` in tests/compat",
            manifest.display()
        );
    }
    dir
}

/// A loopback port free right now (for a child process that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}
