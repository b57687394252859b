//! The configuration as written in files and environment variables, section by section.
//!
//! Section and field names follow the reference engine 2.3.19, so its documented configuration
//! keeps working. Every struct rejects unknown keys so that a typo fails at start-up instead of
//! being silently ignored.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The whole file/environment configuration before it is resolved into [`crate::Config`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Public listener: REST API, gateway and actor-host socket.
    pub guard: Listener,
    /// Internal peer API listener (serves `/health`).
    pub api_peer: Listener,
    /// Prometheus metrics listener.
    pub metrics: Listener,
    /// Embedded storage in a directory (the default backend).
    pub file_system: Option<FileSystem>,
    /// PostgreSQL storage, for deployments of several engine nodes.
    pub postgres: Option<Postgres>,
    /// In-memory storage for tests and demos; nothing survives a restart.
    pub memory: Option<Memory>,
    /// The seed documentation's spelling of the storage sections (`database.file_system.path`).
    pub database: Option<Database>,
    /// Messaging between engine nodes.
    pub pubsub: Option<PubSub>,
    /// Authentication of the REST API and the actor-host socket.
    pub auth: Auth,
    /// This datacenter's identity.
    pub topology: Topology,
    /// Log output.
    pub logs: Logs,
    /// OpenTelemetry trace export.
    pub otel: Otel,
    /// Reference-engine sections, accepted so that a reference configuration (or the
    /// environment the npm host sets when it spawns an engine) does not stop this engine from
    /// starting; their contents are ignored. Workflow worker tuning.
    #[serde(skip_serializing)]
    pub runtime: Option<serde_json::Value>,
    /// Ignored reference section: actor scheduling tuning.
    #[serde(skip_serializing)]
    pub pegboard: Option<serde_json::Value>,
    /// Ignored reference section: feature flags.
    #[serde(skip_serializing)]
    pub features: Option<serde_json::Value>,
    /// Ignored reference section: usage telemetry (this engine sends none).
    #[serde(skip_serializing)]
    pub telemetry: Option<serde_json::Value>,
}

/// A TCP listener's address. Missing fields take the section's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listener {
    /// Interface to bind; loopback unless set.
    pub host: Option<String>,
    /// Port to bind; `0` picks a free port.
    pub port: Option<u16>,
}

/// The embedded store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSystem {
    /// Data directory; `$XDG_DATA_HOME/rivet-engine/db` (or `~/.local/share/rivet-engine/db`)
    /// when unset.
    pub path: Option<PathBuf>,
    /// fsync every commit group (durable across power loss). `false` leaves flushing to the OS,
    /// which is still durable across a crash of the engine process.
    pub sync: Option<bool>,
}

/// PostgreSQL storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Postgres {
    /// Connection URL, `postgres://user:password@host:port/db`.
    pub url: String,
    /// Connections in the pool.
    #[serde(default)]
    pub pool_size: Option<usize>,
}

/// In-memory storage; the section has no fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {}

/// Alias section: `database.file_system`, `database.postgres`, `database.memory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// Same as the top-level `file_system`.
    pub file_system: Option<FileSystem>,
    /// Same as the top-level `postgres`.
    pub postgres: Option<Postgres>,
    /// Same as the top-level `memory`.
    pub memory: Option<Memory>,
}

/// The bus between engine nodes: exactly one variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PubSub {
    /// In-process; one node only.
    Memory(Memory),
    /// NATS.
    Nats(NatsPubSub),
    /// PostgreSQL LISTEN/NOTIFY.
    Postgres(PostgresPubSub),
}

/// NATS connection settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsPubSub {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
}

/// PostgreSQL LISTEN/NOTIFY settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresPubSub {
    /// Connection URL; the storage section's URL when unset.
    pub url: Option<String>,
}

/// Authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// When set, the REST API and the actor-host socket require this token.
    pub admin_token: Option<String>,
}

/// This datacenter's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topology {
    /// Datacenter name, `default` unless set.
    pub datacenter_name: Option<String>,
    /// Datacenter label (1–65535) embedded in every id created here; 1 unless set.
    pub datacenter_label: Option<u16>,
    /// The URL other parties use to reach this engine's guard port.
    pub public_url: Option<String>,
}

/// Log output settings (also `RIVET_LOG_LEVEL` and `RIVET_LOG_FORMAT`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Logs {
    /// A level (`info`) or a tracing filter (`info,rivet_store=debug`).
    pub level: Option<String>,
    /// `text` or `json`.
    pub format: Option<LogFormat>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// OpenTelemetry settings (also `RIVET_OTEL_ENABLED`, `RIVET_OTEL_GRPC_ENDPOINT`,
/// `RIVET_OTEL_SAMPLER_RATIO`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Otel {
    /// Export traces.
    pub enabled: Option<bool>,
    /// OTLP gRPC collector endpoint.
    pub grpc_endpoint: Option<String>,
    /// Fraction of traces sampled, 0 to 1.
    pub sampler_ratio: Option<f64>,
}
