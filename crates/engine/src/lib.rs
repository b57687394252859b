//! `rivet-engine`: the composition root. Starting an engine is one call on a [`Config`]:
//! [`Engine::start`] opens the store and the bus and serves the guard, peer and metrics
//! listeners until [`Engine::shutdown`]. The binary is a thin CLI around it, and an embedding
//! program (rivetkit's in-process mode) calls the same function.

pub mod cli;
pub mod error;
mod http;
pub mod logging;
mod memory;
mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rivet_bus::{Bus, BusConfig};
use rivet_config::{Config, ListenAddr, PubSub, Storage};
use rivet_orchestrator::shell::{Shell, ShellConfig};
use rivet_store::{Db, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use error::EngineError;
pub use http::guard::{Metadata, METADATA};
pub use http::{Health, HEALTH};

/// This engine's version, as `/health` and `/metadata` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long shutdown waits for in-flight requests before closing the store anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A running engine.
pub struct Engine {
    storage: Storage,
    db: Db,
    bus: Bus,
    shell: Shell,
    guard_addr: SocketAddr,
    api_peer_addr: SocketAddr,
    metrics_addr: SocketAddr,
    stop: watch::Sender<bool>,
    servers: Vec<Server>,
    /// Closes when every actor-host socket has finished (they outlive the listeners' graceful
    /// shutdown, which does not wait for upgraded connections).
    sockets_done: mpsc::Receiver<()>,
}

/// Engine settings outside the configuration file.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Actor lifecycle thresholds (start timeout, lost threshold, allocation backoff…); the
    /// reference's values by default.
    pub lifecycle: rivet_orchestrator::lifecycle::Config,
}

struct Server {
    name: &'static str,
    addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

/// One listener's identity, for error messages.
struct ListenerSpec {
    name: &'static str,
    key: &'static str,
    env: &'static str,
}

const GUARD: ListenerSpec = ListenerSpec {
    name: "guard (public API)",
    key: "guard.port",
    env: "RIVET__guard__port",
};
const API_PEER: ListenerSpec = ListenerSpec {
    name: "peer API",
    key: "api_peer.port",
    env: "RIVET__api_peer__port",
};
const METRICS: ListenerSpec = ListenerSpec {
    name: "metrics",
    key: "metrics.port",
    env: "RIVET__metrics__port",
};

impl Engine {
    /// Binds the listeners, opens the store and connects the bus, then serves.
    pub async fn start(config: &Config) -> Result<Engine, EngineError> {
        Engine::start_with(config, EngineOptions::default()).await
    }

