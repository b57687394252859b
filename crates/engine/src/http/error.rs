//! Error bodies in the reference's `{group, code, message, metadata?}` shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

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
    /// `404 api.not_found` for an unknown route.
    pub fn not_found() -> ApiError {
        ApiError {
            group: "api",
            code: "not_found",
            message: "The requested resource was not found".to_string(),
            metadata: None,
            status: StatusCode::NOT_FOUND,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}
