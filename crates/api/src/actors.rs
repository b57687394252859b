//! The actor routes (engine-api.md §7.3–§7.7): list, create, get-or-create, destroy, sleep,
//! reschedule, one KV key and the actor names hosts reported.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use rivet_orchestrator::actor::{self, ActorView, MAX_ACTOR_IDS};
use rivet_orchestrator::error::DataError;
use rivet_orchestrator::id::Id;
use rivet_orchestrator::lifecycle::{CrashPolicy, Input};
use rivet_orchestrator::namespace::Namespace;
use rivet_orchestrator::shell::CreateRequest;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::input::{json_body, Query};
use crate::ApiState;

/// A page's cursor: the reference's text form of the last item's sort key, null when empty.
#[derive(Debug, Serialize)]
pub(crate) struct Pagination {
    pub(crate) cursor: Option<String>,
}

/// `GET /actors` response.
#[derive(Debug, Serialize)]
pub(crate) struct ActorList {
    actors: Vec<ActorView>,
    pagination: Pagination,
}

/// `POST /actors` response.
#[derive(Debug, Serialize)]
pub(crate) struct Created {
    actor: ActorView,
}

/// `PUT /actors` response.
#[derive(Debug, Serialize)]
pub(crate) struct GotOrCreated {
    actor: ActorView,
    created: bool,
}

/// `POST /actors` body; fields in the reference's order (it shows in "expected one of").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    datacenter: Option<String>,
    name: String,
    key: Option<String>,
    input: Option<String>,
    runner_name_selector: String,
    crash_policy: CrashPolicy,
}

/// `PUT /actors` body: as [`CreateBody`] with a required key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetOrCreateBody {
    datacenter: Option<String>,
    name: String,
    key: String,
    input: Option<String>,
    runner_name_selector: String,
    crash_policy: CrashPolicy,
}

/// The `{}` body of sleep and reschedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// `400 validation.invalid_input`.
fn invalid_input(message: &str) -> ApiError {
    ApiError::new("validation", "invalid_input", message)
        .with_metadata(json!({ "message": message }))
}

