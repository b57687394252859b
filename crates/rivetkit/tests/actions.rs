//! Actions, state and errors through the gateway, with `rivetkit-client`.

mod common;

use rivetkit::{actor, Ctx, Registry, UserError, Value};
use rivetkit_client::{ClientError, Encoding};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    count: i64,
}

#[actor(rename_all = "camelCase")]
impl Counter {
    async fn increment(&mut self, by: i64) -> Result<i64, UserError> {
        if by < 0 {
            return Err(UserError::with_code("negative", "count only goes up")
                .metadata(&serde_json::json!({ "by": by })));
        }
        self.count += by;
        Ok(self.count)
    }

    async fn get_count(&self) -> i64 {
        self.count
    }

    async fn whoami(&self, ctx: &mut Ctx<Self>) -> (String, String, Option<String>) {
        (
            ctx.actor_id().to_string(),
            ctx.name().to_string(),
            ctx.key().map(str::to_string),
        )
    }

    async fn fail_internally(&self) -> Result<(), std::io::Error> {
        Err(std::io::Error::other("disk on fire"))
    }

    async fn touch(&mut self) {
        self.count += 0;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_state_and_errors() {
    let running =
        common::start_embedded(Registry::new().register::<Counter>("counter"), None).await;
    for encoding in [Encoding::Bare, Encoding::Cbor, Encoding::Json] {
        let client = rivetkit_client::Client::builder(running.endpoint())
            .encoding(encoding)
            .build()
            .unwrap();
        let key = format!("k-{encoding:?}");
        let handle = client.get_or_create("counter", [key.as_str()]);
        let a: i64 = handle.action("increment", (5,)).await.unwrap();
        let b: i64 = handle.action("increment", (2,)).await.unwrap();
        assert_eq!((a, b), (5, 7), "{encoding:?}");
        let c: i64 = handle.action("getCount", ()).await.unwrap();
        assert_eq!(c, 7);
        let (id, name, k): (String, String, Option<String>) =
            handle.action("whoami", ()).await.unwrap();
        assert_eq!(id, handle.resolve().await.unwrap());
        assert_eq!(name, "counter");
        assert_eq!(k.as_deref(), Some(key.as_str()));

        match handle.action::<_, i64>("increment", (-1,)).await {
            Err(ClientError::Remote(e)) => {
                assert_eq!((e.group.as_str(), e.code.as_str()), ("user", "negative"));
                assert_eq!(e.message, "count only goes up");
                assert_eq!(
                    e.metadata,
                    Some(Value::object([("by", Value::Int(-1))])),
                    "{encoding:?}"
                );
            }
            other => panic!("expected a user error, got {other:?}"),
        }
        match handle.action::<_, ()>("failInternally", ()).await {
            Err(ClientError::Remote(e)) => {
                assert_eq!(
                    (e.group.as_str(), e.code.as_str()),
                    ("rivetkit", "internal_error")
                );
                assert!(
                    !e.message.contains("fire"),
                    "internal details leak: {}",
                    e.message
                );
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
        match handle.action::<_, ()>("nope", ()).await {
            Err(ClientError::Remote(e)) => {
                assert_eq!(
                    (e.group.as_str(), e.code.as_str()),
                    ("actor", "action_not_found")
                );
            }
            other => panic!("expected action_not_found, got {other:?}"),
        }
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_actions_answer_undefined_as_javascript_actions_do() {
    let running =
        common::start_embedded(Registry::new().register::<Counter>("counter"), None).await;
    let client = rivetkit_client::Client::new(running.endpoint()).unwrap();
    let handle = client.get_or_create("counter", ["unit"]);
    let id = handle.resolve().await.unwrap();
    // npm rivetkit answers an action that returns nothing with `undefined`, which the npm
    // client hands to the caller as `undefined` (not `null`).
    let answer = rivet_test_support::send(
        common::addr(&running),
        "POST",
        &format!("/gateway/{id}/action/touch"),
        &[
            ("content-type", "application/json"),
            ("x-rivet-encoding", "json"),
        ],
        r#"{"args":[]}"#,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, r#"{"output":["$Undefined",0]}"#);
    handle.action::<_, ()>("touch", ()).await.unwrap();
    running.shutdown().await.unwrap();
}
