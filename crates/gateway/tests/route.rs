//! One test per routing rule of engine-api.md §8.

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use rivet_gateway::route::{has_rvt_param, strip_rvt_params};
use rivet_gateway::{route, ActorRef, GatewayError, QueryMethod, RequestParts, Route, Target};
use rivet_orchestrator::id::Id;
use serde_json::json;

const ID: &str = "t1s4f27ni26z168a3jwmydor4jcl00";

fn id() -> Id {
    ID.parse().unwrap()
}

/// A request to route; `url` is the raw path with an optional `?query`.
struct Req {
    url: String,
    headers: HeaderMap,
    websocket: bool,
    subprotocols: Vec<String>,
}

fn http(url: &str) -> Req {
    Req {
        url: url.to_owned(),
        headers: HeaderMap::new(),
        websocket: false,
        subprotocols: Vec::new(),
    }
}

fn ws(url: &str, subprotocols: &[&str]) -> Req {
    Req {
        url: url.to_owned(),
        headers: HeaderMap::new(),
        websocket: true,
        subprotocols: subprotocols.iter().map(|s| s.to_string()).collect(),
    }
}

impl Req {
    fn header(mut self, name: &'static str, value: &str) -> Req {
        self.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
        self
    }

    fn route(&self) -> Result<Route, GatewayError> {
        let (path, query) = match self.url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.url.as_str(), None),
        };
        route(&RequestParts {
            path,
            query,
            headers: &self.headers,
            websocket: self.websocket,
            subprotocols: &self.subprotocols,
        })
    }

    fn target(&self) -> Target {
        match self.route() {
            Ok(Route::Actor(target)) => target,
            other => panic!("{}: expected an actor route, got {other:?}", self.url),
        }
    }

    fn error(&self) -> GatewayError {
        match self.route() {
            Err(error) => error,
            other => panic!("{}: expected an error, got {other:?}", self.url),
        }
    }

    fn not_gateway(&self) {
        assert_eq!(self.route(), Ok(Route::NotGateway), "{}", self.url);
    }
}

fn assert_error(
    error: &GatewayError,
    status: u16,
    group: &str,
    code: &str,
    message: &str,
    metadata: Option<serde_json::Value>,
) {
    assert_eq!(error.status, status, "{error:?}");
    assert_eq!(error.group, group, "{error:?}");
    assert_eq!(error.code, code, "{error:?}");
    assert_eq!(error.message, message, "{error:?}");
    assert_eq!(error.metadata, metadata, "{error:?}");
}

fn invalid_params(error: &GatewayError, detail: &str) {
    assert_error(
        error,
        400,
        "guard",
        "query_invalid_params",
        &format!("invalid query gateway params: {detail}"),
        Some(json!({ "detail": detail })),
    );
}

/// The query-form parts of a target.
fn query(target: &Target) -> (&str, &str, &str, &QueryMethod) {
    match &target.actor {
        ActorRef::Query {
            namespace,
            name,
            key,
            method,
        } => (namespace, name, key, method),
        other => panic!("expected a query-form actor, got {other:?}"),
    }
}

const GET: &str = "rvt-namespace=default&rvt-method=get";
const GOC: &str = "rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default";

// ---- 8.1 path form ------------------------------------------------------------------------------

#[test]
fn path_form_without_rest_forwards_slash() {
    let target = http(&format!("/gateway/{ID}")).target();
    assert_eq!(target.actor, ActorRef::Id(id()));
    assert_eq!(target.forward_path, "/");
    assert_eq!(target.token, None);
    assert!(!target.skip_ready_wait);
}

#[test]
fn path_form_without_rest_forwards_the_query() {
    assert_eq!(
        http(&format!("/gateway/{ID}?q=1")).target().forward_path,
        "/?q=1"
    );
}

#[test]
fn path_form_forwards_rest_and_query() {
    assert_eq!(
        http(&format!("/gateway/{ID}/foo/bar?x=1&y=2"))
            .target()
            .forward_path,
        "/foo/bar?x=1&y=2"
    );
}

#[test]
fn path_form_keeps_a_trailing_slash_and_raw_rest() {
    assert_eq!(http(&format!("/gateway/{ID}/")).target().forward_path, "/");
    assert_eq!(
        http(&format!("/gateway/{ID}/a%20b//c"))
            .target()
            .forward_path,
        "/a%20b//c"
    );
}

