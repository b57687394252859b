//! The internal peer listener; for now it serves the health probe other nodes use.

use axum::routing::get;
use axum::{Json, Router};

use super::{ray_id, HEALTH};
use rivet_api::{ApiError, ApiState};

/// The peer router: the REST routes without the token check, as the reference's peer port.
pub fn router(label: u16, mut api: ApiState) -> Router {
    api.admin_token = None;
    Router::new()
        .route("/health", get(|| async { Json(HEALTH) }))
        .merge(rivet_api::router(api))
        .fallback(|| async { ApiError::not_found() })
        .layer(axum::middleware::from_fn_with_state(label, ray_id::tag))
}
