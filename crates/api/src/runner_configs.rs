//! `GET /runner-configs`, `PUT` and `DELETE /runner-configs/{pool}` (engine-api.md §7.2).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use rivet_orchestrator::namespace::Namespace;
use rivet_orchestrator::runner_config::{self, ListQuery, RunnerConfig, RunnerConfigResponse};
use rivet_orchestrator::serverless;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::input::{json_body, Query};
use crate::ApiState;

/// `PUT /runner-configs/{pool}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertBody {
    datacenters: BTreeMap<String, Value>,
}

/// One pool in `GET /runner-configs`.
#[derive(Serialize)]
struct PoolResponse<'a> {
    datacenters: BTreeMap<&'a str, RunnerConfigResponse<'a>>,
}

/// `GET /runner-configs` response.
#[derive(Serialize)]
struct ListResponse<'a> {
    runner_configs: BTreeMap<&'a str, PoolResponse<'a>>,
    pagination: Pagination,
}

/// A page's cursor; always null here, like the reference.
#[derive(Serialize)]
struct Pagination {
    cursor: Option<String>,
}

async fn namespace_of(state: &ApiState, query: &Query) -> Result<Namespace, ApiError> {
    let name = query.required("namespace")?;
    Ok(rivet_orchestrator::namespace::resolve(&state.db, name).await?)
}

fn namespace_id(namespace: &Namespace) -> Result<rivet_orchestrator::id::Id, ApiError> {
    Ok(namespace.id()?)
}

/// Lists the namespace's pools with their per-datacenter configs, defaults filled in.
pub(crate) async fn list(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(
        raw.as_deref(),
        &[
            "namespace",
            "limit",
            "cursor",
            "variant",
            "runner_name",
            "runner_names",
        ],
        &["runner_name"],
        true,
    )?;
    let limit = query.number("limit")?;
    let variant = match query.one("variant") {
        None => None,
        Some(v @ ("normal" | "serverless")) => Some(v.to_string()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown variant `{other}`, expected `serverless` or `normal`"
            )))
        }
    };
    let namespace = namespace_of(&state, &query).await?;
    let pools = runner_config::list(
        &state.db,
        namespace_id(&namespace)?,
        ListQuery {
            limit,
            variant,
            pools: query.list("runner_name", "runner_names"),
        },
    )
    .await?;
    let ns = namespace_id(&namespace)?;
    let names: Vec<String> = pools.iter().map(|(pool, _)| pool.clone()).collect();
    // The protocol version the pool's hosts last connected with (null until one did).
    let protocols: Vec<(Option<u16>, Option<serverless::PoolError>)> = state
        .db
        .txn(|tx| {
            let names = names.clone();
            async move {
                let mut out = Vec::with_capacity(names.len());
                for pool in &names {
                    out.push((
                        rivet_orchestrator::envoy::pool_protocol(&tx, ns, pool).await?,
                        serverless::pool_error(&tx, ns, pool).await?,
                    ));
                }
                Ok::<_, rivet_orchestrator::error::DataError>(out)
            }
        })
        .await?;
    let runner_configs: BTreeMap<&str, PoolResponse<'_>> = pools
        .iter()
        .zip(protocols)
        .map(|((pool, configs), (protocol, pool_error))| {
            let datacenters = configs
                .iter()
                .map(|(dc, config)| {
                    let mut response = config.response(protocol);
                    response.runner_pool_error = pool_error
                        .as_ref()
                        .and_then(|e| serde_json::to_value(e).ok());
                    (dc.as_str(), response)
                })
                .collect();
            (pool.as_str(), PoolResponse { datacenters })
        })
        .collect();
    // Serialized straight from the structs so the kind's fields keep the reference's order.
    Ok(Json(ListResponse {
        runner_configs,
        pagination: Pagination { cursor: None },
    })
    .into_response())
}

/// Replaces a pool's configs; datacenters left out lose theirs.
pub(crate) async fn upsert(
    State(state): State<ApiState>,
    Path(pool): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], true)?;
    let request: UpsertBody = json_body(&headers, &body)?;
    let mut configs = BTreeMap::new();
    for (dc, value) in request.datacenters {
        let config = RunnerConfig::from_request(value).map_err(|error| match error {
            Ok(reason) => ApiError::bad_request(reason),
            Err(invalid) => ApiError::from(invalid),
        })?;
        if dc != state.datacenter.name {
            return Err(ApiError::datacenter_not_found());
        }
        configs.insert(dc, config);
    }
    let namespace = namespace_of(&state, &query).await?;
    let serverless_pool = configs
        .values()
        .any(|c| matches!(c.kind, runner_config::Kind::Serverless(_)));
    let ns = namespace_id(&namespace)?;
    let changed = runner_config::upsert(&state.db, ns, &pool, configs).await?;
    if serverless_pool {
        // Learn the application's protocol version and actor names now, not at the next poll.
        let shell = state.shell.clone();
        tokio::spawn(async move {
            if let Err(error) = shell.refresh_pool_metadata(ns, &pool).await {
                tracing::warn!(%error, pool, "serverless metadata refresh failed");
            }
        });
    }
    Ok(Json(json!({ "endpoint_config_changed": changed })))
}

/// Deletes a pool's configs; `{}` for unknown pools too.
pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path(pool): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], true)?;
    let namespace = namespace_of(&state, &query).await?;
    runner_config::delete(&state.db, namespace_id(&namespace)?, &pool).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthCheckBody {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// `POST /runner-configs/serverless-health-check`: GETs `{url}/metadata` with the headers.
pub(crate) async fn serverless_health_check(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], true)?;
    let request: HealthCheckBody = json_body(&headers, &body)?;
    namespace_of(&state, &query).await?;
    Ok(Json(
        match serverless::fetch_metadata(&request.url, &request.headers).await {
            Ok(metadata) => json!({ "success": { "version": metadata.version } }),
            Err(error) => json!({ "failure": { "error": {
                "message": error.message,
                "metadata": { "kind": error.kind },
            } } }),
        },
    ))
}

/// `POST /runner-configs/{pool}/refresh-metadata`: fetches the pool's metadata now.
pub(crate) async fn refresh_metadata(
    State(state): State<ApiState>,
    Path(pool): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], true)?;
    let _: EmptyBody = json_body(&headers, &body)?;
    let namespace = namespace_of(&state, &query).await?;
    match state
        .shell
        .refresh_pool_metadata(namespace_id(&namespace)?, &pool)
        .await?
    {
        Some(Err(error)) => Err(ApiError::new(
            "serverless_runner_pool",
            "failed_to_fetch_metadata",
            "Failed to fetch serverless runner pool metadata.",
        )
        .with_metadata(json!({ "reason": {
            "message": error.message,
            "metadata": { "kind": error.kind },
        } }))),
        Some(Ok(_)) | None => Ok(Json(json!({}))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}
