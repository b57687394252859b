//! Starting the two stacks, each piece its own process:
//!
//! - **ours**: `rivet-engine` (a child process, or in-process for the smoke run) with
//!   `file_system` storage in a temporary directory, plus this binary in `host` mode serving
//!   the Rust actors of [`crate::actors`];
//! - **reference**: the reference engine from `tests/compat/node_modules` (telemetry off, the
//!   flat `runtime.worker_load_shedding_curve` of the compat suite) plus the npm rivetkit 2.3.19
//!   host (`tests/compat/host/registry.ts` under tsx).
//!
//! Both are ready once `GET /actors/names` lists every actor name the benchmark uses.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rivet_bench_engine::http::Conn;
use serde_json::json;

use crate::actors;

/// How long an engine plus its host may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

pub use rivet_bench_engine::Which;

/// How to run our engine.
#[derive(Debug, Clone)]
pub enum EngineLaunch {
    /// A child process running this binary.
    Binary(PathBuf),
    /// `rivet_engine::Engine::start` in this process (smoke runs only).
    InProcess,
}

/// What the reference stack needs.
#[derive(Debug, Clone)]
pub struct ReferenceLaunch {
    /// The reference engine binary.
    pub engine: PathBuf,
    /// `tests/compat` (cwd of the npm host, where node_modules lives).
    pub compat_dir: PathBuf,
    /// The Node.js executable.
    pub node: PathBuf,
}

