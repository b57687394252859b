//! Tags every response with `x-rivet-ray-id`, the id that ties a request to its log lines.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use rivet_orchestrator::id::Id;

/// Response header carrying the ray id.
pub const HEADER: &str = "x-rivet-ray-id";

/// The request's ray id, for handlers that report it themselves (WebSocket close reasons).
#[derive(Debug, Clone, Copy)]
pub struct RayId(pub Id);

/// Middleware: makes a ray id, runs the handler inside a span carrying it, and sets it on the
/// response so a client's report can be matched to the engine's logs.
pub async fn tag(State(label): State<u16>, mut request: Request, next: Next) -> Response {
    let ray = Id::new(label);
    request.extensions_mut().insert(RayId(ray));
    request
        .extensions_mut()
        .insert(rivet_gateway::proxy::Ray(ray));
    let span = tracing::debug_span!(
        "request",
        ray_id = %ray,
        method = %request.method(),
        path = %request.uri().path()
    );
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&ray.to_string()) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