#[test]
fn path_form_forwards_the_raw_query_unchanged() {
    assert_eq!(
        http(&format!("/gateway/{ID}/x?a=%20+b&&c&=d&e=f=g"))
            .target()
            .forward_path,
        "/x?a=%20+b&&c&=d&e=f=g"
    );
    assert_eq!(
        http(&format!("/gateway/{ID}/x?")).target().forward_path,
        "/x?"
    );
}

#[test]
fn path_form_token_after_at() {
    let target = http(&format!("/gateway/{ID}@secret/x?y=1")).target();
    assert_eq!(target.actor, ActorRef::Id(id()));
    assert_eq!(target.token.as_deref(), Some("secret"));
    assert_eq!(target.forward_path, "/x?y=1");
}

#[test]
fn path_form_id_and_token_are_percent_decoded() {
    // `%74` is `t`, the id's first character.
    let target = http(&format!("/gateway/%74{}@a%20b%40c", &ID[1..])).target();
    assert_eq!(target.actor, ActorRef::Id(id()));
    assert_eq!(target.token.as_deref(), Some("a b@c"));
}

#[test]
fn path_form_id_is_case_insensitive() {
    let upper = ID.to_uppercase();
    assert_eq!(
        http(&format!("/gateway/{upper}")).target().actor,
        ActorRef::Id(id())
    );
}

#[test]
fn path_form_token_falls_back_to_the_header() {
    let target = http(&format!("/gateway/{ID}/x"))
        .header("x-rivet-token", "dev")
        .target();
    assert_eq!(target.token.as_deref(), Some("dev"));
    let target = http(&format!("/gateway/{ID}@path/x"))
        .header("x-rivet-token", "dev")
        .target();
    assert_eq!(target.token.as_deref(), Some("path"));
}

#[test]
fn path_form_websocket_takes_token_and_skip_from_subprotocols() {
    let target = ws(
        &format!("/gateway/{ID}/connect?x=1"),
        &["rivet", "rivet_token.dev", "rivet_skip_ready_wait"],
    )
    .target();
    assert_eq!(target.forward_path, "/connect?x=1");
    assert_eq!(target.token.as_deref(), Some("dev"));
    assert!(target.skip_ready_wait);
}

#[test]
fn path_form_skip_ready_wait_header() {
    for value in ["1", "true"] {
        assert!(
            http(&format!("/gateway/{ID}"))
                .header("x-rivet-skip-ready-wait", value)
                .target()
                .skip_ready_wait
        );
    }
    assert!(
        !http(&format!("/gateway/{ID}"))
            .header("x-rivet-skip-ready-wait", "0")
            .target()
            .skip_ready_wait
    );
}

#[test]
fn empty_id_segment_is_not_a_gateway_path() {
    http("/gateway//x").not_gateway();
    http("/gateway/").not_gateway();
    http("/gateway").not_gateway();
    http("/gateway//x?rvt-namespace=default&rvt-method=get").not_gateway();
    http("/gateway/?rvt-namespace=default&rvt-method=get").not_gateway();
}

#[test]
fn empty_id_or_token_around_at_is_not_a_gateway_path() {
    http(&format!("/gateway/{ID}@/x")).not_gateway();
    http("/gateway/@tok/x").not_gateway();
}

#[test]
fn undecodable_id_segment_is_not_a_gateway_path() {
    http("/gateway/%FF/x").not_gateway();
}

#[test]
fn malformed_id_is_a_masked_internal_error() {
    for bad in [
        "abc",
        "000000000000000000000000000000",
        "t1s4f27ni26z168a3jwmydor4jc!00",
    ] {
        let error = http(&format!("/gateway/{bad}/x")).error();
        assert_error(
            &error,
            500,
            "core",
            "internal_error",
            "An internal error occurred",
            None,
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&error.http_body()).unwrap(),
            json!({"group":"core","code":"internal_error","message":"An internal error occurred"})
        );
    }
    let error = http("/gateway/000000000000000000000000000000").error();
    assert!(error.cause.unwrap().contains("unsupported ID version: 0"));
}

#[test]
fn malformed_id_over_websocket_closes_with_internal_error() {
    let error = ws("/gateway/abc/connect", &["rivet"]).error();
    assert_eq!(error.close_reason("ray"), "core.internal_error#ray");
}

// ---- 8.2 query form -----------------------------------------------------------------------------

