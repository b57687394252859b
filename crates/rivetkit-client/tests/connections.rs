//! Realtime connections, raw HTTP and WebSocket traffic, stale resolutions and HTTP keep-alive,
//! against our engine with the npm rivetkit@2.3.19 host (actor `clientConn` and friends in
//! tests/compat/host/actors.ts).

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::{Fixture, Proxy, NAMESPACE};
use rivet_test_support::send;
use rivetkit_client::{ClientError, ConnectionStatus, Encoding, Value, WebSocketMessage};
use serde_json::json;

/// Upper bound for anything a test waits for (a cold actor start on a loaded machine).
const WAIT: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_actions_and_events_work_in_every_encoding() {
    let fx = Fixture::start().await;
    for encoding in [Encoding::Bare, Encoding::Cbor, Encoding::Json] {
        let handle = fx
            .client(encoding)
            .get_or_create("clientConn", [format!("basic-{}", encoding.as_str())]);
        let conn = handle.connect();
        let mut changes = conn.events("changed");
        within("Init", conn.wait_connected())
            .await
            .unwrap_or_else(|e| panic!("{encoding:?}: {e}\n{}", fx.host_log()));
        assert_eq!(conn.status(), ConnectionStatus::Connected);
        assert_eq!(conn.actor_id(), Some(handle.resolve().await.unwrap()));
        let connection_id = conn.connection_id().expect("a connection id after Init");
        assert_eq!(connection_id.len(), 36, "a UUID: {connection_id}");

        let after: i64 = within("increment", conn.action("increment", (5,)))
            .await
            .unwrap();
        assert_eq!(after, 5, "{encoding:?}");
        let (seen,): (i64,) = within("changed", changes.recv_as())
            .await
            .expect("stream open")
            .unwrap();
        assert_eq!(seen, 5, "{encoding:?}");

        // Values cross the socket's encoding both ways (a bigint beyond 2^53 included).
        let value = ("héllo".to_string(), (1u64 << 60) + 7, vec![1i64, 2]);
        let back: (String, u64, Vec<i64>) = conn.action("delay", (0, &value)).await.unwrap();
        assert_eq!(back, value, "{encoding:?}");

        // A failing action fails that call only, with the actor's error.
        let err = conn.action::<_, i64>("fail", ("nope",)).await.unwrap_err();
        let remote = err
            .remote()
            .unwrap_or_else(|| panic!("{encoding:?}: {err}"));
        assert_eq!(
            (
                remote.group.as_str(),
                remote.code.as_str(),
                remote.message.as_str()
            ),
            ("user", "bad_thing", "nope"),
            "{encoding:?}"
        );
        let a = remote.metadata.as_ref().and_then(|m| m.get("a"));
        assert_eq!(a.and_then(Value::as_integer), Some(1), "{encoding:?}");
        assert_eq!(
            remote.actor.as_ref().map(|a| a.actor_id.clone()),
            conn.actor_id()
        );
        let count: i64 = conn.action("getCount", ()).await.unwrap();
        assert_eq!(count, 5, "the connection survives an action error");

        // once: the next occurrence only, registered before the action that emits it.
        let note = conn.once("note");
        let _: usize = conn.action("emit", ("note", "first", 1)).await.unwrap();
        let args = within("once", note).await.unwrap();
        assert_eq!(
            args,
            vec![Value::text("first"), Value::Int(1)],
            "{encoding:?}"
        );

        // on: a callback for every occurrence until unsubscribed.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let subscription = conn.on("note", move |args| {
            let _ = tx.send(args);
        });
        let _: usize = conn.action("emit", ("note", "second")).await.unwrap();
        let args = within("on", rx.recv()).await.unwrap();
        assert_eq!(args, vec![Value::text("second")]);
        subscription.unsubscribe();
        assert!(
            rx.recv().await.is_none(),
            "the callback is dropped with its subscription"
        );

        within("close", conn.close()).await;
        assert_eq!(conn.status(), ConnectionStatus::Closed);
        assert_eq!(conn.connection_id(), None);
        assert!(
            changes.recv().await.is_none(),
            "event streams end with the connection"
        );
        let err = conn.action::<_, i64>("getCount", ()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::ConnectionClosed {
                    code: Some(1000),
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_actions_on_one_connection_get_their_own_answers() {
    let fx = Fixture::start().await;
    let conn = fx
        .client(Encoding::Bare)
        .get_or_create("clientConn", ["concurrent"])
        .connect();
    within("Init", conn.wait_connected()).await.unwrap();

    // A slow call sent first and a fast one sent second: the answers come out of order and
    // each reaches its own caller.
    let slow = conn.action::<_, String>("delay", (1500, "slow"));
    let fast = conn.action::<_, String>("delay", (0, "fast"));
    tokio::pin!(slow, fast);
    let first = tokio::select! {
        // Polled in this order, so the slow request is sent (id 0) before the fast one.
        biased;
        s = &mut slow => ("slow", s.unwrap()),
        f = &mut fast => ("fast", f.unwrap()),
    };
    assert_eq!(first, ("fast", "fast".to_string()));
    assert_eq!(within("slow", slow).await.unwrap(), "slow");

    // Many at once, finishing in reverse order.
    let calls = (0..20i64).map(|i| conn.action::<_, i64>("delay", ((20 - i) * 15, i)));
    let answers = within("20 actions", futures::future::join_all(calls)).await;
    let answers: Vec<i64> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers, (0..20).collect::<Vec<_>>());
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_sends_an_event_only_while_it_has_listeners() {
    let fx = Fixture::start().await;
    // Through a proxy that records every byte the engine sends, to see the frames themselves.
    let proxy = Proxy::start(fx.addr()).await;
    let conn = fx
        .client_at(&proxy.endpoint(), Encoding::Bare)
        .get_or_create("clientConn", ["subscriptions"])
        .connect();
    within("Init", conn.wait_connected()).await.unwrap();
    // Emits `note(marker)` and then makes one more round trip on the socket: the answer to
    // the second call comes after any event frame the first produced.
    let emit = |marker: &'static str| {
        let conn = conn.clone();
        async move {
            let _: usize = conn.action("emit", ("note", marker)).await.unwrap();
            let _: i64 = conn.action("getCount", ()).await.unwrap();
        }
    };

    within("emit", emit("marker-unsubscribed")).await;
    assert_eq!(proxy.downstream_count(b"marker-unsubscribed"), 0);

    let mut a = conn.events("note");
    let mut b = conn.events("note");
    within("emit", emit("marker-subscribed")).await;
    for stream in [&mut a, &mut b] {
        let args = within("note", stream.recv()).await.unwrap();
        assert_eq!(args, vec![Value::text("marker-subscribed")]);
    }
    assert_eq!(
        proxy.downstream_count(b"marker-subscribed"),
        1,
        "one event frame for two listeners"
    );

    // Still one listener: still subscribed.
    drop(a);
    within("emit", emit("marker-one-left")).await;
    let args = within("note", b.recv()).await.unwrap();
    assert_eq!(args, vec![Value::text("marker-one-left")]);

    // The last listener gone: the actor stops sending the event.
    drop(b);
    within("emit", emit("marker-unsubscribed-again")).await;
    assert_eq!(proxy.downstream_count(b"marker-unsubscribed-again"), 0);
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_reconnects_resubscribes_and_sends_queued_actions() {
    let fx = Fixture::start().await;
    let handle = fx
        .client(Encoding::Cbor)
        .get_or_create("clientConn", ["reconnect"]);
    // Only connections with these params are refused while `setRefuse(true)`, so the HTTP
    // calls below (without params) still get through.
    let conn = handle
        .with_params(&json!({"gated": true}))
        .unwrap()
        .connect();
    let mut changes = conn.events("changed");
    let mut notes = conn.events("note");
    within("Init", conn.wait_connected()).await.unwrap();
    let first = conn.connection_id().unwrap();
    let mut status = conn.status_watch();

    // An action in flight when the socket drops fails (it may or may not have run).
    let in_flight = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.action::<_, String>("delay", (60_000, "never")).await })
    };
    let started: (String, String) = within("started note", notes.recv_as())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(started, ("started".to_string(), "never".to_string()));

    // Keep the client out, then drop its connection from the actor's side.
    let _: bool = handle.action("setRefuse", (true,)).await.unwrap();
    let kicked: bool = handle.action("kick", (&first, "test kick")).await.unwrap();
    assert!(kicked);
    let err = within("in-flight action", in_flight)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::ConnectionClosed {
                code: Some(1000),
                ..
            }
        ),
        "{err}"
    );
    within(
        "disconnected",
        status.wait_for(|s| *s != ConnectionStatus::Connected),
    )
    .await
    .unwrap();

    // An action made while disconnected waits in the queue.
    let mut queued = Box::pin(conn.action::<_, i64>("increment", (1,)));
    assert!(futures::poll!(&mut queued).is_pending());
    assert_ne!(conn.status(), ConnectionStatus::Connected);
    let count: i64 = handle.action("getCount", ()).await.unwrap();
    assert_eq!(count, 0, "the queued action has not run while refused");

    // Let it back in: the queued action is sent after the new Init.
    let _: bool = handle.action("setRefuse", (false,)).await.unwrap();
    assert_eq!(within("queued action", queued).await.unwrap(), 1);
    within("Init again", conn.wait_connected()).await.unwrap();
    let second = conn.connection_id().unwrap();
    assert_ne!(first, second, "a new connection");

    // Resubscribed before the queue was flushed: the queued increment's event arrived, then
    // one emitted by another client.
    let _: i64 = handle.action("increment", (10,)).await.unwrap();
    for expected in [1, 11] {
        let (seen,): (i64,) = within("changed", changes.recv_as()).await.unwrap().unwrap();
        assert_eq!(seen, expected);
    }
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_impossible_connections_fail_with_group_and_code() {
    let fx = Fixture::start().await;
    let client = fx.client(Encoding::Bare);

    // onBeforeConnect refuses: Error (with message and metadata), then 1011 user.rejected.
    let refused = client
        .get_or_create("clientConn", ["refused"])
        .with_params(&json!({"reject": true}))
        .unwrap();
    let conn = refused.connect();
    let mut queued = Box::pin(conn.action::<_, i64>("getCount", ()));
    assert!(futures::poll!(&mut queued).is_pending());
    let err = within("refusal", conn.wait_connected()).await.unwrap_err();
    let remote = err.remote().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        (
            remote.group.as_str(),
            remote.code.as_str(),
            remote.message.as_str()
        ),
        ("user", "rejected", "connection refused")
    );
    let by_params = remote.metadata.as_ref().and_then(|m| m.get("byParams"));
    assert_eq!(by_params, Some(&Value::Bool(true)));
    assert_eq!(conn.status(), ConnectionStatus::Closed);
    let err = within("queued action", queued).await.unwrap_err();
    assert!(err.is("user", "rejected"), "{err}");

    // The parameters reach the actor (percent-encoded JSON in the subprotocol).
    let accepted = client
        .get_or_create("clientConn", ["refused"])
        .with_params(&json!({"reject": false, "user": "zoë & co"}))
        .unwrap()
        .connect();
    within("Init", accepted.wait_connected()).await.unwrap();
    let params: serde_json::Value = accepted.action("params", ()).await.unwrap();
    assert_eq!(params, json!({"reject": false, "user": "zoë & co"}));
    accepted.close().await;

    // `get` of a key nobody created: fails at once with actor.not_found.
    let conn = client.get("clientConn", ["never-created"]).connect();
    let err = within("lookup", conn.wait_connected()).await.unwrap_err();
    assert!(err.is("actor", "not_found"), "{err}");

    // An id whose actor was destroyed: the gateway closes with `1011 actor.not_found#<ray>`.
    let doomed = client.create("clientConn", ["doomed"]).await.unwrap();
    let id = doomed.resolve().await.unwrap();
    let _: i64 = doomed.action("getCount", ()).await.unwrap();
    let delete = send(
        fx.addr(),
        "DELETE",
        &format!("/actors/{id}?namespace={NAMESPACE}"),
        &[],
        "",
    )
    .await;
    assert_eq!(delete.status, 200, "{}", delete.body);
    let deadline = Instant::now() + WAIT;
    loop {
        let conn = client.get_for_id("clientConn", &id).connect();
        match within("connect", conn.wait_connected()).await {
            Err(e) if e.is("actor", "not_found") => {
                // From the close reason: the gateway's ray id comes with it.
                let ray = e
                    .remote()
                    .and_then(|r| r.metadata.as_ref()?.get("rayId").cloned());
                assert!(ray.is_some(), "{e:?}");
                break;
            }
            // Still being destroyed.
            Err(e) if e.group() == Some("actor") => {}
            Ok(()) => conn.close().await,
            Err(e) => panic!("{e}"),
        }
        assert!(
            Instant::now() < deadline,
            "the destroyed actor still accepts connections"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_ids_are_resolved_again_by_actions_and_connections() {
    let fx = Fixture::start().await;
    let client = fx.client(Encoding::Bare);
    let destroy = |id: String| {
        let addr = fx.addr();
        async move {
            let path = format!("/actors/{id}?namespace={NAMESPACE}");
            let delete = send(addr, "DELETE", &path, &[], "").await;
            assert_eq!(delete.status, 200, "{}", delete.body);
        }
    };

    // HTTP: the handle's cached id is destroyed; actions find the new actor, never failing.
    let counter = client.get_or_create("counter", ["stale"]);
    let n: i64 = counter.action("increment", (3,)).await.unwrap();
    assert_eq!(n, 3);
    let old = counter.resolve().await.unwrap();
    destroy(old.clone()).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let n: i64 = counter.action("increment", (1,)).await.unwrap();
        if counter.resolve().await.unwrap() != old {
            assert_eq!(n, 1, "a fresh actor");
            break;
        }
        assert!(Instant::now() < deadline, "still on the destroyed actor");
    }

    // A connection: reconnects, resolving the key again when the old id is gone.
    let handle = client.get_or_create("clientConn", ["stale"]);
    let conn = handle.connect();
    within("Init", conn.wait_connected()).await.unwrap();
    let _: i64 = conn.action("increment", (7,)).await.unwrap();
    let old = conn.actor_id().unwrap();
    destroy(old.clone()).await;
    let mut status = conn.status_watch();
    within(
        "a connection to the new actor",
        status.wait_for(|s| {
            *s == ConnectionStatus::Connected && conn.actor_id().is_some_and(|id| id != old)
        }),
    )
    .await
    .unwrap();
    let n: i64 = conn.action("increment", (1,)).await.unwrap();
    assert_eq!(n, 1, "a fresh actor");
    assert_eq!(conn.actor_id(), Some(handle.resolve().await.unwrap()));
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_fetch_and_websocket_reach_the_actor_handlers() {
    let fx = Fixture::start().await;
    let echo = fx
        .client(Encoding::Bare)
        .get_or_create("rawEcho", ["raw"])
        .with_params(&json!({"p": 1}))
        .unwrap();
    let id = echo.resolve().await.unwrap();

    let response = echo
        .fetch(
            "POST",
            "/hello?x=1",
            &[("x-test", "yes"), ("content-type", "text/plain")],
            "payload",
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-echo-actor"), Some(id.as_str()));
    let seen: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/hello");
    assert_eq!(seen["search"], "?x=1");
    assert_eq!(seen["body"], "payload");
    assert_eq!(seen["headers"]["x-test"], "yes");
    assert_eq!(seen["headers"]["x-rivet-conn-params"], r#"{"p":1}"#);

    // The handler's own statuses come back as they are.
    let teapot = echo.fetch("GET", "status/418", &[], "").await.unwrap();
    assert_eq!((teapot.status, teapot.text().as_str()), (418, "teapot"));
    assert_eq!(teapot.header("x-echo-status"), Some("418"));

    let mut socket = echo.websocket("/chat?room=1").await.unwrap();
    let hello = match within("hello", socket.recv()).await.unwrap() {
        Some(WebSocketMessage::Text(text)) => text,
        other => panic!("expected the greeting, got {other:?}"),
    };
    let hello: serde_json::Value = serde_json::from_str(&hello).unwrap();
    assert_eq!(hello["hello"], id.as_str());
    let url = hello["url"].as_str().unwrap();
    assert!(url.ends_with("/websocket/chat?room=1"), "{url}");

    socket.send_text("hi").await.unwrap();
    assert_eq!(
        within("text echo", socket.recv()).await.unwrap(),
        Some(WebSocketMessage::Text("echo:hi".to_string()))
    );
    socket.send_binary(vec![1u8, 2, 3]).await.unwrap();
    assert_eq!(
        within("binary echo", socket.recv()).await.unwrap(),
        Some(WebSocketMessage::Binary(vec![1, 2, 3]))
    );
    within("close", socket.close(1000, "bye")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_actions_reuse_one_kept_alive_connection() {
    let fx = Fixture::start().await;
    let proxy = Proxy::start(fx.addr()).await;
    let client = fx.client_at(&proxy.endpoint(), Encoding::Bare);
    let counter = client.get_or_create("counter", ["keep-alive"]);
    for expected in 1..=30 {
        let n: i64 = counter.action("increment", (1,)).await.unwrap();
        assert_eq!(n, expected);
    }
    // The PUT /actors and thirty POSTs, all on one TCP connection.
    assert_eq!(proxy.accepted(), 1);
    assert_eq!(client.http_connections_opened(), 1);

    // The idle connection is closed by the other side: the next action goes out on a new
    // one, and runs once.
    proxy.cut_all().await;
    let n: i64 = counter.action("increment", (1,)).await.unwrap();
    assert_eq!(n, 31);
    assert_eq!(proxy.accepted(), 2);
    assert_eq!(client.http_connections_opened(), 2);

    // Concurrent requests open more connections, which are then reused.
    let calls = (0..4).map(|_| counter.action::<_, i64>("getCount", ()));
    for n in futures::future::join_all(calls).await {
        assert_eq!(n.unwrap(), 31);
    }
    let opened = client.http_connections_opened();
    assert!((2..=5).contains(&opened), "{opened}");
    for _ in 0..10 {
        let _: i64 = counter.action("getCount", ()).await.unwrap();
    }
    assert_eq!(client.http_connections_opened(), opened);
}
