//! Typed engine configuration: built-in defaults, then config files (JSON, JSON5/JSONC, YAML),
//! then environment variables; later sources win.
//!
//! ```text
//! RIVET__guard__port=6420            nested key, `__` between levels, names case-insensitive
//! RIVET__auth__admin_token=secret
//! RIVET__file_system__path=/data
//! RIVET_LOG_LEVEL=debug RIVET_LOG_FORMAT=json
//! ```
//!
//! [`Config::load`] reads the sources and resolves defaults; every mistake (an unknown key, a
//! wrong type, two storage backends) is an error naming the key and the source that set it.

mod coerce;
pub mod error;
pub mod model;
pub mod redact;
pub mod sources;

use std::path::PathBuf;

use serde::Serialize;

pub use error::ConfigError;
pub use model::LogFormat;
use model::RawConfig;

/// Default guard (public API, gateway, actor-host socket) port.
pub const DEFAULT_GUARD_PORT: u16 = 6420;
/// Default peer API port.
pub const DEFAULT_API_PEER_PORT: u16 = 6421;
/// Default metrics port.
pub const DEFAULT_METRICS_PORT: u16 = 6430;
/// Default interface: loopback, so a fresh engine without an admin token is not exposed.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default PostgreSQL pool size.
pub const DEFAULT_POSTGRES_POOL_SIZE: usize = 16;
/// Default OpenTelemetry collector.
pub const DEFAULT_OTEL_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default fraction of traces sampled.
pub const DEFAULT_OTEL_SAMPLER_RATIO: f64 = 0.001;
/// Where config files are looked for when no `--config` is given.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/rivet";

/// The effective engine configuration, every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Public listener: REST API, gateway, actor-host socket.
    pub guard: ListenAddr,
    /// Internal peer API listener.
    pub api_peer: ListenAddr,
    /// Prometheus metrics listener.
    pub metrics: ListenAddr,
    /// Where the engine keeps its data.
    pub storage: Storage,
    /// Messaging between engine nodes.
    pub pubsub: PubSub,
    /// Authentication.
    pub auth: Auth,
    /// This datacenter's identity.
    pub topology: Topology,
    /// Log output.
    pub logs: Logs,
    /// OpenTelemetry export.
    pub otel: Otel,
}

/// An address to bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenAddr {
    /// Interface.
    pub host: String,
    /// Port; `0` picks a free one.
    pub port: u16,
}

impl ListenAddr {
    /// `host:port`, with IPv6 hosts bracketed.
    pub fn to_addr_string(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The storage backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// Embedded store in a directory.
    FileSystem {
        /// Data directory.
        path: PathBuf,
        /// fsync each commit group.
        sync: bool,
    },
    /// PostgreSQL.
    Postgres {
        /// Connection URL.
        url: String,
        /// Pool size.
        pool_size: usize,
    },
    /// In memory; nothing survives a restart.
    Memory,
}

/// The bus backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PubSub {
    /// In-process.
    Memory,
    /// NATS.
    Nats {
        /// Server URL.
        url: String,
    },
    /// PostgreSQL LISTEN/NOTIFY.
    Postgres {
        /// Connection URL.
        url: String,
    },
}

/// Authentication settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Auth {
    /// Required token for the REST API and actor-host socket, when set.
    pub admin_token: Option<String>,
}

/// This datacenter's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// Datacenter name.
    pub datacenter_name: String,
    /// Datacenter label embedded in ids.
    pub datacenter_label: u16,
    /// URL of this engine's guard port as others reach it.
    pub public_url: String,
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logs {
    /// Level or tracing filter directive.
    pub level: String,
    /// Line format.
    pub format: LogFormat,
}

/// OpenTelemetry export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Otel {
    /// Whether traces are exported.
    pub enabled: bool,
    /// OTLP gRPC endpoint.
    pub grpc_endpoint: String,
    /// Sampling ratio, 0 to 1.
    pub sampler_ratio: f64,
}

/// Where [`Config::load_from`] reads its inputs; lets tests supply files and environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config` paths (files or directories), in order. Empty: probe `/etc/rivet/config.*`.
    pub config_paths: Vec<PathBuf>,
    /// Directory probed for `config.{json,json5,jsonc,yaml,yml}` when `config_paths` is empty.
    pub default_dir: Option<PathBuf>,
    /// Environment variables (all of them; ours are picked out by name).
    pub env: Vec<(String, String)>,
}

