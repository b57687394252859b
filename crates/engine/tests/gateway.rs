//! The gateway end to end with the in-repo host answering tunnelled requests: routing forms,
//! wake on request, errors, and a host that dies mid-request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rivet_engine::Engine;
use rivet_envoy_protocol::{self as proto, Headers, ToRivet};
use rivet_test_host::{Behaviour, HostOptions, TestHost};
use rivet_test_support::{engine_config, send, Response};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

async fn engine() -> (Engine, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&engine_config(home.path(), &[("RIVET__memory", "{}")]))
        .await
        .unwrap();
    let response = send(
        engine.guard_addr(),
        "PUT",
        "/runner-configs/default?namespace=default",
        &[("content-type", "application/json")],
        &json!({"datacenters": {"default": {"normal": {}}}}).to_string(),
    )
    .await;
    assert_eq!(response.status, 200);
    (engine, home)
}

/// Answers every tunnelled request with 200, echoing method, path, a header and the body.
fn serve_http(host: Arc<TestHost>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(message) = host.next_tunnel_message(Duration::from_secs(3600)).await {
            let proto::ToEnvoyTunnelMessageKind::RequestStart(start) = message.message_kind else {
                continue;
            };
            let mut headers = Headers::new();
            headers.insert("content-type".into(), "text/plain".into());
            headers.insert("x-echo-path".into(), start.path.clone());
            headers.insert("x-echo-method".into(), start.method.clone());
            headers.insert(
                "x-echo-ray".into(),
                start
                    .headers
                    .get("x-rivet-ray-id")
                    .cloned()
                    .unwrap_or_default(),
            );
            let mut body = format!("{}:", start.actor_id).into_bytes();
            body.extend(start.body.unwrap_or_default());
            let answer = ToRivet::TunnelMessage(proto::ToRivetTunnelMessage {
                message_id: proto::MessageId {
                    message_index: 0,
                    ..message.message_id
                },
                message_kind: proto::ToRivetTunnelMessageKind::ResponseStart(
                    proto::ToRivetResponseStart {
                        status: 200,
                        headers,
                        body: Some(body),
                        stream: false,
                    },
                ),
            });
            if host.send_raw(answer).await.is_err() {
                return;
            }
        }
    })
}