    /// [`Engine::start`] with settings that are not part of the file configuration (tests use
    /// short lifecycle thresholds; an embedding application may too).
    pub async fn start_with(
        config: &Config,
        options: EngineOptions,
    ) -> Result<Engine, EngineError> {
        // Ports first: a taken port is the most common start-up failure and costs nothing to find.
        let guard = bind(&GUARD, &config.guard).await?;
        let api_peer = bind(&API_PEER, &config.api_peer).await?;
        let metrics = bind(&METRICS, &config.metrics).await?;

        let db = open_store(&config.storage).await?;
        let bus = match connect_bus(&config.pubsub).await {
            Ok(bus) => bus,
            Err(error) => {
                close_store(&db, &config.storage).await;
                return Err(error);
            }
        };

        let label = config.topology.datacenter_label;
        if let Err(source) =
            rivet_orchestrator::namespace::ensure_default_namespace(&db, label, rivet_api::now_ms())
                .await
        {
            if let Err(error) = bus.close().await {
                tracing::warn!(%error, "closing the bus failed");
            }
            close_store(&db, &config.storage).await;
            return Err(EngineError::DefaultNamespace { source });
        }
        let shell = match Shell::start(
            db.clone(),
            bus.clone(),
            ShellConfig {
                datacenter: config.topology.datacenter_name.clone(),
                label,
                lifecycle: options.lifecycle,
                public_url: public_url(config, &guard),
                admin_token: config.auth.admin_token.clone(),
            },
        )
        .await
        {
            Ok(shell) => shell,
            Err(source) => {
                if let Err(error) = bus.close().await {
                    tracing::warn!(%error, "closing the bus failed");
                }
                close_store(&db, &config.storage).await;
                return Err(EngineError::Orchestrator { source });
            }
        };
        if matches!(config.storage, Storage::FileSystem { .. }) {
            match shell.disconnect_orphaned_hosts().await {
                Ok(0) => {}
                Ok(count) => tracing::info!(
                    hosts = count,
                    "hosts of the previous run are disconnected; their actors are lost unless they reconnect"
                ),
                Err(error) => tracing::warn!(%error, "cannot disconnect the previous run's hosts"),
            }
        }
        let api = rivet_api::ApiState::new(
            db.clone(),
            config.auth.admin_token.clone(),
            rivet_api::Datacenter {
                name: config.topology.datacenter_name.clone(),
                label,
                public_url: public_url(config, &guard),
            },
            shell.clone(),
        );
        let gateway = match rivet_gateway::proxy::Gateway::start(shell.clone()).await {
            Ok(gateway) => gateway,
            Err(error) => {
                shell.stop();
                if let Err(error) = bus.close().await {
                    tracing::warn!(%error, "closing the bus failed");
                }
                close_store(&db, &config.storage).await;
                return Err(EngineError::Orchestrator {
                    source: rivet_orchestrator::error::DataError::bus(error),
                });
            }
        };
        let registry = Arc::new(metrics::registry(db.clone(), bus.clone()));
        let (stop, stopped) = watch::channel(false);
        let (sockets_live, sockets_done) = mpsc::channel(1);
        let sockets = http::envoy_socket::Sockets {
            stopping: stopped.clone(),
            live: sockets_live,
        };
        tokio::spawn(memory::trim_periodically(stopped.clone()));
        let servers = vec![
            serve(
                GUARD.name,
                guard,
                http::guard::router(label, api.clone(), gateway, sockets),
                stopped.clone(),
            )?,
            serve(
                API_PEER.name,
                api_peer,
                http::peer::router(label, api),
                stopped.clone(),
            )?,
            serve(
                METRICS.name,
                metrics,
                http::metrics::router(registry),
                stopped,
            )?,
        ];
        let engine = Engine {
            guard_addr: servers[0].addr,
            api_peer_addr: servers[1].addr,
            metrics_addr: servers[2].addr,
            storage: config.storage.clone(),
            shell,
            db,
            bus,
            stop,
            servers,
            sockets_done,
        };
        tracing::info!(
            version = VERSION,
            guard = %engine.guard_addr,
            api_peer = %engine.api_peer_addr,
            metrics = %engine.metrics_addr,
            storage = storage_kind(&config.storage),
            storage_location = %storage_location(&config.storage),
            pubsub = pubsub_kind(&config.pubsub),
            "engine started"
        );
        Ok(engine)
    }

    /// The actor orchestrator (the gateway's and the SDK's way in).
    pub fn shell(&self) -> &Shell {
        &self.shell
    }

    /// The guard listener's bound address.
    pub fn guard_addr(&self) -> SocketAddr {
        self.guard_addr
    }

    /// The peer listener's bound address.
    pub fn api_peer_addr(&self) -> SocketAddr {
        self.api_peer_addr
    }