#[test]
fn any_rvt_param_switches_to_the_query_form() {
    let target = http(&format!("/gateway/{ID}?a=1&{GET}&b=2")).target();
    let (namespace, name, key, method) = query(&target);
    assert_eq!(namespace, "default");
    assert_eq!(name, ID);
    assert_eq!(key, "/");
    assert_eq!(method, &QueryMethod::Get);
    assert_eq!(target.forward_path, "/?a=1&b=2");
}

#[test]
fn rvt_params_anywhere_are_stripped_keeping_order() {
    let target =
        http("/gateway/counter/path?z=9&rvt-namespace=default&a=1&rvt-method=get&m=%20&rvt-key=k")
            .target();
    assert_eq!(target.forward_path, "/path?z=9&a=1&m=%20");
}

#[test]
fn no_question_mark_when_no_params_remain() {
    assert_eq!(
        http(&format!("/gateway/counter?{GET}"))
            .target()
            .forward_path,
        "/"
    );
    assert_eq!(
        http(&format!("/gateway/counter/rpc?{GET}&&"))
            .target()
            .forward_path,
        "/rpc"
    );
}

#[test]
fn query_name_segment_is_percent_decoded() {
    let target = http(&format!("/gateway/my%20actor/x?{GET}")).target();
    assert_eq!(query(&target).1, "my actor");
    assert_eq!(target.forward_path, "/x");
}

#[test]
fn query_values_are_form_decoded() {
    let target = http("/gateway/c?rvt-namespace=my+ns%21&rvt-method=get").target();
    assert_eq!(query(&target).0, "my ns!");
}

#[test]
fn query_value_that_is_not_utf8_is_rejected() {
    let error = http("/gateway/c?rvt-namespace=%FF&rvt-method=get").error();
    assert_error(
        &error,
        400,
        "guard",
        "query_invalid_percent_encoding",
        "invalid percent-encoding for query gateway param 'rvt-namespace'",
        Some(json!({"name": "rvt-namespace"})),
    );
}

#[test]
fn missing_namespace() {
    invalid_params(
        &http("/gateway/c?rvt-method=get").error(),
        "missing field `namespace`",
    );
}

#[test]
fn missing_method() {
    invalid_params(
        &http("/gateway/c?rvt-namespace=default").error(),
        "missing field `method`",
    );
}

#[test]
fn unknown_method() {
    invalid_params(
        &http("/gateway/c?rvt-namespace=default&rvt-method=create").error(),
        "unknown method: create, expected get or getOrCreate",
    );
}

#[test]
fn unknown_rvt_param() {
    invalid_params(
        &http(&format!("/gateway/c?{GET}&rvt-bogus=1")).error(),
        "unknown field `bogus`, expected one of `namespace`, `method`, `runner`, `pool`, `key`, `input`, `region`, `crash-policy`, `token`, `skip-ready-wait`",
    );
}

#[test]
fn unknown_rvt_param_is_reported_before_a_missing_one() {
    let error = http("/gateway/c?rvt-zzz=1").error();
    assert!(error.message.contains("unknown field `zzz`"), "{error:?}");
}

#[test]
fn duplicate_rvt_param() {
    let error = http(&format!("/gateway/c?{GET}&rvt-key=a&rvt-key=b")).error();
    assert_error(
        &error,
        400,
        "guard",
        "query_duplicate_param",
        "duplicate query gateway param: rvt-key",
        Some(json!({"name": "rvt-key"})),
    );
}

#[test]
fn get_rejects_creation_params() {
    for extra in [
        "rvt-input=oA",
        "rvt-region=default",
        "rvt-crash-policy=sleep",
        "rvt-runner=default",
        "rvt-pool=default",
    ] {
        let error = http(&format!("/gateway/c?{GET}&{extra}")).error();
        assert_error(
            &error,
            400,
            "guard",
            "query_get_disallowed_params",
            "query gateway method=get does not allow rvt-input, rvt-region, rvt-crash-policy, or rvt-pool params",
            None,
        );
    }
}

#[test]
fn get_or_create_requires_a_pool() {
    let error = http("/gateway/c?rvt-namespace=default&rvt-method=getOrCreate").error();
    assert_error(
        &error,
        400,
        "guard",
        "query_missing_pool",
        "query gateway method=getOrCreate requires rvt-pool param",
        None,
    );
}