impl Config {
    /// Loads from `--config` paths (or `/etc/rivet/config.*`) and the process environment.
    pub fn load(config_paths: &[PathBuf]) -> Result<Config, ConfigError> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            let ours = name.to_ascii_uppercase().starts_with("RIVET");
            if !ours && name != "HOME" && name != "XDG_DATA_HOME" {
                continue;
            }
            let value = value.into_string().map_err(|_| ConfigError::Env {
                name: name.to_string(),
                message: "value is not valid UTF-8".to_string(),
            })?;
            env.push((name.to_string(), value));
        }
        Config::load_from(&Sources {
            config_paths: config_paths.to_vec(),
            default_dir: Some(PathBuf::from(DEFAULT_CONFIG_DIR)),
            env,
        })
    }

    /// Loads from explicit sources.
    pub fn load_from(sources: &Sources) -> Result<Config, ConfigError> {
        let files = config_files(sources)?;
        let merged = sources::merge_sources(&files, &sources.env)?;
        let raw: RawConfig = serde_path_to_error::deserialize(coerce::Coerce(merged.value.clone()))
            .map_err(|error| {
                let key = error.path().to_string();
                ConfigError::Invalid {
                    origin: merged.origin_of(&key),
                    message: error.into_inner().to_string(),
                    key,
                }
            })?;
        resolve(raw, &merged, &sources.env)
    }

    /// The effective configuration as JSON with secrets (tokens, URL passwords) redacted.
    pub fn to_redacted_json(&self) -> serde_json::Value {
        redact::redacted(self)
    }
}

fn config_files(sources: &Sources) -> Result<Vec<PathBuf>, ConfigError> {
    if !sources.config_paths.is_empty() {
        let mut files = Vec::new();
        for path in &sources.config_paths {
            files.extend(sources::expand(path)?);
        }
        return Ok(files);
    }
    let Some(dir) = &sources.default_dir else {
        return Ok(Vec::new());
    };
    Ok(sources::EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("config.{ext}")))
        .filter(|path| path.is_file())
        .collect())
}

fn invalid(merged: &sources::Merged, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        origin: merged.origin_of(key),
        message: message.into(),
    }
}

fn resolve(
    raw: RawConfig,
    merged: &sources::Merged,
    env: &[(String, String)],
) -> Result<Config, ConfigError> {
    let storage = resolve_storage(&raw, merged, env)?;
    let listener = |section: &model::Listener, port: u16| ListenAddr {
        host: section
            .host
            .clone()
            .unwrap_or_else(|| DEFAULT_HOST.to_string()),
        port: section.port.unwrap_or(port),
    };
    let guard = listener(&raw.guard, DEFAULT_GUARD_PORT);
    let api_peer = listener(&raw.api_peer, DEFAULT_API_PEER_PORT);
    let metrics = listener(&raw.metrics, DEFAULT_METRICS_PORT);

    let pubsub = match raw.pubsub {
        None | Some(model::PubSub::Memory(_)) => PubSub::Memory,
        Some(model::PubSub::Nats(nats)) => {
            check_url(
                merged,
                "pubsub.nats.url",
                &nats.url,
                &["nats", "tls", "ws", "wss"],
            )?;
            PubSub::Nats { url: nats.url }
        }
        Some(model::PubSub::Postgres(pg)) => {
            let url = match (pg.url, &storage) {
                (Some(url), _) => url,
                (None, Storage::Postgres { url, .. }) => url.clone(),
                (None, _) => {
                    return Err(invalid(
                        merged,
                        "pubsub.postgres.url",
                        "required unless the storage backend is postgres",
                    ))
                }
            };
            check_url(
                merged,
                "pubsub.postgres.url",
                &url,
                &["postgres", "postgresql"],
            )?;
            PubSub::Postgres { url }
        }
    };

    if let Some(token) = &raw.auth.admin_token {
        if token.is_empty() {
            return Err(invalid(
                merged,
                "auth.admin_token",
                "must not be empty when set",
            ));
        }
    }

    let datacenter_label = raw.topology.datacenter_label.unwrap_or(1);
    if datacenter_label == 0 {
        return Err(invalid(
            merged,
            "topology.datacenter_label",
            "must be 1 or more",
        ));
    }
    let datacenter_name = raw
        .topology
        .datacenter_name
        .unwrap_or_else(|| "default".to_string());
    if datacenter_name.is_empty() {
        return Err(invalid(
            merged,
            "topology.datacenter_name",
            "must not be empty",
        ));
    }
    let public_url = match raw.topology.public_url {
        Some(url) => {
            check_url(merged, "topology.public_url", &url, &["http", "https"])?;
            url.trim_end_matches('/').to_string()
        }
        None => default_public_url(&guard),
    };

    let level = raw.logs.level.unwrap_or_else(|| "info".to_string());
    if level.trim().is_empty() {
        return Err(invalid(merged, "logs.level", "must not be empty"));
    }

    let grpc_endpoint = raw
        .otel
        .grpc_endpoint
        .unwrap_or_else(|| DEFAULT_OTEL_GRPC_ENDPOINT.to_string());
    check_url(
        merged,
        "otel.grpc_endpoint",
        &grpc_endpoint,
        &["http", "https"],
    )?;
    let sampler_ratio = raw.otel.sampler_ratio.unwrap_or(DEFAULT_OTEL_SAMPLER_RATIO);
    if !(0.0..=1.0).contains(&sampler_ratio) {
        return Err(invalid(
            merged,
            "otel.sampler_ratio",
            "must be between 0 and 1",
        ));
    }

    Ok(Config {
        guard,
        api_peer,
        metrics,
        storage,
        pubsub,
        auth: Auth {
            admin_token: raw.auth.admin_token,
        },
        topology: Topology {
            datacenter_name,
            datacenter_label,
            public_url,
        },
        logs: Logs {
            level,
            format: raw.logs.format.unwrap_or_default(),
        },
        otel: Otel {
            enabled: raw.otel.enabled.unwrap_or(false),
            grpc_endpoint,
            sampler_ratio,
        },
    })
}

