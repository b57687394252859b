//! The internal peer listener; for now it serves the health probe other nodes use.

use axum::routing::get;
use axum::{Json, Router};

use super::error::ApiError;
use super::{ray_id, HEALTH};

/// The peer router.
pub fn router(label: u16) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(HEALTH) }))
        .fallback(|| async { ApiError::not_found() })
        .layer(axum::middleware::from_fn_with_state(label, ray_id::tag))
}
