//! Errors of the namespace and runner-config data layer, one variant per reference error code.

use rivet_store::{StoreError, TxError};

/// A data-layer failure. The API maps each variant to the reference's `group.code`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// `namespace.not_found`.
    #[error("The namespace does not exist.")]
    NamespaceNotFound,
    /// `namespace.name_not_unique`.
    #[error("A namespace with this name already exists.")]
    NameNotUnique,
    /// `namespace.failed_to_create` with a reason such as `invalid name`.
    #[error("Failed to create namespace: {reason}")]
    FailedToCreate {
        /// `invalid name`, `name too long`, `display name too short`, `display name too long`.
        reason: &'static str,
    },
    /// `runner_config.invalid`.
    #[error("Invalid runner config: {reason}")]
    RunnerConfigInvalid {
        /// Why the config was refused.
        reason: String,
    },
    /// `actor.not_found`.
    #[error("The actor does not exist or was destroyed.")]
    ActorNotFound,
    /// `actor.duplicate_key`.
    #[error("Actor key '{key}' already in use for actor '{existing_actor_id}'")]
    DuplicateKey {
        /// The actor holding the key.
        existing_actor_id: String,
        /// The key.
        key: String,
    },
    /// `actor.empty_key`.
    #[error("Key label cannot be empty.")]
    EmptyKey,
    /// `actor.key_too_large`.
    #[error("Key is too large (max 1024 bytes).")]
    KeyTooLarge {
        /// The key's first characters.
        key_preview: String,
    },
    /// `actor.no_runner_config_configured`.
    #[error("No runner config with name '{pool}' is configured in namespace '{namespace}'.")]
    NoRunnerConfig {
        /// Namespace name.
        namespace: String,
        /// Pool name.
        pool: String,
    },
    /// `datacenter.not_found`.
    #[error("The datacenter does not exist.")]
    DatacenterNotFound,
    /// The lifecycle refused the input; nothing changed.
    #[error(transparent)]
    Rejected(#[from] crate::lifecycle::Rejection),
    /// The actor did not become ready in time (`guard.actor_ready_timeout`).
    #[error("Actor did not become ready in time.")]
    ReadyTimeout,
    /// The bus failed.
    #[error("bus: {0}")]
    Bus(String),
    /// A stored record did not decode (data written by an incompatible version).
    #[error("corrupt {what} record: {source}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// The decoder's error.
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DataError {
    /// Wraps a bus failure.
    pub fn bus(error: impl std::fmt::Display) -> DataError {
        DataError::Bus(error.to_string())
    }
}

impl TxError for DataError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            DataError::Store(error) => Some(error),
            _ => None,
        }
    }
}
