//! Every error the gateway answers with (engine-api.md §4, §8, §9, §10.3) and how it is
//! delivered: a JSON body with `x-rivet-error` over HTTP, a `1011` close over WebSocket.

use rivet_orchestrator::id::Id;
use serde::Serialize;
use serde_json::{json, Value};

/// Longest WebSocket close reason in bytes (a close frame payload is at most 125 bytes, two of
/// which are the code).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// WebSocket close code for every gateway error.
pub const CLOSE_CODE_ERROR: u16 = 1011;

/// Name of the response header that carries `<group>.<code>` on gateway errors.
pub const ERROR_HEADER: &str = "x-rivet-error";

/// An error produced by the gateway itself, in the `{group, code, message, metadata?}` shape.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{group}.{code}: {message}")]
pub struct GatewayError {
    /// Error group, e.g. `guard`.
    pub group: &'static str,
    /// Error code within the group, e.g. `no_route`.
    pub code: &'static str,
    /// Human-readable message; clients branch on group and code only.
    pub message: String,
    /// Structured detail; omitted from the body when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// HTTP status of the error response.
    #[serde(skip)]
    pub status: u16,
    /// What really went wrong behind a masked `core.internal_error`; for logs, never sent.
    #[serde(skip)]
    pub cause: Option<String>,
}

impl GatewayError {
    /// An error with no metadata.
    pub fn new(
        group: &'static str,
        code: &'static str,
        message: impl Into<String>,
        status: u16,
    ) -> GatewayError {
        GatewayError {
            group,
            code,
            message: message.into(),
            metadata: None,
            status,
            cause: None,
        }
    }

    /// Adds metadata.
    pub fn with_metadata(mut self, metadata: Value) -> GatewayError {
        self.metadata = Some(metadata);
        self
    }

    /// `<group>.<code>`, the value of the `x-rivet-error` header.
    pub fn error_code(&self) -> String {
        format!("{}.{}", self.group, self.code)
    }