impl ReferenceLaunch {
    /// The reference engine and npm host of this checkout's `tests/compat`.
    pub fn from_checkout() -> ReferenceLaunch {
        let compat_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat");
        ReferenceLaunch {
            engine: rivet_bench_engine::reference_binary(),
            compat_dir,
            node: std::env::var_os("NODE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("node")),
        }
    }

    /// Whether the binary and the npm packages are installed.
    pub fn installed(&self) -> bool {
        self.engine.exists() && self.compat_dir.join("node_modules/rivetkit").exists()
    }
}

/// A started stack.
pub struct Stack {
    /// Which stack this is.
    pub which: Which,
    /// The engine's public address (REST API and gateway).
    pub guard: SocketAddr,
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    /// The actor host process (its RSS is the memory figure).
    pub host_pid: u32,
    /// The engine process (this process when in-process).
    pub engine_pid: u32,
    children: Vec<tokio::process::Child>,
    engine: Option<rivet_engine::Engine>,
    dir: tempfile::TempDir,
}

/// A child process that dies with the benchmark: `kill_on_drop` covers the normal paths,
/// `PR_SET_PDEATHSIG` a benchmark killed by a signal or a panic that skips the drops.
fn command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<(Stdio, Stdio)> {
    let log = std::fs::File::create(dir.join(name))?;
    Ok((Stdio::from(log.try_clone()?), Stdio::from(log)))
}

/// Engine config: ports, storage in `dir`, plus `extra` merged at the top level.
fn write_config(dir: &Path, ports: (u16, u16, u16), extra: serde_json::Value) -> PathBuf {
    let mut config = json!({
        "guard": { "host": "127.0.0.1", "port": ports.0 },
        "api_peer": { "host": "127.0.0.1", "port": ports.1 },
        "metrics": { "host": "127.0.0.1", "port": ports.2 },
        "file_system": { "path": dir.join("engine-data") },
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    let path = dir.join("engine.json");
    std::fs::write(&path, config.to_string()).expect("temporary directory is writable");
    path
}

impl Stack {
    /// Starts our engine and the Rust actor host (`host_bin host --endpoint …`).
    pub async fn start_ours(
        engine: &EngineLaunch,
        host_bin: &Path,
        count_heap: bool,
    ) -> anyhow::Result<Stack> {
        let dir = tempfile::tempdir()?;
        let ports = (free_port()?, free_port()?, free_port()?);
        let config_path = write_config(dir.path(), ports, json!({}));
        let guard = SocketAddr::from(([127, 0, 0, 1], ports.0));
        let mut children = Vec::new();
        let (engine_pid, engine) = match engine {
            EngineLaunch::Binary(bin) => {
                let (out, err) = log_file(dir.path(), "engine.log")?;
                let child = command(bin)
                    .arg("start")
                    .arg("--config")
                    .arg(&config_path)
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    .spawn()
                    .with_context(|| format!("starting {}", bin.display()))?;
                let pid = child.id().context("engine exited at once")?;
                children.push(child);
                (pid, None)
            }
            EngineLaunch::InProcess => {
                let config = rivet_config::Config::load_from(&rivet_config::Sources {
                    config_paths: vec![config_path.clone()],
                    default_dir: None,
                    env: Vec::new(),
                })?;
                let engine = rivet_engine::Engine::start(&config).await?;
                (std::process::id(), Some(engine))
            }
        };
        let mut stack = Stack {
            which: Which::Ours,
            guard,
            endpoint: format!("http://{guard}"),
            host_pid: 0,
            engine_pid,
            children,
            engine,
            dir,
        };
        stack.wait_health().await?;
        let (out, err) = log_file(stack.dir.path(), "host.log")?;
        let host = command(host_bin)
            .arg("host")
            .arg("--endpoint")
            .arg(&stack.endpoint)
            .env("RIVET_BENCH_COUNT_HEAP", if count_heap { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {} host", host_bin.display()))?;
        stack.host_pid = host.id().context("host exited at once")?;
        stack.children.push(host);
        stack
            .wait_names(&[
                actors::STRICT,
                actors::RELAXED,
                actors::AWAKE,
                actors::STATS,
            ])
            .await?;
        Ok(stack)
    }

    /// Starts the reference engine and the npm rivetkit host.
    pub async fn start_reference(launch: &ReferenceLaunch) -> anyhow::Result<Stack> {
        let dir = tempfile::tempdir()?;
        let ports = (free_port()?, free_port()?, free_port()?);
        // As bench/gateway/bench.mjs and the compat suite run it: no telemetry, and a flat
        // load-shedding curve (it sheds workflow admission when the CPU is busy otherwise).
        let config_path = write_config(
            dir.path(),
            ports,
            json!({
                "telemetry": { "enabled": false },
                "runtime": { "worker_load_shedding_curve": [[0, 1000], [1000, 999]] },
            }),
        );
        let guard = SocketAddr::from(([127, 0, 0, 1], ports.0));
        let (out, err) = log_file(dir.path(), "engine.log")?;
        let engine = command(&launch.engine)
            .arg("start")
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", launch.engine.display()))?;
        let engine_pid = engine.id().context("reference engine exited at once")?;
        let mut stack = Stack {
            which: Which::Reference,
            guard,
            endpoint: format!("http://{guard}"),
            host_pid: 0,
            engine_pid,
            children: vec![engine],
            engine: None,
            dir,
        };
        stack.wait_health().await?;
        let storage = stack.dir.path().join("host-storage");
        std::fs::create_dir_all(&storage)?;
        let (out, err) = log_file(stack.dir.path(), "host.log")?;
        let host = command(&launch.node)
            .arg("--import")
            .arg("tsx")
            .arg(launch.compat_dir.join("host/registry.ts"))
            .current_dir(&launch.compat_dir)
            .env("RIVET_ENDPOINT", &stack.endpoint)
            .env("RIVET_NAMESPACE", "default")
            .env("RIVET_POOL", "default")
            // The npm host would otherwise start its own Services helper process.
            .env("RIVET_RUN_SERVICES", "0")
            .env("RIVETKIT_STORAGE_PATH", &storage)
            .env(
                "RIVET_LOG_LEVEL",
                std::env::var("RIVET_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("RIVET_ENGINE")
            .env_remove("COMPAT_EVENTS_FILE")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {} (npm host)", launch.node.display()))?;
        stack.host_pid = host.id().context("npm host exited at once")?;
        stack.children.push(host);
        stack.wait_names(&["bench", "benchAwake"]).await?;
        Ok(stack)
    }

    /// The last lines of this stack's logs, for failure reports.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["engine.log", "host.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(15);
            out.push_str(&format!("  {} {name}:\n", self.which.label()));
            for l in &lines[from..] {
                out.push_str(&format!(
                    "    {}\n",
                    l.chars().take(300).collect::<String>()
                ));
            }
        }
        out
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        for child in &mut self.children {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "a {} process exited ({status})\n{}",
                    self.which.label(),
                    self.log_tail()
                );
            }
        }
        Ok(())
    }

    async fn wait_health(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut conn = Conn::new(self.guard);
        loop {
            self.check_alive()?;
            if let Ok(r) = conn.get("/health").await {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} engine: no healthy answer within {READY_TIMEOUT:?}\n{}",
                    self.which.label(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_names(&mut self, names: &[&str]) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut conn = Conn::new(self.guard);
        loop {
            self.check_alive()?;
            if let Ok(r) = conn.get("/actors/names?namespace=default").await {
                if let Ok(v) = r.json() {
                    if names.iter().all(|n| !v["names"][n].is_null()) {
                        return Ok(());
                    }
                }
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "{}: actor names {names:?} not listed within {READY_TIMEOUT:?}\n{}",
                    self.which.label(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The host process's resident set size, KiB.
    pub fn host_rss_kib(&self) -> anyhow::Result<u64> {
        rivet_bench_engine::engines::rss_kib(self.host_pid)
    }

    /// The engine's view of an actor (`GET /actors?actor_ids=`).
    pub async fn actor_view(
        &self,
        conn: &mut Conn,
        actor_id: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let r = conn
            .get(&format!("/actors?actor_ids={actor_id}&namespace=default"))
            .await?;
        if r.status != 200 {
            bail!(
                "GET /actors: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        Ok(r.json()?["actors"][0].clone())
    }

    /// Stops the stack: kills the child processes (their data is a temporary directory) and
    /// shuts an in-process engine down.
    pub async fn stop(self) -> anyhow::Result<()> {
        let Stack {
            mut children,
            engine,
            dir,
            ..
        } = self;
        // The host first, so that the engine does not see it vanish mid-run.
        for child in children.iter_mut().rev() {
            let _ = child.kill().await;
        }
        if let Some(engine) = engine {
            engine.shutdown().await?;
        }
        drop(dir);
        Ok(())
    }
}
