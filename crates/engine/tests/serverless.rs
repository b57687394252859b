//! Serverless pools: the engine calls the application's `/metadata` and `/start`, the
//! application's host connects and adopts the started actor. The application here is a small
//! HTTP server inside the test that records what the engine sends and behaves like npm
//! rivetkit's serverless handler (an event stream kept open with pings).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use rivet_engine::Engine;
use rivet_envoy_protocol::{self as proto, Command, KvGetRequest, KvRequestData, KvResponseData};
use rivet_test_host::{Behaviour, HostOptions, TestHost};
use rivet_test_support::{engine_config, get as http_get, send};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Seen {
    starts: Vec<(HeaderMap, Bytes)>,
}

async fn application() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    let app = Router::new()
        .route(
            "/api/metadata",
            get(|| async {
                Json(json!({
                    "runtime": "rivetkit", "version": "2.3.19", "envoyProtocolVersion": 8,
                    "actorNames": {"counter": {"metadata": {"icon": "c"}}},
                    "envoy": {"kind": {"serverless": {}}, "version": 1},
                }))
            }),
        )
        .route(
            "/api/start",
            post(move |headers: HeaderMap, body: Bytes| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().starts.push((headers, body));
                    // Pings every 100 ms, forever: the engine decides when the request ends.
                    let stream = futures::stream::unfold((), |()| async {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Some((
                            Ok::<_, std::io::Error>(Bytes::from_static(b"event: ping\n\n")),
                            (),
                        ))
                    });
                    Response::builder()
                        .status(StatusCode::OK)
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(stream))
                        .unwrap()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

async fn put_json(addr: SocketAddr, path: &str, body: Value) -> Value {
    let response = send(
        addr,
        "PUT",
        path,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

async fn post_json(addr: SocketAddr, path: &str, body: Value) -> Value {
    let response = send(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

async fn poll(what: &str, mut check: impl AsyncFnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_serverless_pool_starts_actors_through_the_application() {
    let (app, seen) = application().await;
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&engine_config(home.path(), &[("RIVET__memory", "{}")]))
        .await
        .unwrap();
    let addr = engine.guard_addr();
    let url = format!("http://{app}/api");
    put_json(
        addr,
        "/runner-configs/sl?namespace=default",
        json!({"datacenters": {"default": {"serverless": {"url": url, "headers": {"x-custom": "abc"}, "request_lifespan": 300, "drain_grace_period": 10}}}}),
    )
    .await;

    // The metadata is fetched when the config is written.
    let config = poll("protocol_version", async || {
        let configs = http_get(addr, "/runner-configs?namespace=default")
            .await
            .json();
        let dc = configs["runner_configs"]["sl"]["datacenters"]["default"].clone();
        (dc["protocol_version"] == 8).then_some(dc)
    })
    .await;
    assert!(config.get("runner_pool_error").is_none(), "{config}");
    let names = http_get(addr, "/actors/names?namespace=default")
        .await
        .json();
    assert_eq!(names["names"]["counter"]["metadata"], json!({"icon": "c"}));
    let health = post_json(
        addr,
        "/runner-configs/serverless-health-check?namespace=default",
        json!({"url": url}),
    )
    .await;
    assert_eq!(health, json!({"success": {"version": "2.3.19"}}));

    // Creating an actor calls /start with the spec's headers and body.
    let created = post_json(
        addr,
        "/actors?namespace=default",
        json!({"name": "counter", "key": "s1", "runner_name_selector": "sl", "crash_policy": "sleep", "input": "aGk="}),
    )
    .await;
    let id = created["actor"]["actor_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + WAIT;
    let (headers, body) = loop {
        if let Some(start) = seen.lock().unwrap().starts.first().cloned() {
            break start;
        }
        assert!(Instant::now() < deadline, "no /start request");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(headers["x-custom"], "abc");
    assert_eq!(headers["x-rivet-pool-name"], "sl");
    assert_eq!(headers["x-rivet-namespace-name"], "default");
    assert_eq!(headers["x-rivet-endpoint"], format!("http://{addr}/"));
    assert_eq!(headers["accept"], "text/event-stream");
    assert_eq!(headers["user-agent"], "RivetEngine/2.3.19");
    assert!(headers.get("x-rivet-token").is_none());
    let (version, message) = proto::decode_serverless_start(&body).unwrap();
    assert_eq!(version.number(), 8);
    let proto::ToEnvoy::Commands(commands) = message else {
        panic!("{message:?}")
    };
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].checkpoint.actor_id, id);
    assert_eq!(
        (
            commands[0].checkpoint.generation,
            commands[0].checkpoint.index
        ),
        (1, 0)
    );
    let Command::StartActor(start) = &commands[0].inner else {
        panic!()
    };
    assert_eq!(start.config.input.as_deref(), Some(&b"hi"[..]));

    // The application's host connects, reads its storage before it runs (as npm does), runs.
    let mut options = HostOptions::new(format!("http://{addr}"), "sl");
    options.behaviour = Behaviour::manual();
    let host = TestHost::connect(options).await.unwrap();
    let answer = host
        .kv(
            &id,
            KvRequestData::Get(KvGetRequest {
                keys: vec![b"x".to_vec()],
            }),
        )
        .await
        .unwrap();
    assert!(matches!(answer, KvResponseData::Get(_)), "{answer:?}");
    host.running(&id, 1).await.unwrap();
    let actor = poll("connectable", async || {
        let actors = http_get(addr, &format!("/actors?namespace=default&actor_ids={id}"))
            .await
            .json();
        let actor = actors["actors"][0].clone();
        actor["connectable_ts"].is_i64().then_some(actor)
    })
    .await;
    assert!(actor.get("error").is_none(), "{actor}");
    // From now on the host is the actor's host: a sleep reaches it over its socket.
    send(
        addr,
        "POST",
        &format!("/actors/{id}/sleep?namespace=default"),
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    let command = host.next_command(WAIT).await.expect("no stop");
    assert!(
        matches!(command.inner, Command::StopActor(_)),
        "{command:?}"
    );
}

#[tokio::test]
async fn an_unreachable_application_is_a_pool_error_on_the_config_and_the_actor() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&engine_config(home.path(), &[("RIVET__memory", "{}")]))
        .await
        .unwrap();
    let addr = engine.guard_addr();
    let url = format!("http://{dead}");
    put_json(
        addr,
        "/runner-configs/down?namespace=default",
        json!({"datacenters": {"default": {"serverless": {"url": url, "request_lifespan": 300, "drain_grace_period": 10}}}}),
    )
    .await;
    let health = post_json(
        addr,
        "/runner-configs/serverless-health-check?namespace=default",
        json!({"url": url}),
    )
    .await;
    assert_eq!(
        health["failure"]["error"]["metadata"]["kind"], "request_failed",
        "{health}"
    );
    let refresh = send(
        addr,
        "POST",
        "/runner-configs/down/refresh-metadata?namespace=default",
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(refresh.status, 400, "{}", refresh.body);
    assert_eq!(refresh.json()["code"], "failed_to_fetch_metadata");
    let created = post_json(
        addr,
        "/actors?namespace=default",
        json!({"name": "counter", "runner_name_selector": "down", "crash_policy": "sleep"}),
    )
    .await;
    let id = created["actor"]["actor_id"].as_str().unwrap().to_string();
    let actor = poll("pool error on the actor", async || {
        let actors = http_get(addr, &format!("/actors?namespace=default&actor_ids={id}"))
            .await
            .json();
        let actor = actors["actors"][0].clone();
        actor["error"]["runner_pool_error"]
            .is_object()
            .then_some(actor)
    })
    .await;
    assert_eq!(
        actor["error"]["runner_pool_error"]["kind"],
        "request_failed"
    );
    assert!(actor["reschedule_ts"].is_i64(), "{actor}");
    let configs = http_get(addr, "/runner-configs?namespace=default")
        .await
        .json();
    assert_eq!(
        configs["runner_configs"]["down"]["datacenters"]["default"]["runner_pool_error"]["kind"],
        "request_failed",
        "{configs}"
    );
}

#[tokio::test]
async fn at_the_end_of_its_lifespan_a_start_request_hands_the_actor_to_a_new_one() {
    let (app, seen) = application().await;
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&engine_config(home.path(), &[("RIVET__memory", "{}")]))
        .await
        .unwrap();
    let addr = engine.guard_addr();
    put_json(
        addr,
        "/runner-configs/sl?namespace=default",
        json!({"datacenters": {"default": {"serverless": {"url": format!("http://{app}/api"), "request_lifespan": 2, "drain_grace_period": 1}}}}),
    )
    .await;
    let created = post_json(
        addr,
        "/actors?namespace=default",
        json!({"name": "counter", "runner_name_selector": "sl", "crash_policy": "sleep"}),
    )
    .await;
    let id = created["actor"]["actor_id"].as_str().unwrap().to_string();
    let mut options = HostOptions::new(format!("http://{addr}"), "sl");
    options.behaviour = Behaviour {
        auto_running: false,
        ..Behaviour::default()
    };
    let host = TestHost::connect(options).await.unwrap();
    poll("first start", async || {
        (!seen.lock().unwrap().starts.is_empty()).then_some(Value::Null)
    })
    .await;
    host.running(&id, 1).await.unwrap();
    // After 2 s the request's actor is sent away; the host stops it; a new request starts it.
    let command = host.next_command(WAIT).await.expect("no stop");
    let Command::StopActor(stop) = command.inner else {
        panic!("{command:?}")
    };
    assert_eq!(stop.reason, proto::StopActorReason::GoingAway);
    poll("second start", async || {
        (seen.lock().unwrap().starts.len() >= 2).then_some(Value::Null)
    })
    .await;
    let body = seen.lock().unwrap().starts[1].1.clone();
    let (_, proto::ToEnvoy::Commands(commands)) = proto::decode_serverless_start(&body).unwrap()
    else {
        panic!()
    };
    assert_eq!(commands[0].checkpoint.generation, 2);
}
