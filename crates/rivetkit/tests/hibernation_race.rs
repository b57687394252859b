//! A message sent on a realtime connection while its actor goes to sleep must still reach the
//! actor: the gateway keeps unacknowledged messages of hibernatable sockets and must re-deliver
//! them after a wake.
//!
//! Such a message reaches the gateway after the actor began to stop but before the gateway
//! learned the socket is hibernating: it goes to the stopping actor (or to a host that no
//! longer knows the tunnel) and is never acknowledged. The gateway wakes the actor for it as
//! soon as the socket hibernates (it used to wait for the client's next message, which a
//! client waiting for the answer never sends). Loops over many sleeps to hit the window.

mod common;

use std::time::Duration;

use rivetkit::{actor, Ctx, Registry};
use rivetkit_client::Client;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
struct Napper {
    said: u32,
}

#[actor(rename_all = "camelCase")]
impl Napper {
    async fn say(&mut self) -> u32 {
        self.said += 1;
        self.said
    }

    async fn nap(&self, ctx: &mut Ctx<Self>) {
        ctx.sleep();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_the_actor_falls_asleep_is_answered() {
    let running = common::start_embedded(Registry::new().register::<Napper>("napper"), None).await;
    let client = Client::new(running.endpoint()).unwrap();
    let conn = client.get_or_create("napper", ["n"]).connect();
    conn.wait_connected().await.unwrap();
    let mut said = 0;
    for i in 0..1500u64 {
        conn.action::<_, ()>("nap", ()).await.unwrap();
        // Sweep the moment of the next message across the actor's stop.
        tokio::time::sleep(Duration::from_micros((i % 80) * 60)).await;
        let answer =
            tokio::time::timeout(Duration::from_secs(10), conn.action::<_, u32>("say", ()))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "iteration {i}: `say` sent {} µs after `nap` was never answered",
                        (i % 80) * 60
                    )
                });
        said += 1;
        assert_eq!(answer.unwrap(), said);
    }
    conn.close().await;
    running.shutdown().await.unwrap();
}
