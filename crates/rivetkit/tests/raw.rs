//! Raw HTTP (`on_request`) and raw WebSockets (`on_websocket`) through the gateway, and the
//! fixed routes of an actor (`/health`, `/metadata`, unknown routes).

mod common;

use futures::{SinkExt, StreamExt};
use rivet_test_support::send;
use rivetkit::http::{Request, Response};
use rivetkit::raw_ws::{WebSocket, WsMessage};
use rivetkit::{actor, Ctx, Registry};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Default, Serialize, Deserialize)]
struct Echo {
    requests: u32,
}

#[actor]
impl Echo {
    async fn on_request(&mut self, request: Request) -> Option<Response> {
        self.requests += 1;
        if request.path_only() == "/missing" {
            return None;
        }
        Some(
            Response::json(&serde_json::json!({
                "method": request.method,
                "path": request.path,
                "query": request.query(),
                "header": request.header("x-test"),
                "body": String::from_utf8_lossy(&request.body),
                "requests": self.requests,
            }))
            .status(201)
            .header("x-echo", "yes"),
        )
    }

    async fn on_websocket(&mut self, ctx: &mut Ctx<Self>, mut socket: WebSocket) {
        let greeting = format!("hello {}", socket.path());
        socket.send(WsMessage::Text(greeting));
        ctx.wait_until(async move {
            while let Some(message) = socket.recv().await {
                if message == WsMessage::Text("bye".into()) {
                    socket.close(4000, "bye");
                    return;
                }
                socket.send(message);
            }
        });
    }

    async fn requests(&self) -> u32 {
        self.requests
    }
}

/// No raw handlers.
#[derive(Default, Serialize, Deserialize)]
struct Plain {}

#[actor]
impl Plain {
    async fn ping(&self) -> &'static str {
        "pong"
    }
}

fn registry() -> Registry {
    Registry::new()
        .register::<Echo>("echo")
        .register::<Plain>("plain")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_http_requests_reach_on_request() {
    let running = common::start_embedded(registry(), None).await;
    let addr = common::addr(&running);
    let client = rivetkit_client::Client::new(running.endpoint()).unwrap();
    let echo = client.get_or_create("echo", ["e1"]);
    let id = echo.resolve().await.unwrap();

    let r = send(
        addr,
        "PUT",
        &format!("/gateway/{id}/request/hello/world?x=1&y=2"),
        &[("x-test", "header-value"), ("content-type", "text/plain")],
        "the body",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("x-echo"), Some("yes"));
    // npm puts the actor's identity on every response of an actor, raw ones included.
    assert_eq!(r.header("x-rivet-actor"), Some(id.as_str()));
    assert_eq!(r.header("x-rivet-actor-generation"), Some("1"));
    assert_eq!(r.header("x-rivet-actor-key"), Some("e1"));
    assert_eq!(
        r.json(),
        serde_json::json!({
            "method": "PUT",
            "path": "/hello/world?x=1&y=2",
            "query": "x=1&y=2",
            "header": "header-value",
            "body": "the body",
            "requests": 1,
        })
    );
    // State changed by a raw request is state like any other.
    assert_eq!(echo.action::<_, u32>("requests", ()).await.unwrap(), 1);

    let missing = send(
        addr,
        "GET",
        &format!("/gateway/{id}/request/missing"),
        &[],
        "",
    )
    .await;
    // An empty 404, as from an npm actor without a handler: the npm client reads an
    // `actor.not_found` body as "actor gone" and retries for seconds.
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.body, "");
    assert_eq!(missing.header("x-rivet-actor"), Some(id.as_str()));

    let plain = client.get_or_create("plain", ["p1"]);
    let pid = plain.resolve().await.unwrap();
    let none = send(addr, "GET", &format!("/gateway/{pid}/request/x"), &[], "").await;
    assert_eq!(none.status, 404, "no on_request: {}", none.body);
    assert_eq!(none.body, "");

    let health = send(addr, "GET", &format!("/gateway/{pid}/health"), &[], "").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let meta = send(addr, "GET", &format!("/gateway/{pid}/metadata"), &[], "").await;
    assert_eq!(meta.json()["runtime"], "rivetkit");
    let unknown = send(addr, "GET", &format!("/gateway/{pid}/nowhere"), &[], "").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.header("x-rivet-actor"), Some(pid.as_str()));
    assert_eq!(unknown.header("x-rivet-actor-key"), Some("p1"));
    assert_eq!(
        unknown.json()["message"],
        "Actor route '/nowhere' was not found."
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_websockets_reach_on_websocket() {
    let running = common::start_embedded(registry(), None).await;
    let addr = common::addr(&running);
    let client = rivetkit_client::Client::new(running.endpoint()).unwrap();
    let id = client
        .get_or_create("echo", ["ws"])
        .resolve()
        .await
        .unwrap();

    let mut request = format!("ws://{addr}/gateway/{id}/websocket/chat?room=1")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "rivet".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let next = |m: Option<Result<Message, _>>| m.expect("socket open").expect("frame");
    assert_eq!(
        next(ws.next().await),
        Message::Text("hello /websocket/chat?room=1".into())
    );
    ws.send(Message::Text("ping".into())).await.unwrap();
    assert_eq!(next(ws.next().await), Message::Text("ping".into()));
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next(ws.next().await), Message::Binary(vec![1, 2, 3].into()));
    ws.send(Message::Text("bye".into())).await.unwrap();
    match next(ws.next().await) {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4000);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    running.shutdown().await.unwrap();
}