async fn create(addr: SocketAddr, key: &str) -> String {
    let response = send(
        addr,
        "POST",
        "/actors?namespace=default",
        &[("content-type", "application/json")],
        &json!({"name": "counter", "key": key, "runner_name_selector": "default", "crash_policy": "sleep"}).to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["actor"]["actor_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn assert_error(response: &Response, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(
        format!(
            "{}.{}",
            response.json()["group"].as_str().unwrap(),
            response.json()["code"].as_str().unwrap()
        ),
        code
    );
    assert_eq!(response.header("x-rivet-error"), Some(code));
}

#[tokio::test]
async fn requests_reach_the_actor_in_every_routing_form() {
    let (engine, _home) = engine().await;
    let addr = engine.guard_addr();
    let host = Arc::new(
        TestHost::connect(HostOptions::new(format!("http://{addr}"), "default"))
            .await
            .unwrap(),
    );
    let _server = serve_http(host.clone());
    let id = create(addr, "k").await;

    // Path form: the rest of the path and the raw query reach the actor.
    let response = send(
        addr,
        "POST",
        &format!("/gateway/{id}/foo/bar?x=1&y=2"),
        &[("origin", "http://app")],
        "ping",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, format!("{id}:ping"));
    assert_eq!(response.header("x-echo-path"), Some("/foo/bar?x=1&y=2"));
    assert_eq!(response.header("x-echo-method"), Some("POST"));
    let ray = response.header("x-rivet-ray-id").unwrap().to_string();
    assert_eq!(response.header("x-echo-ray"), Some(ray.as_str()));
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("http://app")
    );

    // Query form, get and getOrCreate (which creates once).
    let response = send(
        addr,
        "GET",
        "/gateway/counter/q?a=1&rvt-namespace=default&rvt-method=get&rvt-key=k&b=2",
        &[],
        "",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("x-echo-path"), Some("/q?a=1&b=2"));
    assert!(response.body.starts_with(&id));
    let url = "/gateway/counter?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=new,one";
    let first = send(addr, "GET", url, &[], "").await;
    let second = send(addr, "GET", url, &[], "").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body, second.body);
    assert!(!first.body.starts_with(&id));

    // Header form.
    let response = send(
        addr,
        "GET",
        "/request/x?z=9",
        &[("x-rivet-target", "actor"), ("x-rivet-actor", &id)],
        "",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("x-echo-path"), Some("/request/x?z=9"));

    // Errors.
    let unknown = rivet_orchestrator::id::Id::new(1).to_string();
    assert_error(
        &send(addr, "GET", &format!("/gateway/{unknown}/"), &[], "").await,
        404,
        "actor.not_found",
    );
    assert_error(
        &send(
            addr,
            "GET",
            "/gateway/counter?rvt-namespace=default&rvt-method=nope",
            &[],
            "",
        )
        .await,
        400,
        "guard.query_invalid_params",
    );
    let preflight = send(
        addr,
        "OPTIONS",
        &format!("/gateway/{id}/x"),
        &[
            ("origin", "http://app"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 204);
    // REST is untouched.
    assert_eq!(send(addr, "GET", "/health", &[], "").await.status, 200);
}

#[tokio::test]
async fn a_request_wakes_a_sleeping_actor() {
    let (engine, _home) = engine().await;
    let addr = engine.guard_addr();
    let host = Arc::new(
        TestHost::connect(HostOptions::new(format!("http://{addr}"), "default"))
            .await
            .unwrap(),
    );
    let _server = serve_http(host.clone());
    let id = create(addr, "sleepy").await;
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    host.sleep_intent(&id, 1).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while host.actors().iter().any(|(a, _)| *a == id) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let response = send(addr, "GET", &format!("/gateway/{id}/"), &[], "").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(host.wait_running(&id, WAIT).await, Some(2));
}

#[tokio::test]
async fn a_host_dying_mid_request_fails_the_request_at_once_without_replaying_it() {
    let (engine, _home) = engine().await;
    let addr = engine.guard_addr();
    // This host never answers tunnelled requests.
    let silent = TestHost::connect(HostOptions::new(format!("http://{addr}"), "default"))
        .await
        .unwrap();
    let id = create(addr, "doomed").await;
    assert_eq!(silent.wait_running(&id, WAIT).await, Some(1));
    let request = tokio::spawn(async move {
        let started = Instant::now();
        (
            send(addr, "POST", &format!("/gateway/{id}/action"), &[], "x").await,
            started,
        )
    });
    // The request reaches the host, then the host dies.
    let message = silent
        .next_tunnel_message(WAIT)
        .await
        .expect("request not tunnelled");
    assert!(matches!(
        message.message_kind,
        proto::ToEnvoyTunnelMessageKind::RequestStart(_)
    ));
    silent.kill();
    let (response, started) = request.await.unwrap();
    assert_error(&response, 502, "guard.retry_attempts_exceeded");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let _ = Behaviour::default();
}

#[tokio::test]
async fn a_get_or_create_after_destroy_makes_a_new_actor_despite_the_resolution_cache() {
    let (engine, _home) = engine().await;
    let addr = engine.guard_addr();
    let host = Arc::new(
        TestHost::connect(HostOptions::new(format!("http://{addr}"), "default"))
            .await
            .unwrap(),
    );
    let _server = serve_http(host.clone());
    let url = "/gateway/counter?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=cached";
    let first = send(addr, "GET", url, &[], "").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let id = first.body.split(':').next().unwrap().to_string();
    let again = send(addr, "GET", url, &[], "").await;
    assert!(again.body.starts_with(&id));
    let deleted = send(
        addr,
        "DELETE",
        &format!("/actors/{id}?namespace=default"),
        &[],
        "",
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let deadline = Instant::now() + WAIT;
    loop {
        let response = send(addr, "GET", url, &[], "").await;
        if response.status == 200 && !response.body.starts_with(&id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} {}",
            response.status,
            response.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And get (no create) of the old one is not found once destroyed.
    let get = send(addr, "GET", &format!("/gateway/{id}/"), &[], "").await;
    assert_error(&get, 404, "actor.not_found");
}

#[tokio::test]
async fn websocket_upgrades_always_answer_the_rivet_subprotocol_and_report_errors_as_close_frames()
{
    let (engine, _home) = engine().await;
    let addr = engine.guard_addr();
    let unknown = rivet_orchestrator::id::Id::new(1).to_string();
    // A raw upgrade that offers no subprotocol (the test client would add `Connection: close`).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "GET /gateway/{unknown}/socket HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let head = text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("sec-websocket-protocol: rivet"), "{head}");
    // The close frame carries code 1011 and `actor.not_found#<ray>`.
    assert!(text.contains("actor.not_found#"), "{text:?}");
}

/// The next tunnel message for the host, skipping what `keep` rejects.
async fn next_tunnel(
    host: &TestHost,
    mut keep: impl FnMut(&proto::ToEnvoyTunnelMessage) -> bool,
) -> proto::ToEnvoyTunnelMessage {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = host
            .next_tunnel_message(left)
            .await
            .expect("a tunnel message in time");
        if keep(&message) {
            return message;
        }
    }
}

#[tokio::test]
async fn a_hibernatable_socket_wakes_its_actor_when_the_host_stopped_it_without_handing_it_over() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let (engine, _home) = engine().await;
    let addr = engine.guard_addr();
    let host = TestHost::connect(HostOptions::new(format!("http://{addr}"), "default"))
        .await
        .unwrap();
    let id = create(addr, "hibernator").await;
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/gateway/{id}/connect")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "rivet".parse().unwrap());
    let (mut client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let open = next_tunnel(&host, |m| {
        matches!(
            m.message_kind,
            proto::ToEnvoyTunnelMessageKind::WebSocketOpen(_)
        )
    })
    .await;
    host.send_raw(ToRivet::TunnelMessage(proto::ToRivetTunnelMessage {
        message_id: open.message_id.clone(),
        message_kind: proto::ToRivetTunnelMessageKind::WebSocketOpen(proto::ToRivetWebSocketOpen {
            can_hibernate: true,
        }),
    }))
    .await
    .unwrap();
    // Wait until the gateway has the socket open (its first message reaches the host), and
    // acknowledge that message (else the gateway would rightly wake the actor for it).
    client.send(Message::Text("first".into())).await.unwrap();
    let first = next_tunnel(&host, |m| {
        matches!(
            m.message_kind,
            proto::ToEnvoyTunnelMessageKind::WebSocketMessage(_)
        )
    })
    .await;
    host.send_raw(ToRivet::TunnelMessage(proto::ToRivetTunnelMessage {
        message_id: proto::MessageId {
            message_index: 1,
            ..first.message_id.clone()
        },
        message_kind: proto::ToRivetTunnelMessageKind::WebSocketMessageAck(
            proto::ToRivetWebSocketMessageAck {
                index: first.message_id.message_index,
            },
        ),
    }))
    .await
    .unwrap();

    // The host stops the actor for sleep and says nothing about the socket (as npm hosts do).
    host.sleep_intent(&id, 1).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while host.actors().iter().any(|(a, _)| *a == id) {
        assert!(
            Instant::now() < deadline,
            "actor not stopped: {:?}",
            host.actors()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The client's next message wakes the actor, whose start restores the socket.
    client.send(Message::Text("second".into())).await.unwrap();
    assert_eq!(host.wait_running(&id, WAIT).await, Some(2));
    let restored = next_tunnel(&host, |m| match &m.message_kind {
        proto::ToEnvoyTunnelMessageKind::WebSocketMessage(msg) => msg.data == b"second",
        _ => false,
    })
    .await;
    assert_eq!(restored.message_id.request_id, open.message_id.request_id);
}
