//! A message sent while the actor is stopping for sleep (its `on_sleep` still running) is
//! answered: the gateway wakes the actor again for what the stopping one never handled.

mod common;

use std::time::Duration;

use rivetkit::{actor, Ctx, Registry};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
struct Napper {
    count: i64,
}

#[actor(rename_all = "camelCase")]
impl Napper {
    async fn increment(&mut self, by: i64) -> i64 {
        self.count += by;
        self.count
    }

    async fn nap(&self, ctx: &mut Ctx<Self>) {
        ctx.sleep();
    }
}

/// A `Napper` whose `on_sleep` takes a while: the engine reports the actor asleep from the
/// moment it asks it to stop, so a client can send while `on_sleep` still runs.
#[derive(Default, Serialize, Deserialize)]
struct SlowNapper {
    count: i64,
}

#[actor(rename_all = "camelCase")]
impl SlowNapper {
    async fn on_sleep(&mut self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    async fn increment(&mut self, by: i64) -> i64 {
        self.count += by;
        self.count
    }

    async fn nap(&self, ctx: &mut Ctx<Self>) {
        ctx.sleep();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_after_a_wake_by_the_socket_is_answered() {
    let running = common::start_embedded(Registry::new().register::<Napper>("napper"), None).await;
    let client = rivetkit_client::Client::new(running.endpoint()).unwrap();
    let handle = client.get_or_create("napper", ["n"]);
    let id = handle.resolve().await.unwrap();
    let conn = handle.connect();
    conn.wait_connected().await.unwrap();
    assert_eq!(conn.action::<_, i64>("increment", (1,)).await.unwrap(), 1);
    conn.action::<_, ()>("nap", ()).await.unwrap();
    common::wait_asleep(&running, &id).await;

    // The first message wakes the actor. Each later one must reach it under an index of its
    // own: a reused index is dropped by the host as a re-delivery and never answered.
    for expected in 2..6 {
        let answer = tokio::time::timeout(
            Duration::from_secs(15),
            conn.action::<_, i64>("increment", (1,)),
        )
        .await
        .unwrap_or_else(|_| panic!("increment #{expected} after the wake was not answered"));
        assert_eq!(answer.unwrap(), expected);
    }
    conn.close().await;
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_the_actor_stops_for_sleep_is_answered() {
    let running =
        common::start_embedded(Registry::new().register::<SlowNapper>("slow"), None).await;
    let client = rivetkit_client::Client::new(running.endpoint()).unwrap();
    let handle = client.get_or_create("slow", ["stopping"]);
    let id = handle.resolve().await.unwrap();
    let conn = handle.connect();
    conn.wait_connected().await.unwrap();
    conn.action::<_, ()>("nap", ()).await.unwrap();
    // Reported asleep while `on_sleep` still runs: the message reaches an actor that no longer
    // handles messages, and only the gateway can deliver it again (to the next start).
    common::wait_asleep(&running, &id).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(15),
        conn.action::<_, i64>("increment", (1,)),
    )
    .await
    .expect("the message sent while the actor stopped was not answered");
    assert_eq!(answer.unwrap(), 1);
    conn.close().await;
    running.shutdown().await.unwrap();
}