#[test]
fn get_or_create_defaults() {
    let target = http(&format!("/gateway/counter/connect?{GOC}")).target();
    let (namespace, name, key, method) = query(&target);
    assert_eq!((namespace, name, key), ("default", "counter", "/"));
    assert_eq!(
        method,
        &QueryMethod::GetOrCreate {
            pool: "default".into(),
            input: None,
            region: None,
            crash_policy: "sleep".into(),
        }
    );
    assert_eq!(target.forward_path, "/connect");
}

#[test]
fn runner_is_the_pool_and_pool_wins_when_both_are_given() {
    let pool = |url: &str| match query(&http(url).target()).3 {
        QueryMethod::GetOrCreate { pool, .. } => pool.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        pool("/gateway/c?rvt-namespace=d&rvt-method=getOrCreate&rvt-runner=r"),
        "r"
    );
    assert_eq!(
        pool("/gateway/c?rvt-namespace=d&rvt-method=getOrCreate&rvt-runner=r&rvt-pool=p"),
        "p"
    );
}

#[test]
fn key_is_split_on_commas_and_serialized() {
    let key = |raw: &str| {
        query(&http(&format!("/gateway/c?{GET}&rvt-key={raw}")).target())
            .2
            .to_owned()
    };
    assert_eq!(key("a,b"), "a/b");
    assert_eq!(key("a%2Cb"), "a/b");
    assert_eq!(key("c1"), "c1");
    assert_eq!(key(""), "/");
    assert_eq!(key("a%2Fb"), "a\\/b");
    assert_eq!(key("a,,b"), "a/\\0/b");
    assert_eq!(key("x%5Cy"), "x\\\\y");
}

#[test]
fn input_is_unpadded_base64url() {
    let input =
        |raw: &str| match query(&http(&format!("/gateway/c?{GOC}&rvt-input={raw}")).target()).3 {
            QueryMethod::GetOrCreate { input, .. } => input.clone(),
            other => panic!("{other:?}"),
        };
    assert_eq!(input("aGVsbG8"), Some(b"hello".to_vec()));
    assert_eq!(input("-_8"), Some(vec![0xfb, 0xff]));
    assert_eq!(input(""), Some(Vec::new()));
    // Not CBOR: passed through anyway.
    assert_eq!(input("AAEC"), Some(vec![0, 1, 2]));
}

#[test]
fn input_with_padding_or_bad_characters_is_rejected() {
    for raw in [
        "aGVsbG8=",
        "aGVsbG8%3D",
        "aGVs+G8",
        "aGVs/G8",
        "aGV$",
        "aGVsb",
        "AB",
    ] {
        let error = http(&format!("/gateway/c?{GOC}&rvt-input={raw}")).error();
        assert_error(
            &error,
            400,
            "guard",
            "query_invalid_base64_input",
            "invalid base64url in query gateway input",
            None,
        );
    }
}

