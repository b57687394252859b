//! The actor, actor-name, actor-KV, envoy and runner routes through real HTTP against a real
//! engine (memory store, one test on file_system). Actor hosts are simulated through the
//! engine's orchestrator shell where a test needs one (no socket is involved).

mod common;

use common::{memory_engine, with_json, ErrorBody, JSON};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rivet_engine::Engine;
use rivet_orchestrator::id::Id;
use rivet_orchestrator::shell::HostConnect;
use rivet_test_support::{engine_config as config, get, send};
use serde_json::{json, Value};

/// `PUT /runner-configs/{pool}` with a normal config in the default datacenter.
async fn configure_pool(addr: SocketAddr, namespace: &str, pool: &str) {
    let put = with_json(
        addr,
        "PUT",
        &format!("/runner-configs/{pool}?namespace={namespace}"),
        json!({"datacenters": {"default": {"normal": {}}}}),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
}

/// `POST /actors` body for the default pool.
fn create_body(name: &str, key: Option<&str>) -> Value {
    let mut body =
        json!({"name": name, "runner_name_selector": "default", "crash_policy": "sleep"});
    if let Some(key) = key {
        body["key"] = json!(key);
    }
    body
}

/// Creates an actor and returns its JSON.
async fn create(addr: SocketAddr, name: &str, key: Option<&str>) -> Value {
    with_json(
        addr,
        "POST",
        "/actors?namespace=default",
        create_body(name, key),
    )
    .await
    .ok()["actor"]
        .clone()
}

fn id_of(actor: &Value) -> String {
    actor["actor_id"].as_str().unwrap().to_string()
}

async fn by_ids(addr: SocketAddr, ids: &[&str]) -> Vec<Value> {
    get(
        addr,
        &format!("/actors?namespace=default&actor_ids={}", ids.join(",")),
    )
    .await
    .ok()["actors"]
        .as_array()
        .unwrap()
        .clone()
}

async fn default_namespace_id(addr: SocketAddr) -> String {
    let list = get(addr, "/namespaces?name=default").await.ok();
    list["namespaces"][0]["namespace_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Percent-encodes every byte (enough for path segments in tests).
fn encode_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Connects a simulated host (`envoy_key`) to `pool` of the default namespace.
async fn connect_host(engine: &Engine, envoy_key: &str, pool: &str, version: u32) -> Id {
    let ns: Id = default_namespace_id(engine.guard_addr())
        .await
        .parse()
        .unwrap();
    engine
        .shell()
        .host_connected(&HostConnect {
            namespace: ns,
            envoy_key: envoy_key.to_string(),
            pool: pool.to_string(),
            version,
            protocol_version: 8,
            connection: format!("conn-{envoy_key}"),
        })
        .await
        .unwrap();
    ns
}

/// Waits (polling, with a deadline) until the wall clock has passed `ts`, so the next actor
/// gets a strictly larger `create_ts`.
async fn clock_past(ts: i64) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while rivet_api::now_ms() <= ts {
        assert!(Instant::now() < deadline, "clock did not advance");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn creating_validates_the_body_and_needs_a_runner_config() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();

    let none = with_json(
        addr,
        "POST",
        "/actors?namespace=default",
        create_body("counter", Some("a")),
    )
    .await;
    let body = none.error(400, "actor", "no_runner_config_configured");
    assert_eq!(
        body["metadata"],
        json!({"namespace": "default", "pool_name": "default"})
    );
    let none = with_json(
        addr,
        "PUT",
        "/actors?namespace=default",
        create_body("counter", Some("a")),
    )
    .await;
    none.error(400, "actor", "no_runner_config_configured");
    configure_pool(addr, "default", "default").await;

    // Body shape.
    let mut missing = create_body("counter", None);
    missing.as_object_mut().unwrap().remove("crash_policy");
    assert_eq!(
        with_json(addr, "POST", "/actors?namespace=default", missing)
            .await
            .reason(),
        "missing field `crash_policy`"
    );
    let mut unknown = create_body("counter", None);
    unknown["foo"] = json!(1);
    assert_eq!(
        with_json(addr, "POST", "/actors?namespace=default", unknown).await.reason(),
        "unknown field `foo`, expected one of `datacenter`, `name`, `key`, `input`, `runner_name_selector`, `crash_policy`"
    );
    let mut policy = create_body("counter", None);
    policy["crash_policy"] = json!("explode");
    assert_eq!(
        with_json(addr, "POST", "/actors?namespace=default", policy)
            .await
            .reason(),
        "unknown variant `explode`, expected one of `restart`, `sleep`, `destroy`"
    );
    let no_type = send(
        addr,
        "POST",
        "/actors?namespace=default",
        &[],
        &create_body("counter", None).to_string(),
    )
    .await;
    assert_eq!(
        no_type.reason(),
        "Expected request with `Content-Type: application/json`"
    );
    assert!(
        send(addr, "POST", "/actors?namespace=default", &[JSON], "{")
            .await
            .reason()
            .starts_with("Failed to parse the request body as JSON: ")
    );
    assert_eq!(
        with_json(
            addr,
            "PUT",
            "/actors?namespace=default",
            create_body("counter", None)
        )
        .await
        .reason(),
        "missing field `key`"
    );

    // Query.
    assert_eq!(
        with_json(addr, "POST", "/actors", create_body("counter", None))
            .await
            .reason(),
        "missing field `namespace`"
    );
    assert_eq!(
        with_json(
            addr,
            "POST",
            "/actors?namespace=default&x=1",
            create_body("counter", None)
        )
        .await
        .reason(),
        "unknown field `x`, expected `namespace`"
    );
    for method in ["POST", "PUT"] {
        with_json(
            addr,
            method,
            "/actors?namespace=nope",
            create_body("counter", Some("k")),
        )
        .await
        .error(400, "namespace", "not_found");
    }

    // Keys and datacenters.
    for method in ["POST", "PUT"] {
        let empty = with_json(
            addr,
            method,
            "/actors?namespace=default",
            create_body("counter", Some("")),
        )
        .await;
        let body = empty.error(400, "actor", "empty_key");
        assert_eq!(body["message"], "Key label cannot be empty.");
        let big = "k".repeat(1025);
        let large = with_json(
            addr,
            method,
            "/actors?namespace=default",
            create_body("counter", Some(&big)),
        )
        .await;
        let body = large.error(400, "actor", "key_too_large");
        assert_eq!(body["metadata"]["max_size"], 1024);
        assert!(body["metadata"]["key_preview"].is_string());
        let mut mars = create_body("counter", Some("m"));
        mars["datacenter"] = json!("mars");
        with_json(addr, method, "/actors?namespace=default", mars)
            .await
            .error(400, "datacenter", "not_found");
    }
    // Exactly 1024 bytes is fine; so are an explicit local datacenter and an empty name.
    let max = create(addr, "counter", Some(&"k".repeat(1024))).await;
    assert_eq!(max["key"].as_str().unwrap().len(), 1024);
    let mut local = create_body("", Some("local"));
    local["datacenter"] = json!("default");
    let local = with_json(addr, "POST", "/actors?namespace=default", local)
        .await
        .ok();
    assert_eq!(local["actor"]["name"], "");
    assert_eq!(local["actor"]["datacenter"], "default");

    // Another pool without a config.
    let mut other = create_body("counter", None);
    other["runner_name_selector"] = json!("elsewhere");
    let body = with_json(addr, "POST", "/actors?namespace=default", other)
        .await
        .error(400, "actor", "no_runner_config_configured");
    assert_eq!(body["metadata"]["pool_name"], "elsewhere");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_created_actor_is_listed_by_id_with_its_scheduling_state() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();
    configure_pool(addr, "default", "default").await;
    let ns_id = default_namespace_id(addr).await;

    let mut body = create_body("counter", Some("k1"));
    body["crash_policy"] = json!("destroy");
    body["input"] = json!("aGVsbG8=");
    let created = with_json(addr, "POST", "/actors?namespace=default", body).await;
    let actor = created.ok()["actor"].clone();
    // Fields in the reference's order.
    assert!(
        created.body.starts_with(r#"{"actor":{"actor_id":""#),
        "{}",
        created.body
    );
    assert!(created
        .body
        .contains(r#"","name":"counter","key":"k1","namespace_id":""#));
    assert!(created.body.contains(r#","datacenter":"default","runner_name_selector":"default","crash_policy":"sleep","create_ts":"#));
    let id = id_of(&actor);
    assert!(id.ends_with("l00"), "{id}");
    assert_eq!(id.len(), 30);
    assert_eq!(actor["namespace_id"], ns_id.as_str());
    // Envoy pools always report "sleep".
    assert_eq!(actor["crash_policy"], "sleep");
    let create_ts = actor["create_ts"].as_i64().unwrap();
    assert!(create_ts > 0);
    // Not running: never started, not connectable, not destroyed.
    for field in [
        "start_ts",
        "pending_allocation_ts",
        "connectable_ts",
        "destroy_ts",
    ] {
        assert_eq!(actor[field], Value::Null, "{field}: {actor}");
    }

    let listed = by_ids(addr, &[&id]).await;
    assert_eq!(listed.len(), 1);
    let listed = &listed[0];
    assert_eq!(listed["actor_id"], id.as_str());
    assert_eq!(listed["key"], "k1");
    // No host is connected: the allocation failed with `no_envoys` and is retried with backoff
    // (the next attempt's time in `reschedule_ts`, in the future); meanwhile the actor counts as
    // asleep (`sleep_ts`) and a client sees the scheduling error.
    assert_eq!(listed["error"], "no_envoys", "{listed}");
    let sleep_ts = listed["sleep_ts"].as_i64().unwrap();
    assert!(sleep_ts >= create_ts, "{listed}");
    let reschedule_ts = listed["reschedule_ts"].as_i64().unwrap();
    assert!(reschedule_ts > sleep_ts, "{listed}");
    assert_eq!(listed["connectable_ts"], Value::Null);
    assert_eq!(listed["destroy_ts"], Value::Null);
    let fields: Vec<&str> = listed
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields.len(), 15, "{fields:?}");

    // Id forms: repeated `actor_id`, comma list, both; unknown ids are skipped.
    let unknown = Id::new(1).to_string();
    let both = get(
        addr,
        &format!("/actors?namespace=default&actor_id={id}&actor_ids={unknown}"),
    )
    .await
    .ok();
    assert_eq!(both["actors"].as_array().unwrap().len(), 1);
    assert_eq!(both["pagination"]["cursor"], create_ts.to_string());
    assert_eq!(
        get(
            addr,
            &format!("/actors?namespace=default&actor_id={unknown}")
        )
        .await
        .ok(),
        json!({"actors": [], "pagination": {"cursor": null}})
    );
    // By key.
    let by_key = get(addr, "/actors?namespace=default&name=counter&key=k1")
        .await
        .ok();
    assert_eq!(by_key["actors"][0]["actor_id"], id.as_str());
    assert_eq!(by_key["pagination"]["cursor"], create_ts.to_string());
    let wrong_name = get(addr, "/actors?namespace=default&name=other&key=k1")
        .await
        .ok();
    assert_eq!(
        wrong_name,
        json!({"actors": [], "pagination": {"cursor": null}})
    );

    // The input is stored as decoded bytes; undecodable input is no input; "" is empty input.
    let input_of = |id: String| {
        let db = engine.db().clone();
        async move {
            let id: Id = id.parse().unwrap();
            db.txn(|tx| async move { rivet_orchestrator::actor::load_input(&tx, id).await })
                .await
                .unwrap()
        }
    };
    assert_eq!(input_of(id.clone()).await, Some(b"hello".to_vec()));
    for (input, expected) in [
        (json!("not base64!"), None),
        (json!("aGVsbG8"), None),
        (json!(""), Some(Vec::new())),
        (Value::Null, None),
    ] {
        let mut body = create_body("counter", None);
        body["input"] = input.clone();
        let actor = with_json(addr, "POST", "/actors?namespace=default", body)
            .await
            .ok()["actor"]
            .clone();
        assert_eq!(input_of(id_of(&actor)).await, expected, "{input}");
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn listing_validates_its_modes() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();
    let id = Id::new(1).to_string();

    assert_eq!(
        get(
            addr,
            &format!("/actors?namespace=default&actor_ids={id}&name=a")
        )
        .await
        .invalid_input(),
        "Cannot provide both actor_id and (name + key). Use either actor_id or (name + key)."
    );
    assert_eq!(
        get(
            addr,
            &format!("/actors?namespace=default&actor_id={id}&key=k")
        )
        .await
        .invalid_input(),
        "Cannot provide both actor_id and (name + key). Use either actor_id or (name + key)."
    );
    assert_eq!(
        get(addr, "/actors?namespace=default&key=k")
            .await
            .invalid_input(),
        "Name is required when key is provided."
    );
    assert_eq!(
        get(addr, "/actors?namespace=default").await.invalid_input(),
        "Name is required when not using actor_ids."
    );
    let ids: Vec<String> = (0..33).map(|_| Id::new(1).to_string()).collect();
    let many = get(
        addr,
        &format!("/actors?namespace=default&actor_ids={}", ids.join(",")),
    )
    .await;
    let body = many.error(400, "validation", "too_many_actor_ids");
    assert_eq!(body["metadata"], json!({"count": 33, "max": 32}));
    // 32 split over both forms is fine.
    let split = format!(
        "/actors?namespace=default&actor_id={}&actor_id={}&actor_ids={}",
        ids[0],
        ids[1],
        ids[2..32].join(",")
    );
    assert_eq!(get(addr, &split).await.ok()["actors"], json!([]));

    assert_eq!(
        get(
            addr,
            "/actors?namespace=default&actor_id=000000000000000000000000000000"
        )
        .await
        .reason(),
        "unsupported ID version: 0"
    );
    assert_eq!(
        get(addr, "/actors?namespace=default&actor_ids=nope")
            .await
            .reason(),
        "invalid id in `actor_ids` query: invalid ID length: 4"
    );
    assert!(get(addr, "/actors?namespace=default&name=a&foo=1")
        .await
        .reason()
        .starts_with("unknown field `foo`, expected one of `namespace`"));
    assert_eq!(
        get(addr, "/actors?namespace=default&name=a&limit=ten")
            .await
            .reason(),
        "invalid digit found in string"
    );
    assert_eq!(
        get(
            addr,
            "/actors?namespace=default&name=a&include_destroyed=maybe"
        )
        .await
        .reason(),
        "provided string was not `true` or `false`"
    );
    assert_eq!(
        get(addr, "/actors?namespace=default&name=a&cursor=abc")
            .await
            .reason(),
        "invalid digit found in string"
    );
    assert_eq!(
        get(addr, "/actors?name=a").await.reason(),
        "missing field `namespace`"
    );
    get(addr, "/actors?namespace=nope&name=a")
        .await
        .error(400, "namespace", "not_found");
    get(addr, &format!("/actors?namespace=nope&actor_ids={id}"))
        .await
        .error(400, "namespace", "not_found");
    assert_eq!(
        get(addr, "/actors?namespace=default&name=a").await.ok(),
        json!({"actors": [], "pagination": {"cursor": null}})
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_get_or_create_converges_on_one_actor_per_key() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();
    configure_pool(addr, "default", "default").await;

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..200 {
        calls.spawn(async move {
            with_json(
                addr,
                "PUT",
                "/actors?namespace=default",
                create_body("race", Some("one")),
            )
            .await
            .ok()
        });
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    while let Some(result) = calls.join_next().await {
        let body = result.unwrap();
        ids.insert(id_of(&body["actor"]));
        if body["created"] == json!(true) {
            created += 1;
        } else {
            assert_eq!(body["created"], json!(false));
        }
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(created, 1);
    let listed = get(addr, "/actors?namespace=default&name=race").await.ok();
    assert_eq!(listed["actors"].as_array().unwrap().len(), 1);

    // 100 keys, 5 concurrent calls each.
    let mut calls = tokio::task::JoinSet::new();
    for round in 0..5 {
        for key in 0..100 {
            calls.spawn(async move {
                let key = format!("key-{key}");
                let body = with_json(
                    addr,
                    "PUT",
                    "/actors?namespace=default",
                    create_body("many", Some(&key)),
                )
                .await
                .ok();
                (key, round, body)
            });
        }
    }
    let mut per_key: BTreeMap<String, (HashSet<String>, usize)> = BTreeMap::new();
    while let Some(result) = calls.join_next().await {
        let (key, _round, body) = result.unwrap();
        assert_eq!(body["actor"]["key"], key.as_str());
        let entry = per_key.entry(key).or_default();
        entry.0.insert(id_of(&body["actor"]));
        if body["created"] == json!(true) {
            entry.1 += 1;
        }
    }
    assert_eq!(per_key.len(), 100);
    for (key, (ids, created)) in &per_key {
        assert_eq!(ids.len(), 1, "{key}: {ids:?}");
        assert_eq!(*created, 1, "{key}");
    }
    let all = get(addr, "/actors?namespace=default&name=many&limit=1000")
        .await
        .ok();
    assert_eq!(all["actors"].as_array().unwrap().len(), 100);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn keys_are_unique_until_destroyed_and_destroy_is_idempotent() {
    // On the file_system store: the key index and destroy must hold on the default backend.
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(home.path(), &[])).await.unwrap();
    let addr = engine.guard_addr();
    configure_pool(addr, "default", "default").await;

    let first = create(addr, "door", Some("front")).await;
    let first_id = id_of(&first);
    let dup = with_json(
        addr,
        "POST",
        "/actors?namespace=default",
        create_body("door", Some("front")),
    )
    .await;
    let body = dup.error(400, "actor", "duplicate_key");
    assert_eq!(
        body["metadata"],
        json!({"existing_actor_id": first_id, "key": "front"})
    );
    // The same key under another name is another actor.
    create(addr, "window", Some("front")).await;
    // PUT returns the holder.
    let got = with_json(
        addr,
        "PUT",
        "/actors?namespace=default",
        create_body("door", Some("front")),
    )
    .await
    .ok();
    assert_eq!(got["created"], json!(false));
    assert_eq!(got["actor"], first);

    // Errors first: malformed, unknown, wrong namespace, unknown namespace.
    assert_eq!(
        send(
            addr,
            "DELETE",
            "/actors/000000000000000000000000000000?namespace=default",
            &[],
            ""
        )
        .await
        .reason(),
        "unsupported ID version: 0"
    );
    let unknown = Id::new(1).to_string();
    let body = send(
        addr,
        "DELETE",
        &format!("/actors/{unknown}?namespace=default"),
        &[],
        "",
    )
    .await
    .error(400, "actor", "not_found");
    assert_eq!(
        body["message"],
        "The actor does not exist or was destroyed."
    );
    with_json(
        addr,
        "POST",
        "/namespaces",
        json!({"name": "other", "display_name": "Other"}),
    )
    .await
    .ok();
    send(
        addr,
        "DELETE",
        &format!("/actors/{first_id}?namespace=other"),
        &[],
        "",
    )
    .await
    .error(400, "actor", "not_found");
    send(
        addr,
        "DELETE",
        &format!("/actors/{first_id}?namespace=nope"),
        &[],
        "",
    )
    .await
    .error(400, "namespace", "not_found");
    assert!(send(
        addr,
        "DELETE",
        &format!("/actors/{first_id}?namespace=default&x=1"),
        &[],
        ""
    )
    .await
    .reason()
    .starts_with("unknown field `x`"));
    // Another namespace does not see the actor by id either.
    assert_eq!(
        get(
            addr,
            &format!("/actors?namespace=other&actor_ids={first_id}")
        )
        .await
        .ok()["actors"],
        json!([])
    );

    // Destroy: `{}`, destroy_ts set, key free; twice is fine.
    let deleted = send(
        addr,
        "DELETE",
        &format!("/actors/{first_id}?namespace=default"),
        &[],
        "",
    )
    .await;
    assert_eq!(deleted.ok(), json!({}));
    let destroyed = by_ids(addr, &[&first_id]).await;
    assert_eq!(destroyed.len(), 1, "destroyed actors are listed by id");
    assert!(destroyed[0]["destroy_ts"].as_i64().unwrap() >= first["create_ts"].as_i64().unwrap());
    let again = send(
        addr,
        "DELETE",
        &format!("/actors/{first_id}?namespace=default"),
        &[],
        "",
    )
    .await;
    assert_eq!(again.ok(), json!({}));
    // Without a namespace (optional on this route).
    let bare = send(addr, "DELETE", &format!("/actors/{first_id}"), &[], "").await;
    assert_eq!(bare.ok(), json!({}));
    assert_eq!(
        get(addr, "/actors?namespace=default&name=door&key=front")
            .await
            .ok(),
        json!({"actors": [], "pagination": {"cursor": null}})
    );

    // The key is free again.
    clock_past(first["create_ts"].as_i64().unwrap()).await;
    let second = create(addr, "door", Some("front")).await;
    let second_id = id_of(&second);
    assert_ne!(second_id, first_id);
    let live = get(addr, "/actors?namespace=default&name=door&key=front")
        .await
        .ok();
    assert_eq!(live["actors"], json!([second]));
    // With include_destroyed, every holder of the key, newest first.
    let history = get(
        addr,
        "/actors?namespace=default&name=door&key=front&include_destroyed=true",
    )
    .await
    .ok();
    let history: Vec<String> = history["actors"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(history, [second_id.clone(), first_id.clone()]);
    let limited = get(
        addr,
        "/actors?namespace=default&name=door&key=front&include_destroyed=true&limit=1",
    )
    .await
    .ok();
    assert_eq!(limited["actors"].as_array().unwrap().len(), 1);
    let cursor = limited["pagination"]["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let rest = get(
        addr,
        &format!(
            "/actors?namespace=default&name=door&key=front&include_destroyed=true&cursor={cursor}"
        ),
    )
    .await
    .ok();
    assert_eq!(id_of(&rest["actors"][0]), first_id);

    // The state survives a restart of the engine.
    engine.shutdown().await.unwrap();
    let engine = Engine::start(&config(home.path(), &[])).await.unwrap();
    let addr = engine.guard_addr();
    let both = by_ids(addr, &[&first_id, &second_id]).await;
    assert_eq!(both.len(), 2);
    assert_eq!(id_of(&both[0]), second_id, "newest first");
    assert!(both[1]["destroy_ts"].is_i64());
    let dup = with_json(
        addr,
        "POST",
        "/actors?namespace=default",
        create_body("door", Some("front")),
    )
    .await;
    dup.error(400, "actor", "duplicate_key");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn listing_by_name_is_newest_first_and_paginates() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();
    configure_pool(addr, "default", "default").await;

    let mut created = Vec::new();
    let mut last_ts = 0;
    for _ in 0..7 {
        clock_past(last_ts).await;
        let actor = create(addr, "lister", None).await;
        last_ts = actor["create_ts"].as_i64().unwrap();
        created.push(id_of(&actor));
    }
    create(addr, "bystander", None).await;
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let all = get(addr, "/actors?namespace=default&name=lister")
        .await
        .ok();
    let ids: Vec<String> = all["actors"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, newest_first);

    // Pages of 3: 3 + 3 + 1, then an empty page with a null cursor.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let mut path = "/actors?namespace=default&name=lister&limit=3".to_string();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = get(addr, &path).await.ok();
        let actors = page["actors"].as_array().unwrap().clone();
        sizes.push(actors.len());
        if actors.is_empty() {
            assert_eq!(page["pagination"]["cursor"], Value::Null);
            break;
        }
        let last_ts = actors.last().unwrap()["create_ts"].as_i64().unwrap();
        assert_eq!(page["pagination"]["cursor"], last_ts.to_string());
        paged.extend(actors.iter().map(id_of));
        cursor = Some(last_ts.to_string());
    }
    assert_eq!(sizes, [3, 3, 1, 0]);
    assert_eq!(paged, newest_first);
    assert_eq!(
        get(addr, "/actors?namespace=default&name=lister&limit=0")
            .await
            .ok(),
        json!({"actors": [], "pagination": {"cursor": null}})
    );
    // limit applies to the id form too, newest first.
    let by_id = get(
        addr,
        &format!(
            "/actors?namespace=default&actor_ids={}&limit=2",
            created.join(",")
        ),
    )
    .await
    .ok();
    let ids: Vec<String> = by_id["actors"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, newest_first[..2]);

    // Destroyed actors only with include_destroyed.
    let victim = &created[3];
    send(
        addr,
        "DELETE",
        &format!("/actors/{victim}?namespace=default"),
        &[],
        "",
    )
    .await
    .ok();
    let live = get(addr, "/actors?namespace=default&name=lister")
        .await
        .ok();
    let live: Vec<String> = live["actors"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(live.len(), 6);
    assert!(!live.contains(victim));
    let with_destroyed = get(
        addr,
        "/actors?namespace=default&name=lister&include_destroyed=true",
    )
    .await
    .ok();
    let with_destroyed: Vec<String> = with_destroyed["actors"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(with_destroyed, newest_first);
    let explicit_false = get(
        addr,
        "/actors?namespace=default&name=lister&include_destroyed=false",
    )
    .await
    .ok();
    assert_eq!(explicit_false["actors"].as_array().unwrap().len(), 6);

    // The default limit is 100.
    for _ in 0..101 {
        create(addr, "crowd", None).await;
    }
    let crowd = get(addr, "/actors?namespace=default&name=crowd").await.ok();
    assert_eq!(crowd["actors"].as_array().unwrap().len(), 100);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn sleep_and_reschedule_apply_or_answer_empty() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();
    configure_pool(addr, "default", "default").await;
    let actor = create(addr, "napper", None).await;
    let id = id_of(&actor);
    let sleep = format!("/actors/{id}/sleep?namespace=default");
    let reschedule = format!("/actors/{id}/reschedule?namespace=default");

    // Validation.
    assert_eq!(
        with_json(addr, "POST", &sleep, json!({"x": 1}))
            .await
            .reason(),
        "unknown field `x`, there are no fields"
    );
    assert_eq!(
        send(addr, "POST", &reschedule, &[], "{}").await.reason(),
        "Expected request with `Content-Type: application/json`"
    );
    assert_eq!(
        with_json(addr, "POST", &format!("/actors/{id}/sleep"), json!({}))
            .await
            .reason(),
        "missing field `namespace`"
    );
    with_json(
        addr,
        "POST",
        &format!("/actors/{id}/sleep?namespace=nope"),
        json!({}),
    )
    .await
    .error(400, "namespace", "not_found");
    let unknown = Id::new(1).to_string();
    for action in ["sleep", "reschedule"] {
        with_json(
            addr,
            "POST",
            &format!("/actors/{unknown}/{action}?namespace=default"),
            json!({}),
        )
        .await
        .error(400, "actor", "not_found");
        assert_eq!(
            with_json(
                addr,
                "POST",
                &format!("/actors/abc/{action}?namespace=default"),
                json!({})
            )
            .await
            .reason(),
            "invalid ID length: 3"
        );
    }

    // No host: the actor is backing off; reschedule retries the allocation at once.
    assert_eq!(
        with_json(addr, "POST", &reschedule, json!({})).await.ok(),
        json!({})
    );
    let after = by_ids(addr, &[&id]).await[0].clone();
    assert_eq!(after["error"], "no_envoys");
    assert_eq!(after["destroy_ts"], Value::Null);

    // Sleep: sleep_ts set, the retry stops.
    assert_eq!(
        with_json(addr, "POST", &sleep, json!({})).await.ok(),
        json!({})
    );
    let asleep = by_ids(addr, &[&id]).await[0].clone();
    let sleep_ts = asleep["sleep_ts"].as_i64().unwrap();
    assert!(sleep_ts >= actor["create_ts"].as_i64().unwrap());
    assert_eq!(asleep["reschedule_ts"], Value::Null, "{asleep}");
    assert_eq!(asleep["connectable_ts"], Value::Null);
    // Sleeping again or rescheduling a sleeping actor changes nothing and answers {}.
    assert_eq!(
        with_json(addr, "POST", &sleep, json!({})).await.ok(),
        json!({})
    );
    assert_eq!(
        with_json(addr, "POST", &reschedule, json!({})).await.ok(),
        json!({})
    );
    assert_eq!(by_ids(addr, &[&id]).await[0], asleep);

    // A destroyed actor: {} as well.
    send(addr, "DELETE", &format!("/actors/{id}"), &[], "")
        .await
        .ok();
    for path in [&sleep, &reschedule] {
        assert_eq!(
            with_json(addr, "POST", path, json!({})).await.ok(),
            json!({})
        );
    }

    // With a host: the actor is starting on it; sleep stops it with sleep_ts set at once.
    connect_host(&engine, "host-1", "default", 1).await;
    let running = create(addr, "napper", None).await;
    assert_eq!(running["error"], Value::Null, "{running}");
    let rid = id_of(&running);
    assert_eq!(
        with_json(
            addr,
            "POST",
            &format!("/actors/{rid}/sleep?namespace=default"),
            json!({})
        )
        .await
        .ok(),
        json!({})
    );
    let stopping = by_ids(addr, &[&rid]).await[0].clone();
    assert!(stopping["sleep_ts"].is_i64(), "{stopping}");
    assert_eq!(stopping["destroy_ts"], Value::Null);
    // A stop is under way: a reschedule changes nothing.
    assert_eq!(
        with_json(
            addr,
            "POST",
            &format!("/actors/{rid}/reschedule?namespace=default"),
            json!({})
        )
        .await
        .ok(),
        json!({})
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn kv_keys_are_read_by_standard_base64() {
    use rivet_test_host::protocol::{KvPutRequest, KvRequestData};

    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();
    configure_pool(addr, "default", "default").await;
    let actor = create(addr, "store", None).await;
    let id = id_of(&actor);
    let actor_id: Id = id.parse().unwrap();

    // Keys whose base64 needs `+`, `/` and padding.
    let key = vec![0xfb, 0xff];
    let value = b"value \x00\xff".to_vec();
    let put = KvRequestData::Put(KvPutRequest {
        keys: vec![key.clone(), b"plain".to_vec()],
        values: vec![value.clone(), b"x".to_vec()],
    });
    engine
        .db()
        .txn(|tx| {
            let put = put.clone();
            async move {
                rivet_orchestrator::actor_kv::handle(&tx, &actor_id, &put, 1_700_000_000_123).await
            }
        })
        .await
        .unwrap();

    let encoded = encode_all("+/8=");
    let read = get(
        addr,
        &format!("/actors/{id}/kv/keys/{encoded}?namespace=default"),
    )
    .await
    .ok();
    assert_eq!(
        read,
        json!({"value": "dmFsdWUgAP8=", "update_ts": 1_700_000_000_123i64})
    );
    let plain = get(
        addr,
        &format!("/actors/{id}/kv/keys/cGxhaW4=?namespace=default"),
    )
    .await
    .ok();
    assert_eq!(plain["value"], "eA==");

    let missing = get(
        addr,
        &format!("/actors/{id}/kv/keys/bWlzc2luZw%3D%3D?namespace=default"),
    )
    .await;
    let body = missing.error(400, "actor", "kv_key_not_found");
    assert_eq!(body["message"], "The KV key does not exist for this actor.");
    // Undecodable base64 (unpadded, or not base64): a masked internal error.
    for bad in ["cGxhaW4", "%21%21%21"] {
        let body = get(
            addr,
            &format!("/actors/{id}/kv/keys/{bad}?namespace=default"),
        )
        .await
        .error(500, "core", "internal_error");
        assert_eq!(
            body,
            json!({"group": "core", "code": "internal_error", "message": "An internal error occurred"})
        );
    }
    let unknown = Id::new(1).to_string();
    get(
        addr,
        &format!("/actors/{unknown}/kv/keys/cGxhaW4=?namespace=default"),
    )
    .await
    .error(400, "actor", "not_found");
    assert_eq!(
        get(addr, &format!("/actors/{id}/kv/keys/cGxhaW4="))
            .await
            .reason(),
        "missing field `namespace`"
    );
    get(
        addr,
        &format!("/actors/{id}/kv/keys/cGxhaW4=?namespace=nope"),
    )
    .await
    .error(400, "namespace", "not_found");
    assert_eq!(
        get(addr, "/actors/bad/kv/keys/cGxhaW4=?namespace=default")
            .await
            .reason(),
        "invalid ID length: 3"
    );

    // Destroying the actor deletes its KV data.
    send(addr, "DELETE", &format!("/actors/{id}"), &[], "")
        .await
        .ok();
    get(
        addr,
        &format!("/actors/{id}/kv/keys/cGxhaW4=?namespace=default"),
    )
    .await
    .error(400, "actor", "kv_key_not_found");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn envoys_and_actor_names_come_from_connected_hosts() {
    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();
    configure_pool(addr, "default", "default").await;
    let ns_id = default_namespace_id(addr).await;

    assert_eq!(
        get(addr, "/envoys?namespace=default").await.ok(),
        json!({"envoys": [], "pagination": {"cursor": null}})
    );
    let ns = connect_host(&engine, "host-a", "default", 3).await;
    clock_past(rivet_api::now_ms()).await;
    connect_host(&engine, "host-b", "other-pool", 1).await;
    let names: BTreeMap<String, Value> = [
        ("counter".to_string(), json!({})),
        ("chat".to_string(), json!({"icon": "c", "name": "Chat"})),
    ]
    .into();
    engine
        .shell()
        .host_metadata(
            ns,
            "host-a",
            &names,
            Some(json!({"rivetkit": {"version": "2.3.19"}})),
        )
        .await
        .unwrap();
    // One actor lands on host-a (the only host of the default pool).
    let actor = create(addr, "counter", None).await;
    assert_eq!(actor["error"], Value::Null, "{actor}");

    let all = get(addr, "/envoys?namespace=default").await;
    let body = all.ok();
    let envoys = body["envoys"].as_array().unwrap();
    assert_eq!(envoys.len(), 2);
    // Newest first.
    assert_eq!(envoys[0]["envoy_key"], "host-b");
    let a = &envoys[1];
    assert_eq!(a["envoy_key"], "host-a");
    assert_eq!(a["namespace_id"], ns_id.as_str());
    assert_eq!(a["datacenter"], "default");
    assert_eq!(a["pool_name"], "default");
    assert_eq!(a["version"], 3);
    assert_eq!(a["slots"], 1);
    assert_eq!(a["stop_ts"], Value::Null);
    assert_eq!(a["last_connected_ts"], Value::Null);
    assert_eq!(a["last_rtt"], 0);
    assert!(a["last_ping_ts"].as_i64().unwrap() >= a["create_ts"].as_i64().unwrap());
    assert_eq!(a["metadata"], json!({"rivetkit": {"version": "2.3.19"}}));
    assert!(all
        .body
        .contains(r#"{"envoy_key":"host-a","namespace_id":""#));
    assert!(all.body.contains(
        r#"","datacenter":"default","pool_name":"default","version":3,"slots":1,"create_ts":"#
    ));
    assert_eq!(
        body["pagination"]["cursor"],
        a["create_ts"].as_i64().unwrap().to_string()
    );

    // Filters and pagination.
    let pool = get(addr, "/envoys?namespace=default&name=default")
        .await
        .ok();
    assert_eq!(pool["envoys"].as_array().unwrap().len(), 1);
    assert_eq!(pool["envoys"][0]["envoy_key"], "host-a");
    let keyed = get(
        addr,
        "/envoys?namespace=default&envoy_key=host-a&envoy_key=host-b&envoy_key=ghost",
    )
    .await
    .ok();
    assert_eq!(keyed["envoys"].as_array().unwrap().len(), 2);
    assert_eq!(keyed["pagination"]["cursor"], Value::Null);
    let first = get(addr, "/envoys?namespace=default&limit=1").await.ok();
    assert_eq!(first["envoys"][0]["envoy_key"], "host-b");
    let cursor = first["pagination"]["cursor"].as_str().unwrap().to_string();
    let second = get(
        addr,
        &format!("/envoys?namespace=default&limit=1&cursor={cursor}"),
    )
    .await
    .ok();
    assert_eq!(second["envoys"][0]["envoy_key"], "host-a");
    assert!(get(addr, "/envoys?namespace=default&pool=x")
        .await
        .reason()
        .starts_with("unknown field `pool`"));
    assert_eq!(
        get(addr, "/envoys?namespace=default&limit=-1")
            .await
            .reason(),
        "invalid digit found in string"
    );
    get(addr, "/envoys?namespace=nope")
        .await
        .error(400, "namespace", "not_found");
    assert_eq!(
        get(addr, "/envoys").await.reason(),
        "missing field `namespace`"
    );

    // Actor names, in name order, cursor = last name.
    let listed = get(addr, "/actors/names?namespace=default").await.ok();
    assert_eq!(
        listed,
        json!({"names": {"chat": {"metadata": {"icon": "c", "name": "Chat"}}, "counter": {"metadata": {}}},
               "pagination": {"cursor": "counter"}})
    );
    let page = get(addr, "/actors/names?namespace=default&limit=1")
        .await
        .ok();
    assert_eq!(
        page,
        json!({"names": {"chat": {"metadata": {"icon": "c", "name": "Chat"}}}, "pagination": {"cursor": "chat"}})
    );
    let next = get(addr, "/actors/names?namespace=default&limit=1&cursor=chat")
        .await
        .ok();
    assert_eq!(next["names"], json!({"counter": {"metadata": {}}}));
    assert_eq!(
        get(addr, "/actors/names?namespace=default&limit=0")
            .await
            .ok(),
        json!({"names": {}, "pagination": {"cursor": null}})
    );
    assert_eq!(
        get(addr, "/envoys?namespace=default&limit=0").await.ok(),
        json!({"envoys": [], "pagination": {"cursor": null}})
    );
    let end = get(addr, "/actors/names?namespace=default&cursor=counter")
        .await
        .ok();
    assert_eq!(end, json!({"names": {}, "pagination": {"cursor": null}}));
    assert!(get(addr, "/actors/names?namespace=default&name=x")
        .await
        .reason()
        .starts_with("unknown field `name`"));
    get(addr, "/actors/names?namespace=nope")
        .await
        .error(400, "namespace", "not_found");

    // Legacy runners: always empty, queries validated.
    assert_eq!(
        get(addr, "/runners?namespace=default").await.ok(),
        json!({"runners": [], "pagination": {"cursor": null}})
    );
    let id = Id::new(1).to_string();
    assert_eq!(
        get(
            addr,
            &format!("/runners?namespace=default&name=p&runner_id={id}&runner_ids={id}&include_stopped=true&limit=5&cursor=1")
        )
        .await
        .ok()["runners"],
        json!([])
    );
    assert_eq!(
        get(addr, "/runners?namespace=default&include_stopped=x")
            .await
            .reason(),
        "provided string was not `true` or `false`"
    );
    assert_eq!(
        get(addr, "/runners?namespace=default&runner_id=abc")
            .await
            .reason(),
        "invalid ID length: 3"
    );
    assert!(get(addr, "/runners?namespace=default&foo=1")
        .await
        .reason()
        .starts_with("unknown field `foo`"));
    get(addr, "/runners?namespace=nope")
        .await
        .error(400, "namespace", "not_found");
    assert_eq!(
        get(addr, "/runners/names?namespace=default&limit=3")
            .await
            .ok(),
        json!({"names": [], "pagination": {"cursor": null}})
    );
    assert!(get(addr, "/runners/names?namespace=default&name=a")
        .await
        .reason()
        .starts_with("unknown field `name`"));
    get(addr, "/runners/names?namespace=nope")
        .await
        .error(400, "namespace", "not_found");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_admin_token_guards_every_actor_and_host_route() {
    let (engine, _home) = memory_engine(&[("RIVET__auth__admin_token", "s3cret")]).await;
    let addr = engine.guard_addr();
    let bearer = ("authorization", "Bearer s3cret");
    let put = send(
        addr,
        "PUT",
        "/runner-configs/default?namespace=default",
        &[JSON, bearer],
        r#"{"datacenters":{"default":{"normal":{}}}}"#,
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let created = send(
        addr,
        "POST",
        "/actors?namespace=default",
        &[JSON, bearer],
        &create_body("guarded", Some("g")).to_string(),
    )
    .await
    .ok();
    let id = id_of(&created["actor"]);

    let create = create_body("guarded", Some("g")).to_string();
    let routes: Vec<(&str, String, String)> = vec![
        (
            "GET",
            format!("/actors?namespace=default&actor_ids={id}"),
            String::new(),
        ),
        (
            "GET",
            "/actors?namespace=default&name=guarded&key=g".into(),
            String::new(),
        ),
        (
            "GET",
            "/actors?namespace=default&name=guarded".into(),
            String::new(),
        ),
        ("POST", "/actors?namespace=default".into(), create.clone()),
        ("PUT", "/actors?namespace=default".into(), create),
        (
            "POST",
            format!("/actors/{id}/sleep?namespace=default"),
            "{}".into(),
        ),
        (
            "POST",
            format!("/actors/{id}/reschedule?namespace=default"),
            "{}".into(),
        ),
        (
            "GET",
            format!("/actors/{id}/kv/keys/cGxhaW4=?namespace=default"),
            String::new(),
        ),
        (
            "GET",
            "/actors/names?namespace=default".into(),
            String::new(),
        ),
        ("GET", "/envoys?namespace=default".into(), String::new()),
        ("GET", "/runners?namespace=default".into(), String::new()),
        (
            "GET",
            "/runners/names?namespace=default".into(),
            String::new(),
        ),
        (
            "DELETE",
            format!("/actors/{id}?namespace=default"),
            String::new(),
        ),
    ];
    for (method, path, body) in &routes {
        let missing = send(addr, method, path, &[JSON], body).await;
        assert_eq!(
            missing.error(403, "api", "forbidden"),
            json!({"group": "api", "code": "forbidden", "message": "Access denied: Token not provided", "metadata": {"reason": "Token not provided"}}),
            "{method} {path}"
        );
        let wrong = send(
            addr,
            method,
            path,
            &[JSON, ("authorization", "Bearer nope")],
            body,
        )
        .await;
        assert_eq!(
            wrong.error(403, "api", "forbidden")["metadata"]["reason"],
            "Invalid token",
            "{method} {path}"
        );
        let header = send(
            addr,
            method,
            path,
            &[JSON, ("x-rivet-token", "s3cret")],
            body,
        )
        .await;
        header.error(403, "api", "forbidden");
    }
    // The refused calls changed nothing: the actor is not destroyed and only one exists.
    let still = send(
        addr,
        "GET",
        &format!("/actors?namespace=default&actor_ids={id}"),
        &[bearer],
        "",
    )
    .await
    .ok();
    assert_eq!(still["actors"][0]["destroy_ts"], Value::Null);
    let named = send(
        addr,
        "GET",
        "/actors?namespace=default&name=guarded",
        &[bearer],
        "",
    )
    .await
    .ok();
    assert_eq!(named["actors"].as_array().unwrap().len(), 1);
    for (method, path, body) in &routes {
        let ok = send(addr, method, path, &[JSON, bearer], body).await;
        assert_ne!(ok.status, 403, "{method} {path}: {}", ok.body);
    }
    // The peer port never checks.
    let peer = get(
        engine.api_peer_addr(),
        &format!("/actors?namespace=default&actor_ids={id}"),
    )
    .await
    .ok();
    assert_eq!(peer["actors"].as_array().unwrap().len(), 1);
    engine.shutdown().await.unwrap();
}

/// Polls `GET /actors?actor_ids=<id>` until `done` holds for the actor (deadline 10 s).
async fn wait_actor(
    addr: SocketAddr,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let actors = by_ids(addr, &[id]).await;
        if let Some(actor) = actors.first() {
            if done(actor) {
                return actor.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "actor {id} never {what}: {actors:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `GET path` until `done` holds for the JSON body (deadline 10 s).
async fn wait_get(addr: SocketAddr, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = get(addr, path).await.ok();
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never matched: {body}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn actors_run_sleep_reschedule_and_die_on_a_real_host() {
    use rivet_test_host::protocol::{KvPutRequest, KvRequestData};
    use rivet_test_host::{HostOptions, TestHost};

    let (engine, _home) = memory_engine(&[]).await;
    let addr = engine.guard_addr();
    configure_pool(addr, "default", "default").await;
    let mut opts = HostOptions::new(format!("http://{addr}"), "default");
    opts.actor_names = vec!["counter".into(), "chat".into()];
    let host = TestHost::connect(opts).await.unwrap();

    // The host shows in /envoys and its actor names in /actors/names once its metadata landed.
    let envoys = wait_get(addr, "/envoys?namespace=default&name=default", |b| {
        b["envoys"][0]["metadata"].is_object()
    })
    .await;
    let envoy = &envoys["envoys"][0];
    assert_eq!(envoy["envoy_key"], host.envoy_key());
    assert_eq!(
        envoy["metadata"],
        json!({"rivetkit": {"version": "test-host"}})
    );
    assert_eq!(envoy["slots"], 0);
    assert_eq!(envoy["pool_name"], "default");
    let names = wait_get(addr, "/actors/names?namespace=default", |b| {
        b["names"].as_object().is_some_and(|n| n.len() == 2)
    })
    .await;
    assert_eq!(
        names,
        json!({"names": {"chat": {"metadata": {}}, "counter": {"metadata": {}}}, "pagination": {"cursor": "counter"}})
    );

    // Get-or-create: the host starts the actor and it becomes connectable.
    let put = with_json(
        addr,
        "PUT",
        "/actors?namespace=default",
        create_body("counter", Some("e2e")),
    )
    .await
    .ok();
    assert_eq!(put["created"], json!(true));
    let id = id_of(&put["actor"]);
    assert_eq!(
        put["actor"]["connectable_ts"],
        Value::Null,
        "not running yet"
    );
    let running = wait_actor(addr, &id, "ran", |a| a["connectable_ts"].is_i64()).await;
    assert!(running["start_ts"].is_i64());
    assert_eq!(running["sleep_ts"], Value::Null);
    assert_eq!(running["reschedule_ts"], Value::Null);
    assert!(running.get("error").is_none(), "{running}");
    let envoys = get(addr, "/envoys?namespace=default").await.ok();
    assert_eq!(envoys["envoys"][0]["slots"], 1);

    // The actor writes KV through its host; the REST route reads the same store.
    let put = KvRequestData::Put(KvPutRequest {
        keys: vec![b"count".to_vec()],
        values: vec![b"42".to_vec()],
    });
    host.kv(&id, put).await.unwrap();
    let read = get(
        addr,
        &format!("/actors/{id}/kv/keys/Y291bnQ%3D?namespace=default"),
    )
    .await
    .ok();
    assert_eq!(read["value"], "NDI=");
    assert!(read["update_ts"].as_i64().unwrap() >= running["create_ts"].as_i64().unwrap());

    // Reschedule: stopped with GoingAway and started again in a new generation.
    let first_generation = host
        .wait_running(&id, Duration::from_secs(5))
        .await
        .unwrap();
    let answer = with_json(
        addr,
        "POST",
        &format!("/actors/{id}/reschedule?namespace=default"),
        json!({}),
    )
    .await
    .ok();
    assert_eq!(answer, json!({}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !host
        .actors()
        .iter()
        .any(|(a, g)| *a == id && *g > first_generation)
    {
        assert!(
            Instant::now() < deadline,
            "never restarted: {:?}",
            host.actors()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let restarted = wait_actor(addr, &id, "ran again", |a| a["connectable_ts"].is_i64()).await;
    assert_eq!(
        restarted["start_ts"], running["start_ts"],
        "start_ts is the first start"
    );

    // Sleep: sleep_ts at once, then the host stops it and it is no longer connectable.
    with_json(
        addr,
        "POST",
        &format!("/actors/{id}/sleep?namespace=default"),
        json!({}),
    )
    .await
    .ok();
    let asleep = wait_actor(addr, &id, "slept", |a| {
        a["sleep_ts"].is_i64() && a["connectable_ts"].is_null()
    })
    .await;
    assert_eq!(asleep["destroy_ts"], Value::Null);
    assert_eq!(asleep["start_ts"], running["start_ts"]);
    // PUT finds the sleeping actor instead of creating another.
    let again = with_json(
        addr,
        "PUT",
        "/actors?namespace=default",
        create_body("counter", Some("e2e")),
    )
    .await
    .ok();
    assert_eq!(again["created"], json!(false));
    assert_eq!(id_of(&again["actor"]), id);

    // A sleeping actor is destroyed without being started; its KV goes with it.
    send(
        addr,
        "DELETE",
        &format!("/actors/{id}?namespace=default"),
        &[],
        "",
    )
    .await
    .ok();
    let destroyed = by_ids(addr, &[&id]).await[0].clone();
    assert!(destroyed["destroy_ts"].is_i64(), "{destroyed}");
    get(
        addr,
        &format!("/actors/{id}/kv/keys/Y291bnQ%3D?namespace=default"),
    )
    .await
    .error(400, "actor", "kv_key_not_found");

    // A running actor is destroyed once its host reports the stop.
    let other = create(addr, "counter", Some("e2e")).await;
    let other_id = id_of(&other);
    assert_ne!(other_id, id, "the key was freed");
    wait_actor(addr, &other_id, "ran", |a| a["connectable_ts"].is_i64()).await;
    send(
        addr,
        "DELETE",
        &format!("/actors/{other_id}?namespace=default"),
        &[],
        "",
    )
    .await
    .ok();
    let gone = wait_actor(addr, &other_id, "was destroyed", |a| {
        a["destroy_ts"].is_i64()
    })
    .await;
    assert_eq!(gone["connectable_ts"], Value::Null);
    assert_eq!(
        get(addr, "/actors?namespace=default&name=counter&key=e2e")
            .await
            .ok()["actors"],
        json!([])
    );
    host.close().await;
    // A host that left is not listed.
    wait_get(addr, "/envoys?namespace=default", |b| {
        b["envoys"] == json!([])
    })
    .await;
    engine.shutdown().await.unwrap();
}
