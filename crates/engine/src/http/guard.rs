//! The public listener: health, metadata, the REST API, the actor gateway and the actor-host
//! socket.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{ray_id, HEALTH};
use rivet_api::{ApiError, ApiState};

/// Newest actor-host protocol version this engine speaks.
pub const ENVOY_PROTOCOL_VERSION: u16 = 8;
/// Epoxy (multi-datacenter consensus) protocol version advertised for compatibility.
pub const EPOXY_PROTOCOL_VERSION: u16 = 3;

/// `GET /metadata`: build facts. The npm client calls it before anything else.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    /// Always `"engine"`.
    pub runtime: &'static str,
    /// Engine version.
    pub version: &'static str,
    /// Git commit the binary was built from.
    pub git_sha: &'static str,
    /// Build time, RFC 3339.
    pub build_timestamp: &'static str,
    /// Compiler version.
    pub rustc_version: &'static str,
    /// Compiler host triple.
    pub rustc_host: &'static str,
    /// Target triple.
    pub cargo_target: &'static str,
    /// Cargo profile.
    pub cargo_profile: &'static str,
    /// Epoxy protocol version.
    pub epoxy_protocol_version: u16,
    /// Newest actor-host protocol version.
    pub envoy_protocol_version: u16,
}

/// This build's metadata.
pub const METADATA: Metadata = Metadata {
    runtime: "engine",
    version: crate::VERSION,
    git_sha: env!("RIVET_GIT_SHA"),
    build_timestamp: env!("RIVET_BUILD_TIMESTAMP"),
    rustc_version: env!("RIVET_RUSTC_VERSION"),
    rustc_host: env!("RIVET_RUSTC_HOST"),
    cargo_target: env!("RIVET_CARGO_TARGET"),
    cargo_profile: env!("RIVET_CARGO_PROFILE"),
    epoxy_protocol_version: EPOXY_PROTOCOL_VERSION,
    envoy_protocol_version: ENVOY_PROTOCOL_VERSION,
};

/// The guard router for a datacenter with `label` (ray ids carry it), serving the REST API
/// with `api`.
pub fn router(
    label: u16,
    api: ApiState,
    gateway: rivet_gateway::proxy::Gateway,
    sockets: super::envoy_socket::Sockets,
) -> Router {
    let envoys = super::envoy_socket::EnvoyState {
        shell: api.shell.clone(),
        admin_token: api.admin_token.clone(),
        sockets,
    };
    // Browser clients on other origins read these first (npm's client retries `/metadata`
    // until it can), so they get the REST routes' CORS handling.
    let probes = Router::new()
        .route("/health", get(|| async { Json(HEALTH) }))
        // Unknown query parameters (the npm client sends `namespace`) are ignored.
        .route("/metadata", get(|| async { Json(METADATA) }))
        .layer(axum::middleware::from_fn(rivet_api::cors::cors));
    Router::new()
        .route(
            "/envoys/connect",
            get(super::envoy_socket::connect).with_state(envoys),
        )
        .route("/", get(redirect_to_dashboard))
        .merge(probes)
        .merge(rivet_api::router(api))
        .fallback(|| async { ApiError::not_found() })
        // Gateway paths and the header form take precedence over the REST routes (§8).
        .layer(axum::middleware::from_fn_with_state(
            gateway,
            rivet_gateway::proxy::intercept,
        ))
        .layer(axum::middleware::from_fn_with_state(label, ray_id::tag))
}

async fn redirect_to_dashboard() -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "/ui/")]).into_response()
}
