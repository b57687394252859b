//! The registry of actor types and the running host.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::actor::Actor;
use crate::error::HostError;
use crate::host::{query_escape, Factory, Host, HostConfig};
use crate::instance::TypeFactory;

/// Where the host connects and as whom. [`RegistryConfig::from_env`] reads the same
/// variables as npm rivetkit.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Engine URL, `http://[namespace:token@]host:port`.
    pub endpoint: String,
    /// Token for the engine (`RIVET_TOKEN`).
    pub token: Option<String>,
    /// Namespace (`RIVET_NAMESPACE`, default `default`).
    pub namespace: String,
    /// Pool (runner config) the host serves (`RIVET_POOL`, default `default`).
    pub pool: String,
    /// Application version; a host with a higher version takes new actors and drains older
    /// ones (`RIVET_VERSION`, default 1).
    pub version: u32,
    /// Region reported to actors (`RIVET_REGION`, default `default`).
    pub region: String,
    /// How long a drain (SIGTERM, [`RunningRegistry::shutdown`]) waits for actors to stop.
    pub drain_timeout: Duration,
}

impl RegistryConfig {
    /// From `RIVET_ENDPOINT` (or `RIVET_ENGINE`; default `http://127.0.0.1:6420`),
    /// `RIVET_TOKEN`, `RIVET_NAMESPACE`, `RIVET_POOL`, `RIVET_VERSION`, `RIVET_REGION`.
    pub fn from_env() -> RegistryConfig {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        RegistryConfig {
            endpoint: env("RIVET_ENDPOINT")
                .or_else(|| env("RIVET_ENGINE"))
                .unwrap_or_else(|| "http://127.0.0.1:6420".into()),
            token: env("RIVET_TOKEN"),
            namespace: env("RIVET_NAMESPACE").unwrap_or_else(|| "default".into()),
            pool: env("RIVET_POOL").unwrap_or_else(|| "default".into()),
            version: env("RIVET_VERSION")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            region: env("RIVET_REGION").unwrap_or_else(|| "default".into()),
            drain_timeout: Duration::from_secs(60),
        }
    }
}

/// Options of the in-process engine ([`Registry::start_embedded_with`]).
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Data directory of the embedded store; `None` keeps everything in memory (nothing
    /// survives a restart). Default: `RIVET_DATA_DIR`, else the standalone engine's default
    /// directory (`$XDG_DATA_HOME/rivet-engine/db` or `~/.local/share/rivet-engine/db`).
    pub data_dir: Option<PathBuf>,
    /// Port of the engine's public listener (REST API, gateway, host socket). Default 6420;
    /// 0 picks a free one.
    pub port: u16,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            data_dir: std::env::var_os("RIVET_DATA_DIR")
                .map(PathBuf::from)
                .or_else(default_data_dir),
            port: 6420,
        }
    }
}

/// The standalone engine's default (`rivet-config`), so both modes find the same actors.
fn default_data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("rivet-engine/db"))
}

/// The actor types a host serves.
pub struct Registry {
    types: HashMap<Arc<str>, Arc<dyn Factory>>,
    config: RegistryConfig,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry configured from the environment ([`RegistryConfig::from_env`]).
    pub fn new() -> Registry {
        Registry {
            types: HashMap::new(),
            config: RegistryConfig::from_env(),
        }
    }

    /// Registers actor type `A` under `name` (what clients pass to `get`/`getOrCreate`).
    pub fn register<A: Actor>(mut self, name: &str) -> Registry {
        self.types
            .insert(Arc::from(name), Arc::new(TypeFactory::<A>::new()));
        self
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: RegistryConfig) -> Registry {
        self.config = config;
        self
    }

