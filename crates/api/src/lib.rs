//! `rivet-api`: the engine's REST API (engine-api.md §7): namespaces, datacenters, runner
//! configs, actors, actor hosts, with the reference's error shapes (§4), admin-token auth (§3)
//! and CORS (§1.1).
//!
//! [`router`] returns routes only; the engine merges them into its guard router, which adds
//! `/health`, `/metadata`, the ray-id header and the `404` fallback ([`ApiError::not_found`]).

mod actors;
pub mod auth;
pub mod cors;
pub mod error;
mod hosts;
pub mod input;
mod namespaces;
mod runner_configs;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use rivet_orchestrator::shell::Shell;
use rivet_store::Db;
use serde_json::{json, Value};

pub use error::ApiError;
use input::Query;

/// This datacenter's identity as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datacenter {
    /// Datacenter name (`default`).
    pub name: String,
    /// Label embedded in ids.
    pub label: u16,
    /// URL others reach this engine's guard port at.
    pub public_url: String,
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub db: Db,
    /// Required bearer token, when configured.
    pub admin_token: Option<Arc<str>>,
    /// This datacenter.
    pub datacenter: Arc<Datacenter>,
    /// The actor orchestrator.
    pub shell: Shell,
}

impl ApiState {
    /// State for a datacenter, with an optional admin token.
    pub fn new(
        db: Db,
        admin_token: Option<String>,
        datacenter: Datacenter,
        shell: Shell,
    ) -> ApiState {
        ApiState {
            db,
            admin_token: admin_token.map(Arc::from),
            datacenter: Arc::new(datacenter),
            shell,
        }
    }
}

/// The REST routes, with auth (when a token is set) and CORS.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/namespaces",
            get(namespaces::list).post(namespaces::create),
        )
        .route("/datacenters", get(datacenters))
        .route("/runner-configs", get(runner_configs::list))
        .route(
            "/runner-configs/serverless-health-check",
            post(runner_configs::serverless_health_check),
        )
        .route(
            "/runner-configs/{pool}",
            put(runner_configs::upsert).delete(runner_configs::delete),
        )
        .route(
            "/runner-configs/{pool}/refresh-metadata",
            post(runner_configs::refresh_metadata),
        )
        .route(
            "/actors",
            get(actors::list)
                .post(actors::create)
                .put(actors::get_or_create),
        )
        .route("/actors/names", get(actors::names))
        .route("/actors/{actor_id}", delete(actors::destroy))
        .route("/actors/{actor_id}/sleep", post(actors::sleep))
        .route("/actors/{actor_id}/reschedule", post(actors::reschedule))
        .route("/actors/{actor_id}/kv/keys/{key}", get(actors::kv_get))
        .route("/envoys", get(hosts::envoys))
        .route("/runners", get(hosts::runners))
        .route("/runners/names", get(hosts::runner_names))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(cors::cors))
        .with_state(state)
}

/// `GET /datacenters`: this datacenter. Unknown query parameters are ignored; a given
/// `namespace` must exist.
async fn datacenters(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], false)?;
    if let Some(name) = query.one("namespace") {
        rivet_orchestrator::namespace::resolve(&state.db, name).await?;
    }
    let dc = &state.datacenter;
    let mut url = dc.public_url.clone();
    if !url.ends_with('/') {
        url.push('/');
    }
    Ok(Json(json!({
        "datacenters": [{ "label": dc.label, "name": dc.name, "url": url }],
        "pagination": { "cursor": null },
    })))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