#[test]
fn region_is_passed_through() {
    match query(&http(&format!("/gateway/c?{GOC}&rvt-region=eu")).target()).3 {
        QueryMethod::GetOrCreate { region, .. } => assert_eq!(region.as_deref(), Some("eu")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn crash_policies() {
    for policy in ["restart", "sleep", "destroy"] {
        match query(&http(&format!("/gateway/c?{GOC}&rvt-crash-policy={policy}")).target()).3 {
            QueryMethod::GetOrCreate { crash_policy, .. } => assert_eq!(crash_policy, policy),
            other => panic!("{other:?}"),
        }
    }
    invalid_params(
        &http(&format!("/gateway/c?{GOC}&rvt-crash-policy=explode")).error(),
        "unknown crash policy: explode, expected restart, sleep, or destroy",
    );
}

#[test]
fn skip_ready_wait_values() {
    for (raw, expected) in [("true", true), ("1", true), ("false", false), ("0", false)] {
        let target = http(&format!("/gateway/c?{GET}&rvt-skip-ready-wait={raw}")).target();
        assert_eq!(target.skip_ready_wait, expected, "{raw}");
    }
    invalid_params(
        &http(&format!("/gateway/c?{GET}&rvt-skip-ready-wait=maybe")).error(),
        "invalid type: string \"maybe\", expected a boolean",
    );
}

#[test]
fn rvt_token_is_accepted() {
    let target = http(&format!("/gateway/c?{GET}&rvt-token=dev"))
        .header("x-rivet-token", "other")
        .target();
    assert_eq!(target.token.as_deref(), Some("dev"));
    let target = http(&format!("/gateway/c?{GET}"))
        .header("x-rivet-token", "other")
        .target();
    assert_eq!(target.token.as_deref(), Some("other"));
}

#[test]
fn at_token_in_query_form_is_rejected() {
    let error = http(&format!("/gateway/counter@tok/x?{GET}")).error();
    assert_error(
        &error,
        400,
        "guard",
        "query_path_token_syntax",
        "query gateway paths must not use @token syntax",
        None,
    );
}

#[test]
fn query_errors_close_websockets_with_their_code() {
    let error = ws("/gateway/c/connect?rvt-method=get", &["rivet"]).error();
    assert_eq!(
        error.close_reason("lbey0000000000000000000000l00"),
        "guard.query_invalid_params#lbey0000000000000000000000l00"
    );
}

#[test]
fn npm_client_url_is_understood() {
    let target = ws(
        "/gateway/counter/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=room%2C1&rvt-input=uQABZWhlbGxvAQ&rvt-crash-policy=sleep&rvt-token=dev&rvt-skip-ready-wait=true",
        &["rivet", "rivet_encoding.json"],
    )
    .target();
    let (namespace, name, key, method) = query(&target);
    assert_eq!((namespace, name, key), ("default", "counter", "room/1"));
    match method {
        QueryMethod::GetOrCreate {
            pool,
            input,
            region,
            crash_policy,
        } => {
            assert_eq!(pool, "default");
            assert_eq!(
                input.as_deref(),
                Some(&[0xb9, 0x00, 0x01, 0x65, b'h', b'e', b'l', b'l', b'o', 0x01][..])
            );
            assert_eq!(region, &None);
            assert_eq!(crash_policy, "sleep");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(target.token.as_deref(), Some("dev"));
    assert!(target.skip_ready_wait);
    assert_eq!(target.forward_path, "/connect");
}

// ---- 8.3 header and subprotocol form ------------------------------------------------------------

fn header_req(url: &str) -> Req {
    http(url)
        .header("x-rivet-target", "actor")
        .header("x-rivet-actor", ID)
        .header("host", "localhost:6420")
}

#[test]
fn header_form_forwards_the_whole_request_path() {
    for url in [
        "/request",
        "/request/",
        "/request/foo/bar?x=1&rvt-y=2",
        "/request?a=b",
    ] {
        let target = header_req(url).target();
        assert_eq!(target.actor, ActorRef::Id(id()));
        assert_eq!(target.forward_path, url);
    }
}

#[test]
fn header_form_token_and_skip_ready_wait() {
    let target = header_req("/request/action")
        .header("x-rivet-token", "dev")
        .header("x-rivet-skip-ready-wait", "1")
        .target();
    assert_eq!(target.token.as_deref(), Some("dev"));
    assert!(target.skip_ready_wait);
    let target = header_req("/request/action").target();
    assert_eq!(target.token, None);
    assert!(!target.skip_ready_wait);
}

#[test]
fn header_form_other_paths_have_no_route() {
    for url in ["/connect", "/requests", "/", "/foo?request=1"] {
        let error = header_req(url).error();
        assert_error(
            &error,
            404,
            "guard",
            "no_route",
            &format!("No route found for hostname localhost, path {url}."),
            Some(json!({"host": "localhost", "path": url})),
        );
    }
}

#[test]
fn header_form_without_actor_header() {
    let error = http("/request").header("x-rivet-target", "actor").error();
    assert_error(
        &error,
        400,
        "guard",
        "missing_header",
        "Missing x-rivet-actor header.",
        Some(json!({"header": "x-rivet-actor"})),
    );
}

#[test]
fn header_form_with_malformed_actor_id() {
    let error = http("/request")
        .header("x-rivet-target", "actor")
        .header("x-rivet-actor", "nope")
        .error();
    assert_eq!(error.status, 500);
    assert_eq!(error.error_code(), "core.internal_error");
}

#[test]
fn other_targets_fall_through() {
    http("/request")
        .header("x-rivet-target", "api-public")
        .not_gateway();
    http("/request").not_gateway();
    http("/actors").not_gateway();
}

#[test]
fn subprotocol_form_accepts_any_path() {
    let target = ws(
        "/websocket/raw?x=1",
        &[
            "rivet",
            " rivet_target.actor",
            &format!("rivet_actor.{ID}"),
            "rivet_token.dev",
            "rivet_skip_ready_wait",
        ],
    )
    .target();
    assert_eq!(target.actor, ActorRef::Id(id()));
    assert_eq!(target.forward_path, "/websocket/raw?x=1");
    assert_eq!(target.token.as_deref(), Some("dev"));
    assert!(target.skip_ready_wait);

    let target = ws(
        "/connect",
        &["rivet_target.actor", &format!("rivet_actor.{ID}")],
    )
    .target();
    assert_eq!(target.forward_path, "/connect");
    assert_eq!(target.token, None);
    assert!(!target.skip_ready_wait);
}

#[test]
fn subprotocol_form_without_actor() {
    let error = ws("/connect", &["rivet", "rivet_target.actor"]).error();
    assert_error(
        &error,
        400,
        "guard",
        "missing_header",
        "Missing `rivet_actor.*` protocol in sec-websocket-protocol header.",
        Some(json!({"header": "`rivet_actor.*` protocol in sec-websocket-protocol"})),
    );
}

#[test]
fn websocket_ignores_the_target_header() {
    ws("/request", &["rivet"])
        .header("x-rivet-target", "actor")
        .header("x-rivet-actor", ID)
        .not_gateway();
}

// ---- order of evaluation ------------------------------------------------------------------------

#[test]
fn host_sockets_are_not_gateway_even_with_a_target() {
    ws(
        "/envoys/connect",
        &["rivet_target.actor", &format!("rivet_actor.{ID}")],
    )
    .not_gateway();
    http("/runners/connect")
        .header("x-rivet-target", "actor")
        .header("x-rivet-actor", ID)
        .not_gateway();
}

#[test]
fn gateway_path_wins_over_the_header_form() {
    let other = "000000000000000000000000000001";
    let target = http(&format!("/gateway/{ID}/x"))
        .header("x-rivet-target", "actor")
        .header("x-rivet-actor", other)
        .target();
    assert_eq!(target.actor, ActorRef::Id(id()));
    assert_eq!(target.forward_path, "/x");
}

#[test]
fn non_gateway_path_falls_through_to_the_header_form() {
    let error = http("/gateway//x")
        .header("x-rivet-target", "actor")
        .header("x-rivet-actor", ID)
        .error();
    assert_eq!(error.error_code(), "guard.no_route");
}

// ---- properties ---------------------------------------------------------------------------------

fn query_part() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9%=+._~ -]{0,8}"
}

proptest! {
    #[test]
    fn path_form_forwards_any_rvt_free_query_byte_for_byte(
        rest in "(/[a-zA-Z0-9%._~-]{0,6}){0,3}",
        query in "[a-zA-Z0-9%=&+._~,;:@/?-]{0,40}",
    ) {
        prop_assume!(!has_rvt_param(&query));
        let target = http(&format!("/gateway/{ID}{rest}?{query}")).target();
        let base = if rest.is_empty() { "/".to_owned() } else { rest };
        prop_assert_eq!(target.forward_path, format!("{base}?{query}"));
    }

    #[test]
    fn stripping_rvt_params_keeps_the_others_in_order(
        parts in proptest::collection::vec((any::<bool>(), query_part()), 0..8),
    ) {
        let raw: Vec<String> = parts
            .iter()
            .map(|(rvt, part)| if *rvt { format!("rvt-{part}") } else { part.clone() })
            .collect();
        let query = raw.join("&");
        let kept: Vec<&str> = raw
            .iter()
            .map(String::as_str)
            .filter(|p| !p.is_empty() && !p.split('=').next().unwrap_or("").starts_with("rvt-"))
            .collect();
        let expected = if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) };
        prop_assert_eq!(strip_rvt_params(&query), expected.clone());

        // Through the router, with valid routing params spliced in at both ends.
        let non_rvt: Vec<&str> = raw
            .iter()
            .map(String::as_str)
            .filter(|p| !p.split('=').next().unwrap_or("").starts_with("rvt-"))
            .collect();
        let url = format!(
            "/gateway/c/p?rvt-namespace=default&{}&rvt-method=get",
            non_rvt.join("&")
        );
        let target = http(&url).target();
        prop_assert_eq!(target.forward_path, format!("/p{expected}"));
    }
}