/// The URL a guard listener is reached at from this machine.
pub fn default_public_url(guard: &ListenAddr) -> String {
    let host = match guard.host.as_str() {
        "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
        host => host,
    };
    let addr = ListenAddr {
        host: host.to_string(),
        port: guard.port,
    };
    format!("http://{}", addr.to_addr_string())
}

fn check_url(
    merged: &sources::Merged,
    key: &str,
    url: &str,
    schemes: &[&str],
) -> Result<(), ConfigError> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        Some(scheme) if schemes.contains(&scheme.to_ascii_lowercase().as_str()) => Ok(()),
        _ => Err(invalid(
            merged,
            key,
            format!("expected a URL starting with {}://", schemes.join("://, ")),
        )),
    }
}

fn resolve_storage(
    raw: &RawConfig,
    merged: &sources::Merged,
    env: &[(String, String)],
) -> Result<Storage, ConfigError> {
    let database = raw.database.clone().unwrap_or_default();
    let mut configured: Vec<(&str, Storage)> = Vec::new();
    for (key, section) in [
        ("file_system", &raw.file_system),
        ("database.file_system", &database.file_system),
    ] {
        if let Some(fs) = section {
            let path = match &fs.path {
                Some(path) => path.clone(),
                None => default_data_dir(env).ok_or_else(|| {
                    invalid(
                        merged,
                        &format!("{key}.path"),
                        "no default data directory: neither XDG_DATA_HOME nor HOME is set",
                    )
                })?,
            };
            configured.push((
                key,
                Storage::FileSystem {
                    path,
                    sync: fs.sync.unwrap_or(true),
                },
            ));
        }
    }
    for (key, section) in [
        ("postgres", &raw.postgres),
        ("database.postgres", &database.postgres),
    ] {
        if let Some(pg) = section {
            check_url(
                merged,
                &format!("{key}.url"),
                &pg.url,
                &["postgres", "postgresql"],
            )?;
            let pool_size = pg.pool_size.unwrap_or(DEFAULT_POSTGRES_POOL_SIZE);
            if pool_size == 0 {
                return Err(invalid(
                    merged,
                    &format!("{key}.pool_size"),
                    "must be 1 or more",
                ));
            }
            configured.push((
                key,
                Storage::Postgres {
                    url: pg.url.clone(),
                    pool_size,
                },
            ));
        }
    }
    for (key, section) in [
        ("memory", &raw.memory),
        ("database.memory", &database.memory),
    ] {
        if section.is_some() {
            configured.push((key, Storage::Memory));
        }
    }
    match configured.len() {
        0 => {
            let path = default_data_dir(env).ok_or_else(|| {
                invalid(
                    merged,
                    "file_system.path",
                    "no default data directory: neither XDG_DATA_HOME nor HOME is set; set file_system.path",
                )
            })?;
            Ok(Storage::FileSystem { path, sync: true })
        }
        1 => Ok(configured.remove(0).1),
        _ => Err(ConfigError::TwoBackends {
            first: configured[0].0.to_string(),
            first_origin: merged.origin_of(configured[0].0),
            second: configured[1].0.to_string(),
            second_origin: merged.origin_of(configured[1].0),
        }),
    }
}

/// `$XDG_DATA_HOME/rivet-engine/db`, else `~/.local/share/rivet-engine/db`.
fn default_data_dir(env: &[(String, String)]) -> Option<PathBuf> {
    let var = |name: &str| {
        env.iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| PathBuf::from(value))
    };
    let base =
        var("XDG_DATA_HOME").or_else(|| var("HOME").map(|home| home.join(".local/share")))?;
    Some(base.join("rivet-engine").join("db"))
}
