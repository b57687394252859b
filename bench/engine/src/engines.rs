//! Starting the engines under test: our `rivet-engine` binary or the reference binary as child
//! processes (or ours in-process for the smoke run), each on free ports with file-system storage
//! in its own temporary directory, ready for actors on pool `default`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rivet_config::{Config, Sources};
use rivet_test_host::{HostOptions, TestHost};
use serde_json::json;

use crate::http::Conn;

/// The pool (runner config) every actor is created in.
pub const POOL: &str = "default";
/// The actor name every actor is created with.
pub const ACTOR_NAME: &str = "bench";
/// How long an engine may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// This workspace's `rivet-engine`.
    Ours,
    /// `@rivetkit/engine-cli-linux-x64-musl` 2.3.19.
    Reference,
}

impl Which {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Which::Ours => "ours",
            Which::Reference => "reference",
        }
    }
}

/// How to run an engine.
#[derive(Debug, Clone)]
pub enum Launch {
    /// A child process of this binary.
    Binary(PathBuf),
    /// `rivet_engine::Engine::start` inside this process (ours only; smoke runs).
    InProcess,
}

/// A started engine with a connected actor host.
pub struct Running {
    /// Which engine this is.
    pub which: Which,
    /// The guard (public API) address.
    pub guard: SocketAddr,
    /// The connected host (default behaviour: answers start/stop, acks commands).
    pub host: TestHost,
    /// Process whose RSS is the engine's (this process for an in-process engine).
    pub pid: u32,
    /// Whether the engine runs inside this process (its RSS then includes the benchmark).
    pub in_process: bool,
    child: Option<tokio::process::Child>,
    engine: Option<rivet_engine::Engine>,
    dir: tempfile::TempDir,
}

/// The reference binary installed by `npm ci --ignore-scripts` in `tests/compat`.
pub fn reference_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/compat/node_modules/@rivetkit/engine-cli-linux-x64-musl/rivet-engine")
}

/// Our binary: `$RIVET_ENGINE_BIN`, else `rivet-engine` next to this executable (both land in
/// the same target directory with `cargo build --release -p rivet-engine -p rivet-bench-engine`).
pub fn our_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("RIVET_ENGINE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let sibling = exe
        .parent()
        .map(|dir| dir.join("rivet-engine"))
        .context("executable has no directory")?;
    if !sibling.exists() {
        bail!(
            "{} not found: run `cargo build --release -p rivet-engine` with the same target \
             directory first, or set RIVET_ENGINE_BIN",
            sibling.display()
        );
    }
    Ok(sibling)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Running {
    /// Starts the engine, waits until a runner-config write for pool `default` succeeds and
    /// connects a host to that pool.
    pub async fn start(which: Which, launch: &Launch) -> anyhow::Result<Running> {
        let dir = tempfile::tempdir()?;
        let (guard, peer, metrics) = (free_port()?, free_port()?, free_port()?);
        let mut config = json!({
            "guard": { "host": "127.0.0.1", "port": guard },
            "api_peer": { "host": "127.0.0.1", "port": peer },
            "metrics": { "host": "127.0.0.1", "port": metrics },
            "file_system": { "path": dir.path().join("db") },
        });
        if which == Which::Reference {
            // Telemetry would try to reach the internet; our engine has no such key.
            config["telemetry"] = json!({ "enabled": false });
        }
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, config.to_string())?;
        let guard: SocketAddr = SocketAddr::from(([127, 0, 0, 1], guard));

        let (child, engine, pid, in_process) = match launch {
            Launch::Binary(bin) => {
                let log = std::fs::File::create(dir.path().join("engine.log"))?;
                let child = tokio::process::Command::new(bin)
                    .arg("start")
                    .arg("--config")
                    .arg(&config_path)
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .stdin(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("starting {}", bin.display()))?;
                let pid = child.id().context("child exited at once")?;
                (Some(child), None, pid, false)
            }
            Launch::InProcess => {
                if which != Which::Ours {
                    bail!("only our engine runs in-process");
                }
                let config = Config::load_from(&Sources {
                    config_paths: vec![config_path.clone()],
                    default_dir: None,
                    env: Vec::new(),
                })?;
                let engine = rivet_engine::Engine::start(&config).await?;
                (None, Some(engine), std::process::id(), true)
            }
        };
        // Kill the child (via kill_on_drop) if it never becomes ready.
        let host = match wait_ready(guard).await {
            Ok(host) => host,
            Err(e) => {
                let log =
                    std::fs::read_to_string(dir.path().join("engine.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                return Err(e.context(format!(
                    "{} engine not ready; log tail (newest first):\n{}",
                    which.label(),
                    tail.join("\n")
                )));
            }
        };
        Ok(Running {
            which,
            guard,
            host,
            pid,
            in_process,
            child,
            engine,
            dir,
        })
    }

    /// The engine's resident set size in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }

    /// Suspends (`SIGSTOP`) or resumes (`SIGCONT`) a child-process engine, so that a phase run
    /// on the other engine alone does not share the CPU with this one's leftover work (the
    /// reference keeps working through its backlog for minutes after a burst of creates).
    pub fn pause(&self, paused: bool) -> anyhow::Result<()> {
        if self.in_process {
            return Ok(());
        }
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(self.pid.to_string())
            .status()?;
        if !status.success() {
            bail!("kill {signal} {} failed", self.pid);
        }
        Ok(())
    }

    /// Copies the engine's log (child processes only) out of its temporary directory, which is
    /// deleted when the engine stops; returns the copy's path.
    pub fn save_log(&self) -> Option<PathBuf> {
        let to = std::env::temp_dir().join(format!(
            "rivet-bench-engine-{}-{}.log",
            self.which.label(),
            self.pid
        ));
        std::fs::copy(self.dir.path().join("engine.log"), &to).ok()?;
        Some(to)
    }

    /// Closes the host and stops the engine (gracefully when in-process; child processes are
    /// killed: their data is a temporary directory).
    pub async fn stop(self) -> anyhow::Result<()> {
        let Running {
            host,
            child,
            engine,
            dir,
            ..
        } = self;
        if let Some(mut child) = child {
            // A paused process would not answer the close handshake.
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .arg("-CONT")
                    .arg(pid.to_string())
                    .status();
            }
            host.close().await;
            child.kill().await?;
        } else {
            host.close().await;
        }
        if let Some(engine) = engine {
            engine.shutdown().await?;
        }
        drop(dir);
        Ok(())
    }
}

/// Waits for readiness and returns a connected host. `/health` answers on the reference before
/// its namespace and config stores are usable, so readiness is "the runner-config PUT for the
/// pool succeeded and a host was accepted": both are retried until then.
async fn wait_ready(guard: SocketAddr) -> anyhow::Result<TestHost> {
    let start = Instant::now();
    let mut conn = Conn::new(guard);
    let body = json!({"datacenters": {"default": {"normal": {}}}}).to_string();
    let path = format!("/runner-configs/{POOL}?namespace=default");
    loop {
        match conn.request("PUT", &path, Some(&body)).await {
            Ok(reply) if reply.status == 200 => break,
            Ok(reply) if start.elapsed() > READY_TIMEOUT => bail!(
                "runner config PUT: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ),
            Err(e) if start.elapsed() > READY_TIMEOUT => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    loop {
        let mut opts = HostOptions::new(format!("http://{guard}"), POOL);
        opts.actor_names = vec![ACTOR_NAME.into()];
        match TestHost::connect(opts).await {
            Ok(host) => return Ok(host),
            Err(e) if start.elapsed() > READY_TIMEOUT => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS line")
}
