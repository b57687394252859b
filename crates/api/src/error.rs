//! The one error type of the engine's HTTP surface: `{group, code, message, metadata?}` with
//! the reference's status codes (engine-api.md §4).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rivet_orchestrator::error::DataError;
use serde::Serialize;
use serde_json::json;

/// An error that reaches an HTTP client.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    /// Error group, e.g. `api`.
    pub group: &'static str,
    /// Error code within the group, e.g. `not_found`.
    pub code: &'static str,
    /// Human-readable message; clients branch on group and code only.
    pub message: String,
    /// Extra structured detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
}

impl ApiError {
    /// An error with a 400 status and no metadata.
    pub fn new(group: &'static str, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            group,
            code,
            message: message.into(),
            metadata: None,
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// Adds metadata.
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> ApiError {
        self.metadata = Some(metadata);
        self
    }

    /// Sets the status.
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// `404 api.not_found` for an unknown route.
    pub fn not_found() -> ApiError {
        ApiError::new("api", "not_found", "The requested resource was not found")
            .with_status(StatusCode::NOT_FOUND)
    }

    /// `400 api.bad_request`: the query or body did not deserialize.
    pub fn bad_request(reason: impl Into<String>) -> ApiError {
        let reason = reason.into();
        ApiError::new(
            "api",
            "bad_request",
            format!("Request is invalid: {reason}"),
        )
        .with_metadata(json!({ "reason": reason }))
    }

    /// `403 api.forbidden`.
    pub fn forbidden(reason: &str) -> ApiError {
        ApiError::new("api", "forbidden", format!("Access denied: {reason}"))
            .with_metadata(json!({ "reason": reason }))
            .with_status(StatusCode::FORBIDDEN)
    }

    /// `500 core.internal_error`; the cause is logged, never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new("core", "internal_error", "An internal error occurred")
            .with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// `400 namespace.not_found`.
    pub fn namespace_not_found() -> ApiError {
        ApiError::new("namespace", "not_found", "The namespace does not exist.")
    }

    /// `400 datacenter.not_found`.
    pub fn datacenter_not_found() -> ApiError {
        ApiError::new("datacenter", "not_found", "The datacenter does not exist.")
    }

    /// `400 api.unsupported`: a reference route this engine does not implement yet.
    pub fn unsupported(what: &str) -> ApiError {
        ApiError::new(
            "api",
            "unsupported",
            format!("{what} is not supported by this engine yet"),
        )
    }
}

impl From<DataError> for ApiError {
    fn from(error: DataError) -> ApiError {
        match error {
            DataError::NamespaceNotFound => ApiError::namespace_not_found(),
            DataError::NameNotUnique => ApiError::new(
                "namespace",
                "name_not_unique",
                "Namespace name must be unique.",
            ),
            DataError::FailedToCreate { reason } => ApiError::new(
                "namespace",
                "failed_to_create",
                format!("Failed to create namespace: {reason}"),
            )
            .with_metadata(json!({ "reason": reason })),
            DataError::RunnerConfigInvalid { reason } => ApiError::new(
                "runner_config",
                "invalid",
                format!("Invalid runner config: {reason}"),
            )
            .with_metadata(json!({ "reason": reason })),
            DataError::ActorNotFound
            | DataError::Rejected(rivet_orchestrator::lifecycle::Rejection::Destroyed) => {
                ApiError::new(
                    "actor",
                    "not_found",
                    "The actor does not exist or was destroyed.",
                )
            }
            DataError::DuplicateKey {
                existing_actor_id,
                key,
            } => ApiError::new(
                "actor",
                "duplicate_key",
                format!("Actor key '{key}' already in use for actor '{existing_actor_id}'"),
            )
            .with_metadata(json!({ "existing_actor_id": existing_actor_id, "key": key })),
            DataError::EmptyKey => {
                ApiError::new("actor", "empty_key", "Key label cannot be empty.")
            }
            DataError::KeyTooLarge { key_preview } => ApiError::new(
                "actor",
                "key_too_large",
                "Key is too large (max 1024 bytes).",
            )
            .with_metadata(json!({ "key_preview": key_preview, "max_size": 1024 })),
            DataError::NoRunnerConfig { namespace, pool } => ApiError::new(
                "actor",
                "no_runner_config_configured",
                format!(
                    "No runner config with name '{pool}' is configured in namespace '{namespace}'."
                ),
            )
            .with_metadata(json!({ "namespace": namespace, "pool_name": pool })),
            DataError::DatacenterNotFound => ApiError::datacenter_not_found(),
            DataError::ReadyTimeout => ApiError::new(
                "guard",
                "actor_ready_timeout",
                "Actor did not become ready in time.",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE),
            // A lifecycle input that does not apply now changes nothing; the route decides
            // whether that is an error (most answer `{}`).
            DataError::Rejected(rejection) => {
                ApiError::new("actor", "invalid_state", rejection.to_string())
            }
            other @ (DataError::Corrupt { .. } | DataError::Store(_) | DataError::Bus(_)) => {
                ApiError::internal(&other)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_are_masked_as_internal_errors() {
        let error = ApiError::from(DataError::Store(rivet_store::StoreError::engine(
            "commit",
            "disk on fire",
        )));
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"group": "core", "code": "internal_error", "message": "An internal error occurred"})
        );
    }

    #[test]
    fn data_errors_keep_the_reference_codes() {
        let error = ApiError::from(DataError::FailedToCreate {
            reason: "invalid name",
        });
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!((error.group, error.code), ("namespace", "failed_to_create"));
        assert_eq!(error.metadata, Some(json!({"reason": "invalid name"})));
        let error = ApiError::from(DataError::NamespaceNotFound);
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"group": "namespace", "code": "not_found", "message": "The namespace does not exist."})
        );
    }
}