    /// Connects to the engine at the configured endpoint, creating the pool's runner config
    /// if it has none. Returns once the engine accepted the host.
    pub async fn start(self) -> Result<RunningRegistry, HostError> {
        let target = Endpoint::parse(&self.config.endpoint)?;
        let mut config = self.config;
        if let Some(ns) = target.namespace.clone() {
            config.namespace = ns;
        }
        if let Some(token) = target.token.clone() {
            config.token = Some(token);
        }
        let authority = target.authority;
        ensure_runner_config(&authority, &config).await?;
        let mut client = rivetkit_client::Client::builder(format!("http://{authority}"))
            .namespace(config.namespace.clone())
            .pool(config.pool.clone());
        if let Some(t) = &config.token {
            client = client.token(t.clone());
        }
        let client = client
            .build()
            .map_err(|e| HostError::InvalidEndpoint(e.to_string()))?;
        let cfg = HostConfig {
            authority: authority.clone(),
            namespace: config.namespace.clone(),
            pool: config.pool.clone(),
            token: config.token.clone(),
            envoy_key: envoy_key(),
            version: config.version,
            region: config.region.clone(),
        };
        let names: Vec<String> = self.types.keys().map(|n| n.to_string()).collect();
        let (host, task) = Host::start(cfg, self.types, client).await?;
        tracing::info!(endpoint = %authority, namespace = %config.namespace, pool = %config.pool, actors = ?names, "actor host started");
        Ok(RunningRegistry {
            host,
            task: Some(task),
            endpoint: format!("http://{authority}"),
            drain_timeout: config.drain_timeout,
            #[cfg(feature = "embedded")]
            engine: None,
        })
    }

    /// Starts an engine in this process (embedded store, gateway on port 6420) and serves
    /// the actors on it: one process gives engine, actors and gateway.
    #[cfg(feature = "embedded")]
    pub async fn start_embedded(self) -> Result<RunningRegistry, HostError> {
        self.start_embedded_with(EmbeddedOptions::default()).await
    }

    /// [`Registry::start_embedded`] with options.
    #[cfg(feature = "embedded")]
    pub async fn start_embedded_with(
        mut self,
        options: EmbeddedOptions,
    ) -> Result<RunningRegistry, HostError> {
        let mut env: Vec<(String, String)> = vec![
            ("RIVET__guard__port".into(), options.port.to_string()),
            ("RIVET__api_peer__port".into(), "0".into()),
            ("RIVET__metrics__port".into(), "0".into()),
        ];
        match &options.data_dir {
            Some(dir) => env.push(("RIVET__file_system__path".into(), dir.display().to_string())),
            None => env.push(("RIVET__memory".into(), "{}".into())),
        }
        let sources = rivet_config::Sources {
            config_paths: Vec::new(),
            default_dir: None,
            env,
        };
        let config = rivet_config::Config::load_from(&sources)
            .map_err(|e| HostError::Embedded(e.to_string()))?;
        let engine = rivet_engine::Engine::start(&config)
            .await
            .map_err(|e| HostError::Embedded(e.to_string()))?;
        let addr = engine.guard_addr();
        tracing::info!(%addr, data_dir = ?options.data_dir, "embedded engine started");
        self.config.endpoint = format!("http://127.0.0.1:{}", addr.port());
        self.config.token = None;
        match self.start().await {
            Ok(mut running) => {
                running.engine = Some(engine);
                Ok(running)
            }
            Err(e) => {
                let _ = engine.shutdown().await;
                Err(e)
            }
        }
    }
}

/// A started host (and embedded engine, if any).
pub struct RunningRegistry {
    host: Arc<Host>,
    task: Option<tokio::task::JoinHandle<()>>,
    endpoint: String,
    drain_timeout: Duration,
    #[cfg(feature = "embedded")]
    engine: Option<rivet_engine::Engine>,
}

impl RunningRegistry {
    /// The engine's URL (`http://host:port`), for clients.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client of the engine with the host's namespace and token.
    pub fn client(&self) -> rivetkit_client::Client {
        self.host.client.clone()
    }

    /// Number of actors running on this host.
    pub fn actor_count(&self) -> usize {
        self.host.actor_count()
    }

    /// Drains: the engine stops every actor here (each saves its state), then the host
    /// disconnects and the embedded engine, if any, shuts down.
    pub async fn shutdown(mut self) -> Result<(), HostError> {
        self.host.drain(self.drain_timeout).await;
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        #[cfg(feature = "embedded")]
        if let Some(engine) = self.engine.take() {
            engine
                .shutdown()
                .await
                .map_err(|e| HostError::Embedded(e.to_string()))?;
        }
        Ok(())
    }

