//! The metrics listener: the text exposition on any path.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::Router;
use prometheus_client::registry::Registry;

/// The metrics router.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new().fallback(move || {
        let registry = registry.clone();
        async move {
            (
                [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
                crate::metrics::render(&registry),
            )
                .into_response()
        }
    })
}
