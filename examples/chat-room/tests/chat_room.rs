//! The `example-chat-room` binary with `rivetkit-client`: members connected with their names,
//! broadcasts to everyone, joins and leaves, `members()`, refusals without a name, the kept
//! history across a restart, and the page's web server.

mod common;

use std::time::{Duration, Instant};

use common::{serve, web_dir, within, WAIT};
use rivetkit_client::{ClientError, Connection, EventStream};
use serde_json::{json, Value};

/// The next occurrence of a one-argument event.
async fn next(events: &mut EventStream) -> Value {
    let what = format!("event {}", events.event());
    let (value,): (Value,) = within(&what, events.recv_as())
        .await
        .unwrap_or_else(|| panic!("{what}: stream closed"))
        .unwrap();
    value
}

async fn members(conn: &Connection) -> Vec<String> {
    within("members", conn.action("members", ())).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_chat_join_and_leave() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &web_dir()).await;

    let bob = server.room_as("general", "bob").connect();
    let mut bob_joined = bob.events("joined");
    let mut bob_left = bob.events("left");
    let mut bob_messages = bob.events("message");
    within("bob's connection", bob.wait_connected())
        .await
        .unwrap();
    // Answered after bob's subscriptions (same socket, handled in order): from here on bob
    // hears every event.
    assert_eq!(members(&bob).await, ["bob"]);

    let alice = server.room_as("general", "alice").connect();
    let mut alice_messages = alice.events("message");
    within("alice's connection", alice.wait_connected())
        .await
        .unwrap();
    let joined = next(&mut bob_joined).await;
    assert_eq!(joined["name"], "alice");
    assert!(joined["at"].as_i64().is_some_and(|at| at > 0), "{joined}");
    assert_eq!(members(&alice).await, ["alice", "bob"]);

    // A message reaches everyone, the sender included, with the sender's name from its
    // connection state.
    let sent: Value = alice
        .action("sendMessage", ("  hello bob ",))
        .await
        .unwrap();
    assert_eq!(sent["from"], "alice");
    assert_eq!(sent["text"], "hello bob", "trimmed");
    assert_eq!(next(&mut bob_messages).await, sent);
    assert_eq!(next(&mut alice_messages).await, sent);
    let reply: Value = bob.action("sendMessage", ("hi alice",)).await.unwrap();
    assert_eq!(reply["from"], "bob");
    assert_eq!(next(&mut alice_messages).await, reply);
    assert_eq!(next(&mut bob_messages).await, reply);

    let err = alice
        .action::<_, Value>("sendMessage", ("   ",))
        .await
        .unwrap_err();
    assert!(err.is("user", "empty_message"), "{err}");

    // An HTTP call (its short-lived connection) is neither a member nor a join or a leave.
    let carol = server.room_as("general", "carol");
    let history: Vec<Value> = carol.action("history", ()).await.unwrap();
    assert_eq!(history, [sent.clone(), reply.clone()]);
    let listed: Vec<String> = carol.action("members", ()).await.unwrap();
    assert_eq!(listed, ["alice", "bob"]);

    // alice leaves: bob's next `left` is hers (carol's call produced none), and the next
    // `joined` is dave's.
    alice.close().await;
    assert_eq!(next(&mut bob_left).await["name"], "alice");
    assert_eq!(members(&bob).await, ["bob"]);
    let dave = server.room_as("general", "dave").connect();
    within("dave's connection", dave.wait_connected())
        .await
        .unwrap();
    assert_eq!(next(&mut bob_joined).await["name"], "dave");
    assert_eq!(members(&dave).await, ["bob", "dave"]);

    // Rooms are separate actors.
    let elsewhere = server.room_as("random", "erin");
    let history: Vec<Value> = elsewhere.action("history", ()).await.unwrap();
    assert!(history.is_empty());
    bob.close().await;
    dave.close().await;
}

