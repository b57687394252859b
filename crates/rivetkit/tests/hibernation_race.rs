//! A message sent on a realtime connection while its actor goes to sleep must still reach the
//! actor: the gateway keeps unacknowledged messages of hibernatable sockets and must re-deliver
//! them after a wake.
//!
//! Fails today (ignored until the gateway is fixed): a client message that reaches the gateway
//! after the actor began to stop but before the gateway processed the host's hibernating
//! `WebSocketClose` goes to the stopping actor (or to a host that no longer knows the tunnel)
//! and is never acknowledged; the gateway then marks the socket hibernating with that message
//! still unacknowledged, clears its acknowledgement deadline, and wakes the actor only when the
//! client sends another message. A client waiting for the answer waits forever. Seen as
//! flakes of `connections_survive_the_actors_sleep` (an action right after `wait_asleep`) and
//! `connections_survive_a_host_crash` (`guard.websocket_garbage_collected` after 30 s).
//! Run: `cargo test -p rivetkit --test hibernation_race -- --ignored` (fails in most runs).

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
#[ignore = "gateway bug: unacknowledged messages of a socket that goes hibernating are not re-delivered until the client sends again"]
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
