//! The REST routes through real HTTP against a real engine (memory or file_system store).

mod common;

use common::{memory_engine, with_json, ErrorBody, JSON};

use rivet_engine::Engine;
use rivet_test_support::{engine_config as config, get, send};
use serde_json::json;

#[tokio::test]
async fn the_default_namespace_exists_after_start_and_restart() {
    let home = tempfile::tempdir().unwrap();
    let config = config(home.path(), &[]);
    let engine = Engine::start(&config).await.unwrap();
    let list = get(engine.guard_addr(), "/namespaces").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let body = list.json();
    let namespaces = body["namespaces"].as_array().unwrap();
    assert_eq!(namespaces.len(), 1, "{body}");
    let default = namespaces[0].clone();
    assert_eq!(default["name"], "default");
    assert_eq!(default["display_name"], "Default");
    assert!(default["namespace_id"].as_str().unwrap().ends_with("l00"));
    assert_eq!(
        body["pagination"]["cursor"],
        default["create_ts"].as_i64().unwrap().to_string()
    );
    engine.shutdown().await.unwrap();

    let engine = Engine::start(&config).await.unwrap();
    let body = get(engine.guard_addr(), "/namespaces").await.json();
    assert_eq!(body["namespaces"], json!([default]));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn namespaces_are_created_listed_and_validated() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();

    let created = with_json(
        addr,
        "POST",
        "/namespaces",
        json!({"name": "team-1", "display_name": "Team 1"}),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let ns = created.json()["namespace"].clone();
    assert_eq!(ns["name"], "team-1");
    assert_eq!(ns["display_name"], "Team 1");
    assert!(ns["create_ts"].as_i64().unwrap() > 0);
    assert_eq!(ns.as_object().unwrap().len(), 4, "{ns}");
    // Fields in the reference's order.
    let text = &created.body;
    assert!(
        text.starts_with(r#"{"namespace":{"namespace_id":""#),
        "{text}"
    );
    assert!(
        text.contains(r#"","name":"team-1","display_name":"Team 1","create_ts":"#),
        "{text}"
    );

    let dup = with_json(
        addr,
        "POST",
        "/namespaces",
        json!({"name": "team-1", "display_name": "Again"}),
    )
    .await;
    dup.error(400, "namespace", "name_not_unique");
    for (name, display, reason) in [
        ("Bad", "x", "invalid name"),
        ("a--b", "x", "invalid name"),
        (&*"a".repeat(65), "x", "name too long"),
        ("ok", "", "display name too short"),
        ("ok", &*"d".repeat(129), "display name too long"),
    ] {
        let bad = with_json(
            addr,
            "POST",
            "/namespaces",
            json!({"name": name, "display_name": display}),
        )
        .await;
        let body = bad.error(400, "namespace", "failed_to_create");
        assert_eq!(body["metadata"]["reason"], reason, "{body}");
    }
    let unknown = with_json(
        addr,
        "POST",
        "/namespaces",
        json!({"name": "x", "display_name": "x", "foo": 1}),
    )
    .await;
    assert_eq!(
        unknown.reason(),
        "unknown field `foo`, expected `name` or `display_name`"
    );
    let missing = with_json(addr, "POST", "/namespaces", json!({"name": "x"})).await;
    assert_eq!(missing.reason(), "missing field `display_name`");
    let no_type = send(
        addr,
        "POST",
        "/namespaces",
        &[],
        r#"{"name":"x","display_name":"x"}"#,
    )
    .await;
    assert_eq!(
        no_type.reason(),
        "Expected request with `Content-Type: application/json`"
    );
    let broken = send(addr, "POST", "/namespaces", &[JSON], "{").await;
    assert!(broken
        .reason()
        .starts_with("Failed to parse the request body as JSON: "));

    // Listing: id order, name filter, id filters, limit quirk, unknown and bad parameters.
    let all = get(addr, "/namespaces").await.json();
    let all = all["namespaces"].as_array().unwrap().clone();
    assert_eq!(all.len(), 2);
    let ids: Vec<rivet_orchestrator::id::Id> = all
        .iter()
        .map(|n| n["namespace_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids[0] < ids[1]);
    let named = get(addr, "/namespaces?name=team-1").await.json();
    assert_eq!(named["namespaces"], json!([ns]));
    let by_id = get(
        addr,
        &format!(
            "/namespaces?namespace_id={}",
            ns["namespace_id"].as_str().unwrap()
        ),
    )
    .await
    .json();
    assert_eq!(by_id["namespaces"], json!([ns]));
    let by_ids = get(
        addr,
        &format!(
            "/namespaces?namespace_ids={},{}",
            all[0]["namespace_id"].as_str().unwrap(),
            all[1]["namespace_id"].as_str().unwrap()
        ),
    )
    .await
    .json();
    assert_eq!(by_ids["namespaces"].as_array().unwrap().len(), 2);
    let one = get(addr, "/namespaces?limit=0").await.json();
    assert_eq!(one["namespaces"].as_array().unwrap().len(), 1);
    let empty = get(addr, "/namespaces?name=nobody").await.json();
    assert_eq!(
        empty,
        json!({"namespaces": [], "pagination": {"cursor": null}})
    );
    assert!(get(addr, "/namespaces?foo=1")
        .await
        .reason()
        .starts_with("unknown field `foo`, expected one of `limit`"));
    assert_eq!(get(addr, "/namespaces?namespace=default").await.status, 400);
    assert_eq!(
        get(addr, "/namespaces?limit=ten").await.reason(),
        "invalid digit found in string"
    );
    assert_eq!(
        get(
            addr,
            "/namespaces?namespace_id=000000000000000000000000000000"
        )
        .await
        .reason(),
        "unsupported ID version: 0"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn datacenters_report_this_datacenter() {
    let (engine, _home) =
        memory_engine(&[("RIVET__topology__public_url", "http://example.test:6420")]).await;
    let addr = engine.guard_addr();
    let expected = json!({"datacenters": [{"label": 1, "name": "default", "url": "http://example.test:6420/"}], "pagination": {"cursor": null}});
    assert_eq!(get(addr, "/datacenters").await.json(), expected);
    // `namespace` and unknown parameters are accepted here.
    assert_eq!(
        get(addr, "/datacenters?namespace=default&other=1")
            .await
            .json(),
        expected
    );
    get(addr, "/datacenters?namespace=nope")
        .await
        .error(400, "namespace", "not_found");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn runner_configs_round_trip_with_defaults() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();

    // What npm rivetkit sends at startup.
    let put = with_json(
        addr,
        "PUT",
        "/runner-configs/default?namespace=default",
        json!({"datacenters": {"default": {"drain_on_version_upgrade": true, "normal": {}}}}),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json(), json!({"endpoint_config_changed": true}));
    let put = with_json(
        addr,
        "PUT",
        "/runner-configs/sl?namespace=default",
        json!({"datacenters": {"default": {"serverless": {"url": "https://app/api/rivet", "headers": {"x-a": "b"}, "request_lifespan": 300, "drain_grace_period": 10}, "metadata": {"a": 1}}}}),
    )
    .await;
    assert_eq!(put.json(), json!({"endpoint_config_changed": true}));

    let list = get(addr, "/runner-configs?namespace=default").await;
    assert_eq!(list.status, 200, "{}", list.body);
    // Writing a serverless config starts a metadata fetch in the background; this URL is not
    // reachable, so a `runner_pool_error` may or may not be there yet (tested elsewhere).
    let mut listed = list.json();
    if let Some(dc) = listed["runner_configs"]["sl"]["datacenters"]["default"].as_object_mut() {
        dc.remove("runner_pool_error");
    }
    assert_eq!(
        listed,
        json!({"runner_configs": {
            "default": {"datacenters": {"default": {"normal": {"drain_on_version_upgrade": true,
                "actor_eviction_delay": 0, "actor_eviction_period": 0, "actor_eviction_rate": 1.0},
                "protocol_version": null}}},
            "sl": {"datacenters": {"default": {"serverless": {"url": "https://app/api/rivet",
                "headers": {"x-a": "b"}, "request_lifespan": 300, "drain_grace_period": 10,
                "max_concurrent_actors": 1000, "slots_per_runner": 1, "min_runners": 0,
                "max_runners": 1000, "runners_margin": 0, "drain_on_version_upgrade": true,
                "actor_eviction_delay": 0, "actor_eviction_period": 0, "actor_eviction_rate": 1.0},
                "metadata": {"a": 1}, "protocol_version": null}}}},
         "pagination": {"cursor": null}})
    );
    // Kind fields in the reference's order.
    let text = &list.body;
    assert!(text.contains(r#"{"serverless":{"url":"https://app/api/rivet","headers":{"x-a":"b"},"request_lifespan":300,"drain_grace_period":10,"max_concurrent_actors":1000,"#), "{text}");
    assert!(
        text.contains(r#""metadata":{"a":1},"protocol_version":null"#),
        "{text}"
    );
    let normal = get(addr, "/runner-configs?namespace=default&variant=normal")
        .await
        .json();
    assert_eq!(
        normal["runner_configs"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["default"]
    );
    let named = get(addr, "/runner-configs?namespace=default&runner_names=sl,zz")
        .await
        .json();
    assert_eq!(
        named["runner_configs"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["sl"]
    );
    let limited = get(addr, "/runner-configs?namespace=default&limit=1")
        .await
        .json();
    assert_eq!(limited["runner_configs"].as_object().unwrap().len(), 1);

    // Errors.
    assert_eq!(
        get(addr, "/runner-configs").await.reason(),
        "missing field `namespace`"
    );
    get(addr, "/runner-configs?namespace=nope")
        .await
        .error(400, "namespace", "not_found");
    assert!(get(addr, "/runner-configs?namespace=default&variant=x")
        .await
        .reason()
        .starts_with("unknown variant `x`"));
    let bad_dc = with_json(
        addr,
        "PUT",
        "/runner-configs/p?namespace=default",
        json!({"datacenters": {"mars": {"normal": {}}}}),
    )
    .await;
    bad_dc.error(400, "datacenter", "not_found");
    let bad_kind = with_json(
        addr,
        "PUT",
        "/runner-configs/p?namespace=default",
        json!({"datacenters": {"default": {"bogus": {}}}}),
    )
    .await;
    assert!(bad_kind
        .reason()
        .contains("no variant of enum RunnerConfigKind"));
    let extra = with_json(
        addr,
        "PUT",
        "/runner-configs/p?namespace=default",
        json!({"datacenters": {}, "foo": 1}),
    )
    .await;
    assert!(extra.reason().starts_with("unknown field `foo`"));
    let invalid = with_json(
        addr,
        "PUT",
        "/runner-configs/p?namespace=default",
        json!({"datacenters": {"default": {"serverless": {"url": "u", "request_lifespan": 300}}}}),
    )
    .await;
    let body = invalid.error(400, "runner_config", "invalid");
    assert_eq!(
        body["metadata"]["reason"],
        "`drain_grace_period` must be less than `request_lifespan` (1800s >= 300s)"
    );
    let no_ns = with_json(
        addr,
        "PUT",
        "/runner-configs/p?namespace=nope",
        json!({"datacenters": {}}),
    )
    .await;
    no_ns.error(400, "namespace", "not_found");
    // The serverless calls (the application side is tested in crates/engine/tests/serverless.rs):
    // a URL the engine cannot call is a failure report, not an error response.
    let health = with_json(
        addr,
        "POST",
        "/runner-configs/serverless-health-check?namespace=default",
        json!({"url": "u"}),
    )
    .await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(
        health.json()["failure"]["error"]["metadata"]["kind"],
        "request_failed"
    );
    let unknown_field = with_json(
        addr,
        "POST",
        "/runner-configs/serverless-health-check?namespace=default",
        json!({"url": "u", "nope": 1}),
    )
    .await;
    assert!(unknown_field.reason().contains("unknown field `nope`"));
    let refresh = with_json(
        addr,
        "POST",
        "/runner-configs/sl/refresh-metadata?namespace=default",
        json!({}),
    )
    .await;
    refresh.error(400, "serverless_runner_pool", "failed_to_fetch_metadata");

    // An empty map deletes the pool and reports no change; DELETE answers {} for any pool.
    let emptied = with_json(
        addr,
        "PUT",
        "/runner-configs/sl?namespace=default",
        json!({"datacenters": {}}),
    )
    .await;
    assert_eq!(emptied.json(), json!({"endpoint_config_changed": false}));
    let deleted = send(
        addr,
        "DELETE",
        "/runner-configs/default?namespace=default",
        &[],
        "",
    )
    .await;
    assert_eq!(deleted.json(), json!({}));
    let unknown = send(
        addr,
        "DELETE",
        "/runner-configs/never?namespace=default",
        &[],
        "",
    )
    .await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.json(), json!({}));
    assert_eq!(
        get(addr, "/runner-configs?namespace=default").await.json(),
        json!({"runner_configs": {}, "pagination": {"cursor": null}})
    );
    // The peer port serves the same routes.
    assert_eq!(get(engine.api_peer_addr(), "/namespaces").await.status, 200);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_admin_token_guards_rest_routes_but_not_health_or_metadata() {
    let (engine, _home) = memory_engine(&[("RIVET__auth__admin_token", "s3cret")]).await;
    let addr = engine.guard_addr();
    let missing = get(addr, "/namespaces").await;
    let body = missing.error(403, "api", "forbidden");
    assert_eq!(
        body,
        json!({"group": "api", "code": "forbidden", "message": "Access denied: Token not provided", "metadata": {"reason": "Token not provided"}})
    );
    let wrong = send(
        addr,
        "GET",
        "/namespaces",
        &[("authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(
        wrong.error(403, "api", "forbidden")["metadata"]["reason"],
        "Invalid token"
    );
    let header_token = send(
        addr,
        "GET",
        "/namespaces",
        &[("x-rivet-token", "s3cret")],
        "",
    )
    .await;
    header_token.error(403, "api", "forbidden");
    let ok = send(
        addr,
        "GET",
        "/namespaces",
        &[("authorization", "Bearer s3cret")],
        "",
    )
    .await;
    assert_eq!(ok.status, 200);
    let put = send(
        addr,
        "PUT",
        "/runner-configs/p?namespace=default",
        &[JSON],
        r#"{"datacenters":{}}"#,
    )
    .await;
    put.error(403, "api", "forbidden");
    // Browsers send preflights without credentials; they are answered anyway.
    let preflight = send(
        addr,
        "OPTIONS",
        "/namespaces",
        &[
            ("origin", "http://app.test"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 200);
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("POST")
    );
    assert_eq!(get(addr, "/health").await.status, 200);
    assert_eq!(get(addr, "/metadata?namespace=default").await.status, 200);
    // The peer port never checks.
    assert_eq!(get(engine.api_peer_addr(), "/namespaces").await.status, 200);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn cors_echoes_the_origin_and_answers_preflights() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();
    let origin = ("origin", "http://app.test");
    let plain = send(addr, "GET", "/namespaces", &[origin], "").await;
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(
        plain.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        plain.header("vary"),
        Some("origin, access-control-request-method, access-control-request-headers")
    );
    let preflight = send(
        addr,
        "OPTIONS",
        "/runner-configs/p",
        &[
            origin,
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "authorization"),
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 200, "{:?}", preflight.headers);
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("PUT")
    );
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    let allow = preflight.header("allow").unwrap().to_ascii_uppercase();
    assert!(allow.contains("PUT") && allow.contains("DELETE"), "{allow}");
    assert!(preflight.header("x-rivet-ray-id").is_some());
    // No Origin: no CORS headers.
    assert!(get(addr, "/namespaces")
        .await
        .header("access-control-allow-origin")
        .is_none());
    // Wrong method on a REST path: 405 with allow; unknown path: 404.
    let wrong = send(addr, "PATCH", "/namespaces", &[], "").await;
    assert_eq!(wrong.status, 405);
    assert!(wrong.header("allow").unwrap().contains("POST"));
    get(addr, "/nope").await.error(404, "api", "not_found");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn query_parameters_on_bodyless_posts_are_rejected() {
    let (engine, _home) = memory_engine(&[]).await;
    let created = send(
        engine.guard_addr(),
        "POST",
        "/namespaces?x=1",
        &[JSON],
        r#"{"name":"a","display_name":"A"}"#,
    )
    .await;
    assert_eq!(created.reason(), "unknown field `x`, there are no fields");
    engine.shutdown().await.unwrap();
}
