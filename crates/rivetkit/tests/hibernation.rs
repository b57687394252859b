//! Realtime connections across the actor's sleep, with `rivetkit-client`: the socket stays open
//! while the actor sleeps and the next message on it wakes the actor.

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