/// Parses an id, rejecting a malformed one as `api.bad_request` with the parser's reason.
pub(crate) fn parse_id(text: &str) -> Result<Id, ApiError> {
    text.parse::<Id>()
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The required `namespace` parameter, resolved.
pub(crate) async fn namespace_of(state: &ApiState, query: &Query) -> Result<Namespace, ApiError> {
    let name = query.required("namespace")?;
    Ok(rivet_orchestrator::namespace::resolve(&state.db, name).await?)
}

/// An optional boolean parameter (`true`/`false`).
pub(crate) fn flag(query: &Query, name: &str) -> Result<Option<bool>, ApiError> {
    query
        .one(name)
        .map(|v| {
            v.parse::<bool>()
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .transpose()
}

/// An optional `create_ts` cursor.
pub(crate) fn ts_cursor(query: &Query) -> Result<Option<i64>, ApiError> {
    query
        .one("cursor")
        .map(|v| {
            v.parse::<i64>()
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .transpose()
}

/// Standard base64 with padding; anything else is "no input", as the reference does.
fn decode_input(input: Option<String>) -> Option<Vec<u8>> {
    input.and_then(|text| STANDARD.decode(text).ok())
}

/// A path that did not extract (e.g. percent-decoding to invalid UTF-8).
fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

/// Loads the actor and checks it belongs to `namespace`; otherwise `actor.not_found`, as the
/// reference answers for another namespace's actor too. The actor is looked up first, so an
/// unknown actor wins over an unknown namespace.
async fn actor_in_namespace(
    state: &ApiState,
    actor_id: Id,
    namespace: Option<&str>,
) -> Result<ActorView, ApiError> {
    let view = state
        .shell
        .get_actor(actor_id)
        .await?
        .ok_or(DataError::ActorNotFound)?;
    if let Some(name) = namespace {
        let namespace = rivet_orchestrator::namespace::resolve(&state.db, name).await?;
        if namespace.namespace_id != view.namespace_id {
            return Err(DataError::ActorNotFound.into());
        }
    }
    Ok(view)
}

/// `GET /actors`: by ids, by name and key, or by name (newest first, paginated by `create_ts`).
pub(crate) async fn list(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ActorList>, ApiError> {
    let query = Query::parse(
        raw.as_deref(),
        &[
            "namespace",
            "name",
            "key",
            "actor_ids",
            "actor_id",
            "include_destroyed",
            "limit",
            "cursor",
        ],
        &["actor_id"],
        true,
    )?;
    query.required("namespace")?;
    let limit = query.number("limit")?.unwrap_or(actor::DEFAULT_LIST_LIMIT);
    let include_destroyed = flag(&query, "include_destroyed")?.unwrap_or(false);
    let mut ids = query
        .all("actor_id")
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<_>, _>>()?;
    for list in query.all("actor_ids") {
        for item in list.split(',') {
            let id = item.trim().parse::<Id>().map_err(|e| {
                ApiError::bad_request(format!("invalid id in `actor_ids` query: {e}"))
            })?;
            ids.push(id);
        }
    }
    let name = query.one("name");
    let key = query.one("key");
    if !ids.is_empty() && (name.is_some() || key.is_some()) {
        return Err(invalid_input(
            "Cannot provide both actor_id and (name + key). Use either actor_id or (name + key).",
        ));
    }
    if key.is_some() && name.is_none() {
        return Err(invalid_input("Name is required when key is provided."));
    }

    if !ids.is_empty() {
        if ids.len() > MAX_ACTOR_IDS {
            return Err(ApiError::new(
                "validation",
                "too_many_actor_ids",
                format!(
                    "Too many actor IDs provided. Maximum is {MAX_ACTOR_IDS}, got {}",
                    ids.len()
                ),
            )
            .with_metadata(json!({ "count": ids.len(), "max": MAX_ACTOR_IDS })));
        }
        let namespace = namespace_of(&state, &query).await?;
        ids.sort();
        ids.dedup();
        let mut actors = state
            .shell
            .db()
            .txn(|tx| {
                let ids = ids.clone();
                async move {
                    let mut out = Vec::with_capacity(ids.len());
                    for id in ids {
                        if let Some((meta, record)) = actor::load(&tx, id).await? {
                            out.push(ActorView::new(&meta, &record));
                        }
                    }
                    Ok::<_, DataError>(out)
                }
            })
            .await?;
        // Destroyed actors are included in this mode; other namespaces' actors are not.
        actors.retain(|a| a.namespace_id == namespace.namespace_id);
        actors.sort_by_key(|a| std::cmp::Reverse(a.create_ts));
        actors.truncate(limit);
        return Ok(Json(page(actors)));
    }

    let Some(name) = name else {
        return Err(invalid_input("Name is required when not using actor_ids."));
    };
    let namespace = namespace_of(&state, &query).await?;
    let ns = namespace.id()?;
    if let (Some(key), false) = (key, include_destroyed) {
        // The live holder of the key; `limit` and `cursor` do not apply (reference behaviour).
        let found = state
            .shell
            .db()
            .txn(|tx| async move {
                match actor::by_key(&tx, ns, name, key).await? {
                    Some(id) => actor::load(&tx, id).await,
                    None => Ok(None),
                }
            })
            .await?;
        let actors = found
            .map(|(meta, record)| ActorView::new(&meta, &record))
            .into_iter()
            .collect();
        return Ok(Json(page(actors)));
    }
    let before = ts_cursor(&query)?;
    let rows = state
        .shell
        .db()
        .txn(|tx| async move {
            actor::list_by_name_and_key(&tx, ns, name, key, before, include_destroyed, limit).await
        })
        .await?;
    let actors = rows
        .iter()
        .map(|(meta, record)| ActorView::new(meta, record))
        .collect();
    Ok(Json(page(actors)))
}

/// A page of actors with the `create_ts` cursor of the last one.
fn page(actors: Vec<ActorView>) -> ActorList {
    let cursor = actors.last().map(|a| a.create_ts.to_string());
    ActorList {
        actors,
        pagination: Pagination { cursor },
    }
}

/// `POST /actors`: creates an actor; a key in use is `actor.duplicate_key`.
pub(crate) async fn create(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Created>, ApiError> {
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], true)?;
    query.required("namespace")?;
    let body: CreateBody = json_body(&headers, &body)?;
    let namespace = namespace_of(&state, &query).await?;
    tracing::debug!(crash_policy = ?body.crash_policy, "envoy pools always use the sleep policy");
    let request = CreateRequest {
        name: body.name,
        key: body.key,
        input: decode_input(body.input),
        pool: body.runner_name_selector,
        datacenter: body.datacenter,
    };
    let (actor, _) = state.shell.create_actor(&namespace, request, false).await?;
    Ok(Json(Created { actor }))
}

/// `PUT /actors`: the live actor holding the key, or a new one; concurrent calls converge.
pub(crate) async fn get_or_create(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<GotOrCreated>, ApiError> {
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], true)?;
    query.required("namespace")?;
    let body: GetOrCreateBody = json_body(&headers, &body)?;
    let namespace = namespace_of(&state, &query).await?;
    tracing::debug!(crash_policy = ?body.crash_policy, "envoy pools always use the sleep policy");
    let request = CreateRequest {
        name: body.name,
        key: Some(body.key),
        input: decode_input(body.input),
        pool: body.runner_name_selector,
        datacenter: body.datacenter,
    };
    let (actor, created) = state.shell.create_actor(&namespace, request, true).await?;
    Ok(Json(GotOrCreated { actor, created }))
}

/// `DELETE /actors/{actor_id}`: destroys; `{}` for an already destroyed actor, `400
/// actor.not_found` for one that never existed. `namespace` is optional here, as on the
/// reference; when given, the actor must belong to it.
pub(crate) async fn destroy(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let Path(actor_id) = path.map_err(path_error)?;
    let actor_id = parse_id(&actor_id)?;
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], true)?;
    actor_in_namespace(&state, actor_id, query.one("namespace")).await?;
    state.shell.destroy(actor_id).await?;
    Ok(Json(json!({})))
}

/// `POST /actors/{actor_id}/sleep`.
pub(crate) async fn sleep(
    state: State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    raw: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    lifecycle_input(state, path, raw, headers, body, Input::Sleep).await
}

/// `POST /actors/{actor_id}/reschedule`.
pub(crate) async fn reschedule(
    state: State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    raw: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    lifecycle_input(state, path, raw, headers, body, Input::Reschedule).await
}

/// Sleep and reschedule: an input that does not apply now (already sleeping, destroyed, a stop
/// under way) changes nothing and answers `{}`, as the reference's signal to a finished or busy
/// actor does.
async fn lifecycle_input(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let Path(actor_id) = path.map_err(path_error)?;
    let actor_id = parse_id(&actor_id)?;
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], true)?;
    let namespace = query.required("namespace")?;
    let _: EmptyBody = json_body(&headers, &body)?;
    actor_in_namespace(&state, actor_id, Some(namespace)).await?;
    match state.shell.apply(actor_id, input).await {
        Ok(_) => {}
        Err(DataError::Rejected(rejection)) => {
            tracing::debug!(%actor_id, %rejection, "lifecycle input changed nothing");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Json(json!({})))
}

/// `GET /actors/{actor_id}/kv/keys/{key}`: one KV entry; the key is standard base64.
pub(crate) async fn kv_get(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let Path((actor_id, key)) = path.map_err(path_error)?;
    let actor_id = parse_id(&actor_id)?;
    let query = Query::parse(raw.as_deref(), &["namespace"], &[], true)?;
    let namespace = query.required("namespace")?;
    actor_in_namespace(&state, actor_id, Some(namespace)).await?;
    // The reference answers an undecodable key with a masked internal error.
    let key = STANDARD
        .decode(&key)
        .map_err(|e| ApiError::internal(&format!("failed to decode base64 key: {e}")))?;
    let entry = state
        .shell
        .db()
        .txn(|tx| {
            let key = key.clone();
            async move {
                rivet_orchestrator::actor_kv::get_one(&tx, &actor_id, &key)
                    .await
                    .map_err(DataError::from)
            }
        })
        .await?;
    let Some((value, update_ts)) = entry else {
        return Err(ApiError::new(
            "actor",
            "kv_key_not_found",
            "The KV key does not exist for this actor.",
        ));
    };
    Ok(Json(
        json!({ "value": STANDARD.encode(value), "update_ts": update_ts }),
    ))
}

/// `GET /actors/names`: names hosts reported, in name order; the cursor is the last name.
pub(crate) async fn names(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(raw.as_deref(), &["namespace", "limit", "cursor"], &[], true)?;
    query.required("namespace")?;
    let limit = query.number("limit")?.unwrap_or(actor::DEFAULT_LIST_LIMIT);
    let namespace = namespace_of(&state, &query).await?;
    let ns = namespace.id()?;
    let after = query.one("cursor");
    let rows = state
        .shell
        .db()
        .txn(|tx| async move { actor::list_names(&tx, ns, after, limit).await })
        .await?;
    let cursor = rows.last().map(|(name, _)| name.clone());
    let names: Map<String, Value> = rows
        .into_iter()
        .map(|(name, metadata)| (name, json!({ "metadata": metadata })))
        .collect();
    Ok(Json(
        json!({ "names": names, "pagination": { "cursor": cursor } }),
    ))
}
