//! Routing of a request to an actor (engine-api.md §8): pure functions from the raw request
//! parts to a [`Route`]; no I/O.
//!
//! Order of evaluation: a path under `/gateway/` is the path form (§8.1) or, when any query
//! parameter name starts with `rvt-`, the query form (§8.2); `/envoys/connect` and
//! `/runners/connect` belong to the actor-host sockets; then the header / subprotocol form
//! (§8.3); anything else is [`Route::NotGateway`] (the REST API).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::HeaderMap;
use rivet_orchestrator::id::Id;
use serde::de::{Deserializer, Error as _, Unexpected};
use serde::Deserialize;

use crate::error::GatewayError;
use crate::{key, percent};

const GATEWAY_PREFIX: &str = "/gateway/";
const RVT_PREFIX: &str = "rvt-";

const HEADER_TARGET: &str = "x-rivet-target";
const HEADER_ACTOR: &str = "x-rivet-actor";
const HEADER_TOKEN: &str = "x-rivet-token";
const HEADER_SKIP_READY_WAIT: &str = "x-rivet-skip-ready-wait";

const PROTOCOL_TARGET: &str = "rivet_target.";
const PROTOCOL_ACTOR: &str = "rivet_actor.";
const PROTOCOL_TOKEN: &str = "rivet_token.";
const PROTOCOL_SKIP_READY_WAIT: &str = "rivet_skip_ready_wait";

/// The parts of a request that routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The raw (still percent-encoded) path, without the query.
    pub path: &'a str,
    /// The raw query string without the `?`; `Some("")` for a bare trailing `?`.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// Whether this is a WebSocket upgrade.
    pub websocket: bool,
    /// The offered WebSocket subprotocols (`Sec-WebSocket-Protocol` split on `,`).
    pub subprotocols: &'a [String],
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq)]
// One value per request, moved once: boxing would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
pub enum Route {
    /// Not gateway traffic: the actor-host sockets or the REST API handle it.
    NotGateway,
    /// Gateway traffic for one actor.
    Actor(Target),
}

/// A request routed to an actor.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Which actor.
    pub actor: ActorRef,
    /// The token from `@token`, `rvt-token`, `x-rivet-token` or `rivet_token.*`; never
    /// validated by the open-source gateway (engine-api.md §3).
    pub token: Option<String>,
    /// Forward without waking the actor or waiting for it to be ready (§9.4).
    pub skip_ready_wait: bool,
    /// The path and query the actor receives.
    pub forward_path: String,
}

/// How the actor is named.
#[derive(Debug, Clone, PartialEq)]
pub enum ActorRef {
    /// A direct actor id (path form, header form).
    Id(Id),
    /// Resolve by name and key (query form).
    Query {
        /// Namespace name (`rvt-namespace`).
        namespace: String,
        /// Actor name (the path segment, percent-decoded).
        name: String,
        /// The key serialized per §7.9 (`rvt-key` split on `,`).
        key: String,
        /// `get` or `getOrCreate`.
        method: QueryMethod,
    },
}

/// The `rvt-method` of a query-form request.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryMethod {
    /// The existing, non-destroyed actor or `actor.not_found`.
    Get,
    /// As `PUT /actors`.
    GetOrCreate {
        /// Pool name (`rvt-pool`, else `rvt-runner`).
        pool: String,
        /// Decoded `rvt-input` bytes.
        input: Option<Vec<u8>>,
        /// Datacenter name (`rvt-region`).
        region: Option<String>,
        /// `restart`, `sleep` (default) or `destroy`.
        crash_policy: String,
    },
}

/// Routes a request (engine-api.md §8).
pub fn route(input: &RequestParts<'_>) -> Result<Route, GatewayError> {
    if let Some(after) = input.path.strip_prefix(GATEWAY_PREFIX) {
        if let Some(target) = gateway_path(input, after)? {
            return Ok(Route::Actor(target));
        }
    }
    if input.path == "/envoys/connect" || input.path == "/runners/connect" {
        return Ok(Route::NotGateway);
    }
    header_form(input)
}

/// Path or query form; `None` when the path is not a gateway path after all.
fn gateway_path(input: &RequestParts<'_>, after: &str) -> Result<Option<Target>, GatewayError> {
    let (segment, rest) = match after.find('/') {
        Some(i) => after.split_at(i),
        None => (after, ""),
    };
    if segment.is_empty() {
        return Ok(None);
    }
    let base = if rest.is_empty() { "/" } else { rest };
    match input.query {
        Some(query) if has_rvt_param(query) => query_form(input, segment, base, query).map(Some),
        _ => Ok(path_form(input, segment, base)?),
    }
}

/// The raw name of one `&`-separated query part.
fn param_name(part: &str) -> &str {
    part.split_once('=').map_or(part, |(name, _)| name)
}

/// Whether any raw parameter name starts with `rvt-` (which switches to the query form).
pub fn has_rvt_param(query: &str) -> bool {
    query
        .split('&')
        .any(|part| param_name(part).starts_with(RVT_PREFIX))
}

