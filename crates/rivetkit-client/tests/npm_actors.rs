//! `rivetkit-client` against real actors: our engine (in-process, file_system store) with the
//! npm rivetkit@2.3.19 TypeScript host from tests/compat attached to it.

mod common;

use std::time::{Duration, Instant};

use common::{Fixture, NAMESPACE};
use rivet_test_support::send;
use rivetkit_client::{Client, ClientError, Encoding};
use serde::Serialize;

#[derive(Serialize)]
struct CounterInput {
    start: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_actions_work_in_every_encoding() {
    let fx = Fixture::start().await;

    // Created with input {start: 10} on the first resolve; the actor's state starts there.
    let bare = fx
        .client(Encoding::Bare)
        .get_or_create_with_input("counter", ["k"], &CounterInput { start: 10 })
        .unwrap();
    let id = bare.resolve().await.unwrap();
    assert!(!id.is_empty());

    let mut expected = 10;
    for encoding in [Encoding::Bare, Encoding::Cbor, Encoding::Json] {
        let client = fx.client(encoding);
        // The same key reaches the same actor whatever the encoding (input ignored: it exists).
        let handle = client
            .get_or_create_with_input("counter", ["k"], &CounterInput { start: 1000 })
            .unwrap();
        assert_eq!(handle.resolve().await.unwrap(), id, "{encoding:?}");
        expected += 5;
        let after: i64 = handle
            .action("increment", (5,))
            .await
            .unwrap_or_else(|e| panic!("{encoding:?} increment: {e}\n{}", fx.host_log()));
        assert_eq!(after, expected, "{encoding:?} increment");
        let count: i64 = handle.action("getCount", ()).await.unwrap();
        assert_eq!(count, expected, "{encoding:?} getCount");

        // get by key and get_for_id reach the same actor.
        let by_key: i64 = client
            .get("counter", ["k"])
            .action("getCount", ())
            .await
            .unwrap();
        assert_eq!(by_key, expected, "{encoding:?} get");
        let by_id: i64 = client
            .get_for_id("counter", id.clone())
            .action("getCount", ())
            .await
            .unwrap();
        assert_eq!(by_id, expected, "{encoding:?} get_for_id");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_group_and_code() {
    let fx = Fixture::start().await;

    for encoding in [Encoding::Bare, Encoding::Cbor, Encoding::Json] {
        let client = fx.client(encoding);

        // An actor-produced error, in the request's encoding.
        let counter = client.get_or_create("counter", ["errors"]);
        let err = counter
            .action::<_, i64>("noSuchAction", (1,))
            .await
            .unwrap_err();
        let remote = err
            .remote()
            .unwrap_or_else(|| panic!("{encoding:?}: {err}"));
        assert_eq!(
            (remote.group.as_str(), remote.code.as_str()),
            ("actor", "action_not_found"),
            "{encoding:?}: {err}"
        );
        assert_eq!(remote.status, Some(404));
        let actor = remote
            .actor
            .as_ref()
            .expect("actor specifier on actor errors");
        assert_eq!(actor.actor_id, counter.resolve().await.unwrap());

        // A missing key: `get` never creates.
        let err = client
            .get("counter", ["never-created"])
            .action::<_, i64>("getCount", ())
            .await
            .unwrap_err();
        assert!(err.is("actor", "not_found"), "{encoding:?}: {err}");
    }

    let client = fx.client(Encoding::Bare);

    // An engine (JSON) error: create with a key in use.
    let created = client.create("counter", ["fresh"]).await.unwrap();
    let count: i64 = created.action("getCount", ()).await.unwrap();
    assert_eq!(count, 0);
    let err = client.create("counter", ["fresh"]).await.unwrap_err();
    assert!(err.is("actor", "duplicate_key"), "{err}");
    let metadata = err.remote().unwrap().metadata.as_ref().unwrap();
    assert_eq!(
        metadata.get("existing_actor_id").and_then(|v| v.as_str()),
        Some(created.resolve().await.unwrap().as_str())
    );

    // A gateway (JSON) error: the id of a destroyed actor. Destroy completes once the host
    // reports the stop, so poll until the gateway answers not_found.
    let doomed = client.create("counter", ["doomed"]).await.unwrap();
    let doomed_id = doomed.resolve().await.unwrap();
    let _: i64 = doomed.action("getCount", ()).await.unwrap();
    let delete = send(
        fx.addr(),
        "DELETE",
        &format!("/actors/{doomed_id}?namespace={NAMESPACE}"),
        &[],
        "",
    )
    .await;
    assert_eq!(delete.status, 200, "{}", delete.body);
    let by_id = client.get_for_id("counter", doomed_id);
    let start = Instant::now();
    loop {
        match by_id.action::<_, i64>("getCount", ()).await {
            Err(e) if e.is("actor", "not_found") && e.remote().unwrap().status == Some(404) => {
                break;
            }
            // While the destroy completes the gateway may answer
            // `400 actor.destroyed_while_waiting_for_ready`, which a getForId handle reports
            // as not_found (client-protocol.md §9.3).
            Err(e) if e.is("actor", "not_found") => {
                assert_eq!(e.remote().unwrap().status, Some(400), "{e}");
            }
            other => assert!(
                start.elapsed() < Duration::from_secs(30),
                "destroyed actor still answers: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Transport errors are not remote errors.
    let dead = Client::builder("http://127.0.0.1:1").build().unwrap();
    let err = dead
        .get_for_id("counter", "x")
        .action::<_, i64>("getCount", ())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct Sample {
    text: String,
    small: i64,
    /// Beyond 2^53: travels as a JavaScript bigint.
    big: u64,
    ratio: f64,
    flag: bool,
    missing: Option<String>,
    /// A genuine `["$x", 1]` array must survive the tagged-array escaping.
    dollar: (String, i64),
    nested: Vec<Vec<i64>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip_through_a_js_actor_in_every_encoding() {
    let fx = Fixture::start().await;
    let sample = Sample {
        text: "héllo / wörld".to_string(),
        small: -42,
        big: (1 << 60) + 7,
        ratio: 1.5,
        flag: true,
        missing: None,
        dollar: ("$x".to_string(), 1),
        nested: vec![vec![1, 2], vec![], vec![3]],
    };
    for encoding in [Encoding::Bare, Encoding::Cbor, Encoding::Json] {
        let echo = fx.client(encoding).get_or_create("rawEcho", ["values"]);
        let back: Sample = echo
            .action("echo", (sample.clone(),))
            .await
            .unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
        assert_eq!(back, sample, "{encoding:?}");
        // A single non-tuple argument is passed as the only argument.
        let text: String = echo.action("echo", "plain").await.unwrap();
        assert_eq!(text, "plain", "{encoding:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_parameters_are_accepted_by_the_actor() {
    let fx = Fixture::start().await;
    // The actor rejects unparsable x-rivet-conn-params with 400; non-ASCII must be escaped to
    // fit in a header and still parse.
    let counter = fx
        .client(Encoding::Cbor)
        .get_or_create("counter", ["params"])
        .with_params(&serde_json::json!({"user": "zoë", "n": 1}))
        .unwrap();
    let after: i64 = counter.action("increment", (2,)).await.unwrap();
    assert_eq!(after, 2);

    // The premise: the same request with unparsable parameters is refused.
    let id = counter.resolve().await.unwrap();
    let refused = send(
        fx.addr(),
        "POST",
        &format!("/gateway/{id}/action/getCount"),
        &[
            ("x-rivet-encoding", "json"),
            ("content-type", "application/json"),
            ("x-rivet-conn-params", "{not json"),
        ],
        r#"{"args":[]}"#,
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
}
