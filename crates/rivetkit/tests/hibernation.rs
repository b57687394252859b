//! Hibernatable connections across the actor's sleep, with `rivetkit-client`: the client's
//! socket stays open while the actor sleeps, and its next messages wake the actor and are
//! all handled.

mod common;

use std::time::Duration;

use rivetkit::{actor, Ctx, Registry};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
struct Tally {
    count: i64,
}

#[actor(rename_all = "camelCase")]
impl Tally {
    async fn add(&mut self, by: i64) -> i64 {
        self.count += by;
        self.count
    }

    async fn nap(&self, ctx: &mut Ctx<Self>) {
        ctx.sleep();
    }
}

/// The message that wakes the actor used to keep its index in the gateway, so the next one
/// carried the same index and the host skipped it as a re-delivery: that action never
/// answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_after_a_wake_by_the_connection_are_all_handled() {
    let running = common::start_embedded(Registry::new().register::<Tally>("tally"), None).await;
    let client = rivetkit_client::Client::builder(running.endpoint())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let handle = client.get_or_create("tally", ["t"]);
    let conn = handle.connect();
    conn.wait_connected().await.unwrap();
    assert_eq!(conn.action::<_, i64>("add", (1,)).await.unwrap(), 1);
    let id = handle.resolve().await.unwrap();

    conn.action::<_, ()>("nap", ()).await.unwrap();
    common::wait_asleep(&running, &id).await;

    // The first message wakes the actor; the ones after it go to the woken actor.
    for expected in 2..=5 {
        let got = conn.action::<_, i64>("add", (1,)).await;
        assert_eq!(got.unwrap(), expected, "action {expected} after the wake");
    }

    // Again, with the next message sent while the first is still on its way.
    conn.action::<_, ()>("nap", ()).await.unwrap();
    common::wait_asleep(&running, &id).await;
    let (a, b) = tokio::join!(
        conn.action::<_, i64>("add", (10,)),
        conn.action::<_, i64>("add", (100,))
    );
    // One socket, handled in order.
    assert_eq!((a.unwrap(), b.unwrap()), (15, 115));
    conn.close().await;
    running.shutdown().await.unwrap();
}
