//! Why the engine could not start or stopped uncleanly.

use std::net::SocketAddr;

/// An engine start-up or shutdown failure, worded for the operator who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A listener's port is taken by another process.
    #[error("the {listener} port {addr} is already in use; stop the other process or set {key} (env {env}) to a free port")]
    PortInUse {
        /// Which listener.
        listener: &'static str,
        /// The address.
        addr: String,
        /// The config key of its port.
        key: &'static str,
        /// The environment variable of its port.
        env: &'static str,
    },
    /// A listener could not be bound for another reason.
    #[error("cannot listen on {addr} for the {listener}: {source}")]
    Bind {
        /// Which listener.
        listener: &'static str,
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store could not be opened or closed.
    #[error("{action} the {backend} store at {location}: {source}")]
    Store {
        /// What was being done.
        action: &'static str,
        /// `file_system`, `postgres` or `memory`.
        backend: &'static str,
        /// Data directory or URL (credentials redacted).
        location: String,
        /// The store's error.
        source: rivet_store::StoreError,
    },
    /// The bus could not be connected or closed.
    #[error("{action} the {backend} bus at {location}: {source}")]
    Bus {
        /// What was being done.
        action: &'static str,
        /// `memory`, `nats` or `postgres`.
        backend: &'static str,
        /// Server URL (credentials redacted).
        location: String,
        /// The bus's error.
        source: rivet_bus::BusError,
    },
    /// The default namespace could not be read or created.
    #[error("cannot create the default namespace: {source}")]
    DefaultNamespace {
        /// The data layer's error.
        source: rivet_orchestrator::error::DataError,
    },
    /// The orchestrator could not start (it subscribes to the bus).
    #[error("cannot start the orchestrator: {source}")]
    Orchestrator {
        /// The data layer's error.
        source: rivet_orchestrator::error::DataError,
    },
    /// A listener stopped with an error.
    #[error("the {listener} on {addr} failed: {source}")]
    Serve {
        /// Which listener.
        listener: &'static str,
        /// Its bound address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}
