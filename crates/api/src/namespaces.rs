//! `GET /namespaces`, `POST /namespaces` (engine-api.md §7.1).

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use bytes::Bytes;
use rivet_orchestrator::id::Id;
use rivet_orchestrator::namespace::{self, ListQuery, Namespace};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::input::{json_body, Query};
use crate::{now_ms, ApiState};

/// `POST /namespaces` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateNamespace {
    name: String,
    display_name: String,
}

/// `POST /namespaces` response.
#[derive(Debug, Serialize)]
pub(crate) struct Created {
    namespace: Namespace,
}

/// `GET /namespaces` response.
#[derive(Debug, Serialize)]
pub(crate) struct Listed {
    namespaces: Vec<Namespace>,
    pagination: Pagination,
}

/// The reference's cursor: `create_ts` of the last item, as text.
#[derive(Debug, Serialize)]
pub(crate) struct Pagination {
    cursor: Option<String>,
}

/// Lists namespaces in id order. `cursor` parses but is not honoured, like the reference.
pub(crate) async fn list(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Listed>, ApiError> {
    let query = Query::parse(
        raw.as_deref(),
        &["limit", "cursor", "name", "namespace_id", "namespace_ids"],
        &["namespace_id"],
        true,
    )?;
    let limit = query.number("limit")?;
    let _cursor = query.one("cursor");
    let ids = query
        .list("namespace_id", "namespace_ids")
        .iter()
        .map(|id| {
            id.parse::<Id>()
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let namespaces = namespace::list(
        &state.db,
        ListQuery {
            limit,
            name: query.one("name").map(str::to_string),
            ids,
        },
    )
    .await?;
    let cursor = namespaces.last().map(|ns| ns.create_ts.to_string());
    Ok(Json(Listed {
        namespaces,
        pagination: Pagination { cursor },
    }))
}

/// Creates a namespace.
pub(crate) async fn create(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Created>, ApiError> {
    Query::parse(raw.as_deref(), &[], &[], true)?;
    let request: CreateNamespace = json_body(&headers, &body)?;
    let namespace = namespace::create(
        &state.db,
        state.datacenter.label,
        &request.name,
        &request.display_name,
        now_ms(),
    )
    .await?;
    Ok(Json(Created { namespace }))
}