    /// The metrics listener's bound address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The engine's store.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The engine's bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Stops accepting, drains in-flight requests (bounded), then closes the bus and flushes and
    /// closes the store.
    pub async fn shutdown(mut self) -> Result<(), EngineError> {
        tracing::info!("engine stopping");
        let _ = self.stop.send(true);
        self.shell.stop();
        let mut first_error = None;
        for server in self.servers {
            let abort = server.task.abort_handle();
            match tokio::time::timeout(DRAIN_TIMEOUT, server.task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(source))) => {
                    first_error.get_or_insert(EngineError::Serve {
                        listener: server.name,
                        addr: server.addr,
                        source,
                    });
                }
                Ok(Err(join)) => {
                    tracing::error!(listener = server.name, %join, "listener task failed")
                }
                Err(_) => {
                    tracing::warn!(
                        listener = server.name,
                        "requests still running after the drain timeout; closing them"
                    );
                    abort.abort();
                }
            }
        }
        // Host sockets record their disconnect (and apply the events they received) before
        // the store closes, so the next run knows where each actor stands.
        if tokio::time::timeout(DRAIN_TIMEOUT, self.sockets_done.recv())
            .await
            .is_err()
        {
            tracing::warn!("actor-host sockets still open after the drain timeout");
        }
        if let Err(source) = self.bus.close().await {
            tracing::warn!(%source, "closing the bus failed");
        }
        self.db.close().await.map_err(|source| EngineError::Store {
            action: "cannot close",
            backend: storage_kind(&self.storage),
            location: storage_location(&self.storage),
            source,
        })?;
        tracing::info!("engine stopped");
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Starts an engine and serves until `shutdown` completes, then stops it cleanly.
pub async fn run(config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), EngineError> {
    let engine = Engine::start(config).await?;
    shutdown.await;
    engine.shutdown().await
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the engine");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// The configured public URL, or, when it was derived from a guard port of 0, the URL of the
/// port actually bound.
fn public_url(config: &Config, guard: &TcpListener) -> String {
    let derived = rivet_config::default_public_url(&config.guard);
    match guard.local_addr() {
        Ok(bound) if config.guard.port == 0 && config.topology.public_url == derived => {
            rivet_config::default_public_url(&ListenAddr {
                host: config.guard.host.clone(),
                port: bound.port(),
            })
        }
        _ => config.topology.public_url.clone(),
    }
}

async fn bind(spec: &ListenerSpec, addr: &ListenAddr) -> Result<TcpListener, EngineError> {
    let text = addr.to_addr_string();
    TcpListener::bind(&text).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            EngineError::PortInUse {
                listener: spec.name,
                addr: text.clone(),
                key: spec.key,
                env: spec.env,
            }
        } else {
            EngineError::Bind {
                listener: spec.name,
                addr: text.clone(),
                source,
            }
        }
    })
}

fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) -> Result<Server, EngineError> {
    let addr = listener.local_addr().map_err(|source| EngineError::Bind {
        listener: name,
        addr: "?".to_string(),
        source,
    })?;
    // Small request/response writes must not wait for a delayed ACK (PERFORMANCE-NOTES.md).
    let listener = http::quickack::QuickAckListener(listener);
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(Server { name, addr, task })
}

async fn open_store(storage: &Storage) -> Result<Db, EngineError> {
    let config = match storage {
        Storage::FileSystem { path, sync } => StoreConfig::FileSystem {
            path: path.clone(),
            sync: *sync,
        },
        Storage::Postgres { url, pool_size } => StoreConfig::Postgres {
            url: url.clone(),
            pool_size: *pool_size,
            schema: None,
        },
        Storage::Memory => StoreConfig::Memory,
    };
    Db::open(config).await.map_err(|source| EngineError::Store {
        action: "cannot open",
        backend: storage_kind(storage),
        location: storage_location(storage),
        source,
    })
}

async fn close_store(db: &Db, storage: &Storage) {
    if let Err(error) = db.close().await {
        tracing::warn!(%error, location = %storage_location(storage), "closing the store failed");
    }
}

async fn connect_bus(pubsub: &PubSub) -> Result<Bus, EngineError> {
    let (config, location) = match pubsub {
        PubSub::Memory => (BusConfig::Memory, "this process".to_string()),
        PubSub::Nats { url } => (
            BusConfig::Nats { url: url.clone() },
            rivet_config::redact::redact_url(url),
        ),
        PubSub::Postgres { url } => (
            BusConfig::Postgres { url: url.clone() },
            rivet_config::redact::redact_url(url),
        ),
    };
    Bus::connect(config)
        .await
        .map_err(|source| EngineError::Bus {
            action: "cannot connect to",
            backend: pubsub_kind(pubsub),
            location,
            source,
        })
}

fn storage_kind(storage: &Storage) -> &'static str {
    match storage {
        Storage::FileSystem { .. } => "file_system",
        Storage::Postgres { .. } => "postgres",
        Storage::Memory => "memory",
    }
}

fn storage_location(storage: &Storage) -> String {
    match storage {
        Storage::FileSystem { path, .. } => path.display().to_string(),
        Storage::Postgres { url, .. } => rivet_config::redact::redact_url(url),
        Storage::Memory => "memory".to_string(),
    }
}

fn pubsub_kind(pubsub: &PubSub) -> &'static str {
    match pubsub {
        PubSub::Memory => "memory",
        PubSub::Nats { .. } => "nats",
        PubSub::Postgres { .. } => "postgres",
    }
}
