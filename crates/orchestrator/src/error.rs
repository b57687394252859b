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

impl TxError for DataError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            DataError::Store(error) => Some(error),
            _ => None,
        }
    }
}