/// Removes every `rvt-` parameter (and empty parts), keeping the others byte for byte and in
/// order; returns `""` or `"?…"`.
pub fn strip_rvt_params(query: &str) -> String {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|part| !part.is_empty() && !param_name(part).starts_with(RVT_PREFIX))
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

fn path_form(
    input: &RequestParts<'_>,
    segment: &str,
    base: &str,
) -> Result<Option<Target>, GatewayError> {
    let (raw_id, raw_token) = match segment.split_once('@') {
        Some((id, token)) if id.is_empty() || token.is_empty() => return Ok(None),
        Some((id, token)) => (id, Some(token)),
        None => (segment, None),
    };
    let Some(id_text) = percent::decode(raw_id, false) else {
        return Ok(None);
    };
    let token = match raw_token {
        Some(raw) => match percent::decode(raw, false) {
            Some(token) => Some(token),
            None => return Ok(None),
        },
        None => request_token(input),
    };
    let id = id_text
        .parse::<Id>()
        .map_err(|e| GatewayError::internal_error(format!("invalid actor id in path: {e}")))?;
    let forward_path = match input.query {
        Some(query) => format!("{base}?{query}"),
        None => base.to_owned(),
    };
    Ok(Some(Target {
        actor: ActorRef::Id(id),
        token,
        skip_ready_wait: request_skip_ready_wait(input),
        forward_path,
    }))
}

/// The `rvt-` parameters; field order is the `expected one of` list of the reference.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RvtParams {
    namespace: String,
    method: String,
    #[serde(default, deserialize_with = "present")]
    runner: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pool: Option<String>,
    #[serde(default, deserialize_with = "present")]
    key: Option<String>,
    #[serde(default, deserialize_with = "present")]
    input: Option<String>,
    #[serde(default, deserialize_with = "present")]
    region: Option<String>,
    #[serde(default, rename = "crash-policy", deserialize_with = "present")]
    crash_policy: Option<String>,
    #[serde(default, deserialize_with = "present")]
    token: Option<String>,
    #[serde(default, rename = "skip-ready-wait", deserialize_with = "flag")]
    skip_ready_wait: bool,
}

/// A parameter that is present has a value (possibly empty).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    String::deserialize(deserializer).map(Some)
}

/// `true`/`1` or `false`/`0`.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let value = String::deserialize(deserializer)?;
    match value.as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(D::Error::invalid_type(Unexpected::Str(other), &"a boolean")),
    }
}

fn query_form(
    input: &RequestParts<'_>,
    segment: &str,
    base: &str,
    query: &str,
) -> Result<Target, GatewayError> {
    // Values are decoded first, so a bad encoding is reported before any other problem.
    let mut rvt: Vec<(&str, String)> = Vec::new();
    for part in query.split('&') {
        let (raw_name, raw_value) = part.split_once('=').unwrap_or((part, ""));
        if raw_name.starts_with(RVT_PREFIX) {
            let value = percent::decode(raw_value, true)
                .ok_or_else(|| GatewayError::query_invalid_percent_encoding(raw_name))?;
            rvt.push((raw_name, value));
        }
    }

    if segment.contains('@') {
        return Err(GatewayError::query_path_token_syntax());
    }
    let name = percent::decode(segment, false)
        .ok_or_else(|| GatewayError::query_invalid_percent_encoding("name"))?;
    if name.is_empty() {
        return Err(GatewayError::query_empty_actor_name());
    }

    // Sorted by name, as the reference validates a sorted map: with several problems, the
    // first one in name order is reported.
    let mut params: BTreeMap<&str, String> = BTreeMap::new();
    for (raw_name, value) in rvt {
        let field = &raw_name[RVT_PREFIX.len()..];
        if params.insert(field, value).is_some() {
            return Err(GatewayError::query_duplicate_param(raw_name));
        }
    }
    let deserializer =
        serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(params.into_iter());
    let params = RvtParams::deserialize(deserializer)
        .map_err(|e| GatewayError::query_invalid_params(e.to_string()))?;

    let components: Vec<&str> = match params.key.as_deref() {
        None | Some("") => Vec::new(),
        Some(raw) => raw.split(',').collect(),
    };
    let key = key::serialize(&components);

    let method = match params.method.as_str() {
        "get" => {
            if params.input.is_some()
                || params.region.is_some()
                || params.crash_policy.is_some()
                || params.runner.is_some()
                || params.pool.is_some()
            {
                return Err(GatewayError::query_get_disallowed_params());
            }
            QueryMethod::Get
        }
        "getOrCreate" => {
            let pool = params
                .pool
                .or(params.runner)
                .ok_or_else(GatewayError::query_missing_pool)?;
            let input = params.input.as_deref().map(decode_input).transpose()?;
            let crash_policy = match params.crash_policy.as_deref() {
                None => "sleep".to_owned(),
                Some(policy @ ("restart" | "sleep" | "destroy")) => policy.to_owned(),
                Some(other) => {
                    return Err(GatewayError::query_invalid_params(format!(
                        "unknown crash policy: {other}, expected restart, sleep, or destroy"
                    )))
                }
            };
            QueryMethod::GetOrCreate {
                pool,
                input,
                region: params.region,
                crash_policy,
            }
        }
        other => {
            return Err(GatewayError::query_invalid_params(format!(
                "unknown method: {other}, expected get or getOrCreate"
            )))
        }
    };

    Ok(Target {
        actor: ActorRef::Query {
            namespace: params.namespace,
            name,
            key,
            method,
        },
        token: params.token.or_else(|| request_token(input)),
        skip_ready_wait: params.skip_ready_wait || request_skip_ready_wait(input),
        forward_path: format!("{base}{}", strip_rvt_params(query)),
    })
}