    /// The JSON body of the HTTP error response: `{group, code, message, metadata?}`.
    pub fn http_body(&self) -> Vec<u8> {
        // Serializing strings and a `Value` cannot fail; fall back to the masked error anyway
        // rather than panicking on a path that answers clients.
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"group":"core","code":"internal_error","message":"An internal error occurred"}"#
                .to_vec()
        })
    }

    /// The reason of the `1011` WebSocket close: `<group>.<code>#<ray>`, cut to at most
    /// [`MAX_CLOSE_REASON_BYTES`] bytes on a character boundary.
    pub fn close_reason(&self, ray: &str) -> String {
        let mut reason = format!("{}.{}#{}", self.group, self.code, ray);
        if reason.len() > MAX_CLOSE_REASON_BYTES {
            let mut end = MAX_CLOSE_REASON_BYTES;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        reason
    }

    // ---- core / namespace / datacenter -------------------------------------------------------

    /// `500 core.internal_error`, masked; `cause` is kept for logs only.
    pub fn internal_error(cause: impl Into<String>) -> GatewayError {
        let mut error =
            GatewayError::new("core", "internal_error", "An internal error occurred", 500);
        error.cause = Some(cause.into());
        error
    }

    /// `400 namespace.not_found` (unknown `rvt-namespace`).
    pub fn namespace_not_found() -> GatewayError {
        GatewayError::new(
            "namespace",
            "not_found",
            "The namespace does not exist.",
            400,
        )
    }

    /// `400 datacenter.not_found` (unknown `rvt-region`).
    pub fn datacenter_not_found() -> GatewayError {
        GatewayError::new(
            "datacenter",
            "not_found",
            "The datacenter does not exist.",
            400,
        )
    }

    // ---- actor --------------------------------------------------------------------------------

    /// `404 actor.not_found`: unknown or destroyed actor.
    pub fn actor_not_found() -> GatewayError {
        GatewayError::new(
            "actor",
            "not_found",
            "The actor does not exist or was destroyed.",
            404,
        )
    }

    /// `actor.destroyed_while_waiting_for_ready` (§9): the actor was destroyed while the
    /// gateway waited for it. 400 by the default rule of §4.
    pub fn actor_destroyed_while_waiting_for_ready() -> GatewayError {
        GatewayError::new(
            "actor",
            "destroyed_while_waiting_for_ready",
            "Actor was destroyed while waiting for ready state.",
            400,
        )
    }

    /// `400 actor.no_runner_config_configured`: `getOrCreate` for a pool with no runner config.
    pub fn actor_no_runner_config_configured(namespace: &str, pool_name: &str) -> GatewayError {
        GatewayError::new(
            "actor",
            "no_runner_config_configured",
            format!(
                "No runner config with name '{pool_name}' are available in any datacenter for the namespace '{namespace}'. Validate a provider is listed that matches the requested pool name."
            ),
            400,
        )
        .with_metadata(json!({ "namespace": namespace, "pool_name": pool_name }))
    }

    /// `504 pegboard.route_resolve_query_timeout`: a query-form lookup/creation took over 15 s.
    pub fn route_resolve_query_timeout() -> GatewayError {
        GatewayError::new(
            "pegboard",
            "route_resolve_query_timeout",
            "Timed out resolving the actor query.",
            504,
        )
    }

    // ---- guard: readiness ----------------------------------------------------------------------

    /// `503 guard.actor_ready_timeout` (§9) with metadata `{actor_id}`.
    pub fn actor_ready_timeout(actor_id: &Id) -> GatewayError {
        GatewayError::new(
            "guard",
            "actor_ready_timeout",
            "Timed out waiting for actor to become ready. Ensure that the pool selector is accurate and there are envoys available in the namespace you created this actor.",
            503,
        )
        .with_metadata(json!({ "actor_id": actor_id.to_string() }))
    }

    /// `guard.actor_runner_failed` (§9): the actor's serverless pool reports errors.
    pub fn actor_runner_failed(actor_id: &Id) -> GatewayError {
        GatewayError::new(
            "guard",
            "actor_runner_failed",
            "Actor's runner pool is experiencing errors.",
            400,
        )
        .with_metadata(json!({ "actor_id": actor_id.to_string() }))
    }

    /// `503 guard.actor_wake_retries_exceeded` (§9): the actor kept stopping while the gateway
    /// waited for it.
    pub fn actor_wake_retries_exceeded(actor_id: &Id) -> GatewayError {
        GatewayError::new(
            "guard",
            "actor_wake_retries_exceeded",
            "Actor stopped repeatedly while waiting for it to become ready.",
            503,
        )
        .with_metadata(json!({ "actor_id": actor_id.to_string() }))
    }

    // ---- guard: routing ------------------------------------------------------------------------

    /// `404 guard.no_route` with metadata `{host, path}`.
    pub fn no_route(host: &str, path: &str) -> GatewayError {
        GatewayError::new(
            "guard",
            "no_route",
            format!("No route found for hostname {host}, path {path}."),
            404,
        )
        .with_metadata(json!({ "host": host, "path": path }))
    }

    /// `400 guard.missing_header`: a routing header or subprotocol is absent.
    pub fn missing_header(header: &str) -> GatewayError {
        GatewayError::new(
            "guard",
            "missing_header",
            format!("Missing {header} header."),
            400,
        )
        .with_metadata(json!({ "header": header }))
    }

    /// `400 guard.query_invalid_params` with metadata `{detail}`.
    pub fn query_invalid_params(detail: impl Into<String>) -> GatewayError {
        let detail = detail.into();
        GatewayError::new(
            "guard",
            "query_invalid_params",
            format!("invalid query gateway params: {detail}"),
            400,
        )
        .with_metadata(json!({ "detail": detail }))
    }

    /// `400 guard.query_path_token_syntax`: `@token` in a query-form name segment.
    pub fn query_path_token_syntax() -> GatewayError {
        GatewayError::new(
            "guard",
            "query_path_token_syntax",
            "query gateway paths must not use @token syntax",
            400,
        )
    }

    /// `400 guard.query_get_disallowed_params`: `rvt-method=get` with a creation parameter.
    pub fn query_get_disallowed_params() -> GatewayError {
        GatewayError::new(
            "guard",
            "query_get_disallowed_params",
            "query gateway method=get does not allow rvt-input, rvt-region, rvt-crash-policy, or rvt-pool params",
            400,
        )
    }

    /// `400 guard.query_missing_pool`: `getOrCreate` without `rvt-pool`/`rvt-runner`.
    pub fn query_missing_pool() -> GatewayError {
        GatewayError::new(
            "guard",
            "query_missing_pool",
            "query gateway method=getOrCreate requires rvt-pool param",
            400,
        )
    }

    /// `400 guard.query_empty_actor_name`.
    pub fn query_empty_actor_name() -> GatewayError {
        GatewayError::new(
            "guard",
            "query_empty_actor_name",
            "query gateway actor name must not be empty",
            400,
        )
    }

    /// `400 guard.query_duplicate_param` with metadata `{name}` (the full `rvt-…` name).
    pub fn query_duplicate_param(name: &str) -> GatewayError {
        GatewayError::new(
            "guard",
            "query_duplicate_param",
            format!("duplicate query gateway param: {name}"),
            400,
        )
        .with_metadata(json!({ "name": name }))
    }

    /// `400 guard.query_invalid_base64_input`: `rvt-input` is not unpadded base64url.
    pub fn query_invalid_base64_input() -> GatewayError {
        GatewayError::new(
            "guard",
            "query_invalid_base64_input",
            "invalid base64url in query gateway input",
            400,
        )
    }

    /// `400 guard.query_invalid_percent_encoding` with metadata `{name}`: a value (or the
    /// name segment) does not decode to UTF-8.
    pub fn query_invalid_percent_encoding(name: &str) -> GatewayError {
        GatewayError::new(
            "guard",
            "query_invalid_percent_encoding",
            format!("invalid percent-encoding for query gateway param '{name}'"),
            400,
        )
        .with_metadata(json!({ "name": name }))
    }

    // ---- guard: forwarding ---------------------------------------------------------------------

    /// `413 guard.invalid_request_body`: the request body is over the limit.
    pub fn invalid_request_body() -> GatewayError {
        GatewayError::new(
            "guard",
            "invalid_request_body",
            "Unable to parse request body: length limit exceeded.",
            413,
        )
        .with_metadata(json!({ "reason": "length limit exceeded" }))
    }

    /// `502 guard.retry_attempts_exceeded` (§10.1).
    pub fn retry_attempts_exceeded(
        attempts: u32,
        last_error_code: &str,
        last_status: &str,
        last_target_kind: &str,
    ) -> GatewayError {
        GatewayError::new(
            "guard",
            "retry_attempts_exceeded",
            format!(
                "All {attempts} retry attempts failed for {last_target_kind}. Last status: {last_status}. Last error: {last_error_code}."
            ),
            502,
        )
        .with_metadata(json!({
            "attempts": attempts,
            "last_error_code": last_error_code,
            "last_status": last_status,
            "last_target_kind": last_target_kind,
        }))
    }

    /// `guard.websocket_closed_before_open` (§10.2): the host refused every open attempt.
    /// Delivered as a WebSocket close; the status only matters if it ever reaches HTTP.
    pub fn websocket_closed_before_open() -> GatewayError {
        GatewayError::new(
            "guard",
            "websocket_closed_before_open",
            "The actor closed the WebSocket before it opened.",
            502,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(error: &GatewayError) -> Value {
        serde_json::from_slice(&error.http_body()).unwrap()
    }

    #[test]
    fn body_omits_absent_metadata() {
        assert_eq!(
            body(&GatewayError::actor_not_found()),
            json!({"group":"actor","code":"not_found","message":"The actor does not exist or was destroyed."})
        );
        assert_eq!(GatewayError::actor_not_found().status, 404);
    }

    #[test]
    fn internal_errors_are_masked() {
        let error = GatewayError::internal_error("unsupported ID version: 195");
        assert_eq!(
            body(&error),
            json!({"group":"core","code":"internal_error","message":"An internal error occurred"})
        );
        assert_eq!(error.status, 500);
        assert_eq!(error.cause.as_deref(), Some("unsupported ID version: 195"));
    }

    #[test]
    fn ready_timeout_has_the_reference_message_and_actor_id() {
        let id: Id = "t1s4f27ni26z168a3jwmydor4jcl00".parse().unwrap();
        let error = GatewayError::actor_ready_timeout(&id);
        assert_eq!(error.status, 503);
        assert_eq!(
            body(&error),
            json!({
                "group": "guard",
                "code": "actor_ready_timeout",
                "message": "Timed out waiting for actor to become ready. Ensure that the pool selector is accurate and there are envoys available in the namespace you created this actor.",
                "metadata": {"actor_id": "t1s4f27ni26z168a3jwmydor4jcl00"},
            })
        );
    }

    #[test]
    fn statuses_match_the_reference_table() {
        let id = Id::new(1);
        let cases = [
            (GatewayError::no_route("h", "/p"), 404),
            (GatewayError::query_invalid_params("x"), 400),
            (GatewayError::query_path_token_syntax(), 400),
            (GatewayError::query_get_disallowed_params(), 400),
            (GatewayError::query_missing_pool(), 400),
            (GatewayError::query_duplicate_param("rvt-key"), 400),
            (GatewayError::query_invalid_base64_input(), 400),
            (GatewayError::invalid_request_body(), 413),
            (
                GatewayError::retry_attempts_exceeded(
                    7,
                    "guard.tunnel_request_aborted",
                    "",
                    "actor",
                ),
                502,
            ),
            (GatewayError::namespace_not_found(), 400),
            (GatewayError::datacenter_not_found(), 400),
            (
                GatewayError::actor_no_runner_config_configured("default", "p"),
                400,
            ),
            (GatewayError::actor_ready_timeout(&id), 503),
            (GatewayError::internal_error("x"), 500),
        ];
        for (error, status) in cases {
            assert_eq!(error.status, status, "{}", error.error_code());
        }
    }

    #[test]
    fn invalid_request_body_has_reason_metadata() {
        assert_eq!(
            body(&GatewayError::invalid_request_body()),
            json!({
                "group": "guard",
                "code": "invalid_request_body",
                "message": "Unable to parse request body: length limit exceeded.",
                "metadata": {"reason": "length limit exceeded"},
            })
        );
    }

    #[test]
    fn retry_attempts_exceeded_carries_its_metadata() {
        let error =
            GatewayError::retry_attempts_exceeded(7, "guard.tunnel_request_aborted", "", "actor");
        assert_eq!(
            error.metadata,
            Some(json!({
                "attempts": 7,
                "last_error_code": "guard.tunnel_request_aborted",
                "last_status": "",
                "last_target_kind": "actor",
            }))
        );
    }

    #[test]
    fn no_route_names_host_and_path() {
        let error = GatewayError::no_route("localhost", "/nope");
        assert_eq!(
            error.message,
            "No route found for hostname localhost, path /nope."
        );
        assert_eq!(
            error.metadata,
            Some(json!({"host": "localhost", "path": "/nope"}))
        );
        assert_eq!(error.error_code(), "guard.no_route");
    }

    #[test]
    fn close_reason_is_group_code_and_ray() {
        let ray = "lfpd0000000000000000000000l00";
        assert_eq!(
            GatewayError::actor_not_found().close_reason(ray),
            format!("actor.not_found#{ray}")
        );
    }

    #[test]
    fn close_reason_is_truncated_to_123_bytes_on_a_char_boundary() {
        let long_ascii = "r".repeat(200);
        assert_eq!(
            GatewayError::actor_not_found()
                .close_reason(&long_ascii)
                .len(),
            MAX_CLOSE_REASON_BYTES
        );
        // "actor.not_found#" is 16 bytes; 'é' is 2 bytes, so byte 123 falls inside one.
        let multibyte = "é".repeat(100);
        let reason = GatewayError::actor_not_found().close_reason(&multibyte);
        assert_eq!(reason.len(), 122);
        assert!(reason.starts_with("actor.not_found#é"));
    }
}