    /// Runs until SIGTERM or Ctrl-C, then [`RunningRegistry::shutdown`].
    pub async fn wait(self) -> Result<(), HostError> {
        shutdown_signal().await;
        tracing::info!("shutting down: draining actors");
        self.shutdown().await
    }

    /// Drops the connection without draining (as a crash would), for tests.
    #[doc(hidden)]
    pub fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A random envoy key per process, as npm uses a random UUID.
fn envoy_key() -> String {
    format!("rivetkit-rs-{:016x}", rand::random::<u64>())
}

struct Endpoint {
    authority: String,
    namespace: Option<String>,
    token: Option<String>,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Endpoint, HostError> {
        let bad = || HostError::InvalidEndpoint(url.to_string());
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .ok_or_else(bad)?;
        let hostpart = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, authority) = match hostpart.rsplit_once('@') {
            Some((u, a)) => (Some(u), a),
            None => (None, hostpart),
        };
        if authority.is_empty() {
            return Err(bad());
        }
        let (namespace, token) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((ns, tok)) => (Some(ns.to_string()), Some(tok.to_string())),
                None => (Some(u.to_string()), None),
            },
            None => (None, None),
        };
        Ok(Endpoint {
            authority: authority.to_string(),
            namespace: namespace.filter(|s| !s.is_empty()),
            token: token.filter(|s| !s.is_empty()),
        })
    }
}

/// Creates a normal runner config for the pool unless one exists.
async fn ensure_runner_config(authority: &str, cfg: &RegistryConfig) -> Result<(), HostError> {
    let ns = query_escape(&cfg.namespace);
    let pool = query_escape(&cfg.pool);
    let (status, body) = api(
        authority,
        "GET",
        &format!("/runner-configs?namespace={ns}&runner_name={pool}"),
        cfg.token.as_deref(),
        None,
    )
    .await?;
    if status != 200 {
        return Err(HostError::Api {
            what: "GET /runner-configs",
            detail: format!("{status} {body}"),
        });
    }
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if listed["runner_configs"].get(&cfg.pool).is_some() {
        return Ok(());
    }
    let (status, body) = api(authority, "GET", "/datacenters", cfg.token.as_deref(), None).await?;
    let dcs: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let dc = dcs["datacenters"][0]["name"]
        .as_str()
        .ok_or_else(|| HostError::Api {
            what: "GET /datacenters",
            detail: format!("{status} {body}"),
        })?
        .to_string();
    let config = serde_json::json!({ "datacenters": { dc: { "normal": {} } } }).to_string();
    let (status, body) = api(
        authority,
        "PUT",
        &format!("/runner-configs/{pool}?namespace={ns}"),
        cfg.token.as_deref(),
        Some(config),
    )
    .await?;
    if status != 200 {
        return Err(HostError::Api {
            what: "PUT /runner-configs",
            detail: format!("{status} {body}"),
        });
    }
    tracing::info!(pool = %cfg.pool, "created the pool's runner config");
    Ok(())
}

/// One REST call to the engine.
async fn api(
    authority: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Result<(u16, String), HostError> {
    let call = async {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| HostError::Api {
                what: "handshake",
                detail: e.to_string(),
            })?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", authority);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))
            .map_err(|e| HostError::Api {
                what: "request",
                detail: e.to_string(),
            })?;
        let resp = sender.send_request(req).await.map_err(|e| HostError::Api {
            what: "request",
            detail: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| HostError::Api {
                what: "response",
                detail: e.to_string(),
            })?
            .to_bytes();
        Ok::<_, HostError>((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .map_err(|_| HostError::Timeout("engine API call"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_carries_namespace_and_token() {
        let e = Endpoint::parse("http://ns1:tok@127.0.0.1:6420/").unwrap();
        assert_eq!(e.authority, "127.0.0.1:6420");
        assert_eq!(e.namespace.as_deref(), Some("ns1"));
        assert_eq!(e.token.as_deref(), Some("tok"));
        let e = Endpoint::parse("ws://localhost:1").unwrap();
        assert_eq!(e.namespace, None);
        assert!(Endpoint::parse("https://x").is_err());
        assert!(Endpoint::parse("http://").is_err());
    }
}