/// Unpadded base64url; `=` padding, other alphabets' characters and impossible lengths fail.
fn decode_input(value: &str) -> Result<Vec<u8>, GatewayError> {
    let alphabet_only = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !alphabet_only || value.len() % 4 == 1 {
        return Err(GatewayError::query_invalid_base64_input());
    }
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| GatewayError::query_invalid_base64_input())
}

/// Trimmed subprotocols.
fn protocols<'a>(input: &'a RequestParts<'_>) -> impl Iterator<Item = &'a str> + 'a {
    input.subprotocols.iter().map(|p| p.trim())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token carried outside the path/query: `x-rivet-token` over HTTP, `rivet_token.*` over
/// WebSocket.
fn request_token(input: &RequestParts<'_>) -> Option<String> {
    if input.websocket {
        protocols(input)
            .find_map(|p| p.strip_prefix(PROTOCOL_TOKEN))
            .map(str::to_owned)
    } else {
        header_str(input.headers, HEADER_TOKEN).map(str::to_owned)
    }
}

/// Skip-ready-wait carried outside the query: `x-rivet-skip-ready-wait: 1` (or `true`) over
/// HTTP, the `rivet_skip_ready_wait` subprotocol over WebSocket.
fn request_skip_ready_wait(input: &RequestParts<'_>) -> bool {
    if input.websocket {
        protocols(input).any(|p| p == PROTOCOL_SKIP_READY_WAIT)
    } else {
        matches!(
            header_str(input.headers, HEADER_SKIP_READY_WAIT).map(str::trim),
            Some("1" | "true")
        )
    }
}

/// The path with its query, as the actor (or an error's metadata) sees it.
fn full_path(input: &RequestParts<'_>) -> String {
    match input.query {
        Some(query) => format!("{}?{query}", input.path),
        None => input.path.to_owned(),
    }
}

/// The `Host` header without its port.
fn hostname(headers: &HeaderMap) -> &str {
    let host = header_str(headers, "host").unwrap_or("");
    if host.starts_with('[') {
        // IPv6 literal: keep the brackets, drop a `:port` after them.
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn parse_id(text: &str, what: &str) -> Result<Id, GatewayError> {
    text.parse::<Id>()
        .map_err(|e| GatewayError::internal_error(format!("invalid {what}: {e}")))
}

fn header_form(input: &RequestParts<'_>) -> Result<Route, GatewayError> {
    if input.websocket {
        let target = protocols(input).find_map(|p| p.strip_prefix(PROTOCOL_TARGET));
        if target != Some("actor") {
            return Ok(Route::NotGateway);
        }
        let raw_id = protocols(input)
            .find_map(|p| p.strip_prefix(PROTOCOL_ACTOR))
            .ok_or_else(|| {
                GatewayError::missing_header("`rivet_actor.*` protocol in sec-websocket-protocol")
            })?;
        let id_text = percent::decode(raw_id, false).ok_or_else(|| {
            GatewayError::internal_error("invalid url encoding in rivet_actor protocol")
        })?;
        let id = parse_id(&id_text, "rivet_actor protocol")?;
        return Ok(Route::Actor(Target {
            actor: ActorRef::Id(id),
            token: request_token(input),
            skip_ready_wait: request_skip_ready_wait(input),
            forward_path: full_path(input),
        }));
    }

    if header_str(input.headers, HEADER_TARGET) != Some("actor") {
        return Ok(Route::NotGateway);
    }
    let path = input.path;
    if !(path == "/request" || path.starts_with("/request/")) {
        return Err(GatewayError::no_route(
            hostname(input.headers),
            &full_path(input),
        ));
    }
    let id_text = match input.headers.get(HEADER_ACTOR) {
        None => return Err(GatewayError::missing_header(HEADER_ACTOR)),
        Some(value) => value
            .to_str()
            .map_err(|_| GatewayError::internal_error("invalid x-rivet-actor header"))?,
    };
    let id = parse_id(id_text, "x-rivet-actor header")?;
    Ok(Route::Actor(Target {
        actor: ActorRef::Id(id),
        token: request_token(input),
        skip_ready_wait: request_skip_ready_wait(input),
        forward_path: full_path(input),
    }))
}