/// Puts the actor to sleep through the engine's API and waits until it is asleep.
async fn put_to_sleep(server: &common::Server, actor_id: &str) {
    let response = rivet_test_support::send(
        server.addr,
        "POST",
        &format!("/actors/{actor_id}/sleep?namespace=default"),
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let deadline = Instant::now() + WAIT;
    loop {
        let view = rivet_test_support::get(
            server.addr,
            &format!("/actors?namespace=default&actor_ids={actor_id}"),
        )
        .await;
        if !view.json()["actors"][0]["sleep_ts"].is_null() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the room did not sleep: {}",
            view.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connections hibernate with the room: while it sleeps (as it does after 30 s without
/// traffic) the members stay connected, and the next message wakes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_stay_connected_while_the_room_sleeps() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &web_dir()).await;
    let alice = server.room_as("nap", "alice").connect();
    let bob = server.room_as("nap", "bob").connect();
    let mut bob_messages = bob.events("message");
    within("alice's connection", alice.wait_connected())
        .await
        .unwrap();
    within("bob's connection", bob.wait_connected())
        .await
        .unwrap();
    assert_eq!(members(&bob).await, ["alice", "bob"]);
    let before: Value = alice.action("sendMessage", ("before",)).await.unwrap();
    assert_eq!(next(&mut bob_messages).await, before);

    put_to_sleep(&server, &alice.actor_id().unwrap()).await;

    // alice's message wakes the room; bob, still connected, hears it.
    let after: Value = within("sendMessage", alice.action("sendMessage", ("after",)))
        .await
        .unwrap();
    assert_eq!(after["from"], "alice");
    assert_eq!(next(&mut bob_messages).await, after);
    // The message after the waking one is answered too.
    assert_eq!(members(&alice).await, ["alice", "bob"]);
    let history: Vec<Value> = bob.action("history", ()).await.unwrap();
    assert_eq!(history, [before, after]);
    alice.close().await;
    bob.close().await;
}

fn assert_refused(err: &ClientError, code: &str) {
    let remote = err
        .remote()
        .unwrap_or_else(|| panic!("expected the actor's error, got {err}"));
    assert_eq!(
        (remote.group.as_str(), remote.code.as_str()),
        ("user", code),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_without_a_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &web_dir()).await;
    let room = server.client.get_or_create("chatRoom", ["general"]);

    // No parameters at all, no name, an empty or blank name.
    let nameless = [
        room.clone(),
        room.with_params(&json!({})).unwrap(),
        room.with_params(&json!({ "name": "" })).unwrap(),
        room.with_params(&json!({ "name": "   " })).unwrap(),
    ];
    for handle in &nameless {
        let conn = handle.connect();
        let err = within("the refusal", conn.wait_connected())
            .await
            .unwrap_err();
        assert_refused(&err, "name_required");
        let err = handle.action::<_, Value>("history", ()).await.unwrap_err();
        assert_refused(&err, "name_required");
    }
    let long = room
        .with_params(&json!({ "name": "x".repeat(33) }))
        .unwrap();
    let err = within("the refusal", long.connect().wait_connected())
        .await
        .unwrap_err();
    assert_refused(&err, "name_too_long");

    // None of them became a member.
    let alice = server.room_as("general", "alice").connect();
    within("alice's connection", alice.wait_connected())
        .await
        .unwrap();
    assert_eq!(members(&alice).await, ["alice"]);
    alice.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_keeps_its_last_fifty_messages_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &web_dir()).await;
    let carol = server.room_as("busy", "carol");
    for i in 0..55 {
        let sent: Value = carol
            .action("sendMessage", (format!("message {i}"),))
            .await
            .unwrap();
        assert_eq!(sent["text"], format!("message {i}"));
    }
    let history: Vec<Value> = carol.action("history", ()).await.unwrap();
    let texts: Vec<String> = history
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (5..55).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, expected);

    server.process.terminate();
    assert!(server.process.wait_exit(WAIT).await.success());
    let server = serve(dir.path(), &web_dir()).await;
    let carol = server.room_as("busy", "carol");
    let after: Vec<Value> = carol.action("history", ()).await.unwrap();
    assert_eq!(after, history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_and_a_missing_client_bundle_says_how_to_build_it() {
    // A copy of the page without the npm build, as on a fresh checkout.
    let web = tempfile::tempdir().unwrap();
    for file in ["index.html", "app.js"] {
        std::fs::copy(web_dir().join(file), web.path().join(file)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), web.path()).await;
    let build = "npm ci --ignore-scripts && npm run build";
    let line = server.process.wait_for_line(build, WAIT).await;
    assert!(
        line.contains(&format!("cd {}", web.path().display())),
        "{line}"
    );

    let index = rivet_test_support::get(server.web, "/").await;
    assert_eq!(index.status, 200);
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(index
        .body
        .contains(r#"<script type="module" src="/app.js">"#));
    let app = rivet_test_support::get(server.web, "/app.js").await;
    assert_eq!(app.status, 200);
    assert!(app
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(app.body.contains(r#"import("/rivetkit-client.js")"#));
    let config = rivet_test_support::get(server.web, "/config.json").await;
    assert_eq!(config.json(), json!({ "endpoint": server.endpoint }));
    let bundle = rivet_test_support::get(server.web, "/rivetkit-client.js").await;
    assert_eq!(bundle.status, 503);
    assert!(bundle.body.contains(build), "{}", bundle.body);
    let missing = rivet_test_support::get(server.web, "/other.js").await;
    assert_eq!(missing.status, 404);
}

#[test]
fn help_lists_the_flags() {
    let output = std::process::Command::new(common::BIN)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--port",
        "--data-dir",
        "--memory",
        "--web-port",
        "--web-dir",
        "8080",
        "npm ci --ignore-scripts && npm run build",
    ] {
        assert!(help.contains(needle), "no {needle:?} in:\n{help}");
    }
}
