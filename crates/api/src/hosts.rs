//! `GET /envoys`, `GET /runners`, `GET /runners/names` (engine-api.md §7.7).

use axum::extract::{RawQuery, State};
use axum::Json;
use rivet_orchestrator::actor::DEFAULT_LIST_LIMIT;
use rivet_orchestrator::envoy::{self, EnvoyView};
use serde::Serialize;
use serde_json::{json, Value};

use crate::actors::{flag, namespace_of, parse_id, ts_cursor, Pagination};
use crate::error::ApiError;
use crate::input::Query;
use crate::ApiState;

/// `GET /envoys` response.
#[derive(Debug, Serialize)]
pub(crate) struct EnvoyList {
    envoys: Vec<EnvoyView>,
    pagination: Pagination,
}

/// `GET /envoys`: connected, non-stopping hosts, newest `create_ts` first; `name` filters by
/// pool. With `envoy_key` the named hosts are returned without a cursor, as the reference does.
pub(crate) async fn envoys(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<EnvoyList>, ApiError> {
    let query = Query::parse(
        raw.as_deref(),
        &["namespace", "name", "envoy_key", "limit", "cursor"],
        &["envoy_key"],
        true,
    )?;
    query.required("namespace")?;
    let limit = query.number("limit")?.unwrap_or(DEFAULT_LIST_LIMIT);
    let before = ts_cursor(&query)?;
    let namespace = namespace_of(&state, &query).await?;
    let ns = namespace.id()?;
    let keys = query.all("envoy_key").to_vec();
    let by_key = !keys.is_empty();
    let pool = query.one("name");
    let rows = state
        .shell
        .db()
        .txn(|tx| {
            let keys = keys.clone();
            async move { envoy::list(&tx, ns, pool, &keys, usize::MAX).await }
        })
        .await?;
    let mut envoys: Vec<EnvoyView> = rows
        .into_iter()
        .filter(|(record, _)| by_key || before.is_none_or(|b| record.create_ts < b))
        .map(|(record, slots)| EnvoyView {
            envoy_key: record.envoy_key,
            namespace_id: namespace.namespace_id.clone(),
            datacenter: state.datacenter.name.clone(),
            pool_name: record.pool,
            version: record.version,
            slots,
            create_ts: record.create_ts,
            stop_ts: None,
            last_ping_ts: record.last_ping_ts,
            last_connected_ts: None,
            last_rtt: record.last_rtt,
            metadata: record.metadata,
        })
        .collect();
    envoys.sort_by_key(|e| std::cmp::Reverse(e.create_ts));
    envoys.truncate(limit);
    let cursor = if by_key {
        None
    } else {
        envoys.last().map(|e| e.create_ts.to_string())
    };
    Ok(Json(EnvoyList {
        envoys,
        pagination: Pagination { cursor },
    }))
}

/// `GET /runners`: legacy hosts, which this engine never has; the query is still validated.
pub(crate) async fn runners(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(
        raw.as_deref(),
        &[
            "namespace",
            "name",
            "runner_ids",
            "runner_id",
            "include_stopped",
            "limit",
            "cursor",
        ],
        &["runner_id"],
        true,
    )?;
    query.required("namespace")?;
    query.number("limit")?;
    flag(&query, "include_stopped")?;
    for id in query.list("runner_id", "runner_ids") {
        parse_id(id.trim())?;
    }
    namespace_of(&state, &query).await?;
    Ok(Json(
        json!({ "runners": [], "pagination": { "cursor": null } }),
    ))
}

/// `GET /runners/names`: legacy host names; always empty here.
pub(crate) async fn runner_names(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(raw.as_deref(), &["namespace", "limit", "cursor"], &[], true)?;
    query.required("namespace")?;
    query.number("limit")?;
    namespace_of(&state, &query).await?;
    Ok(Json(
        json!({ "names": [], "pagination": { "cursor": null } }),
    ))
}
