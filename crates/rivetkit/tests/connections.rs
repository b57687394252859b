//! Connections with `rivetkit-client`: parameters, connection state, connect hooks, events to
//! subscribers and to one connection, disconnects from the actor, and hibernation (a
//! connection outlives the actor's sleep and its host's crash).

mod common;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rivetkit::{actor, ActorOptions, ConnId, Ctx, Registry, RegistryConfig, UserError};
use rivetkit_client::{Client, ClientError, Connection, ConnectionStatus};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Member {
    name: String,
    sent: u32,
}

/// Connect hooks that ran, per actor id.
fn hooks() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static HOOKS: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    HOOKS.get_or_init(Default::default)
}

fn record(actor: &str, what: String) {
    hooks()
        .lock()
        .unwrap()
        .entry(actor.to_string())
        .or_default()
        .push(what);
}

fn hooks_of(actor: &str) -> Vec<String> {
    hooks()
        .lock()
        .unwrap()
        .get(actor)
        .cloned()
        .unwrap_or_default()
}

#[derive(Default, Serialize, Deserialize)]
struct Room {
    said: Vec<String>,
}

#[actor(rename_all = "camelCase")]
impl Room {
    fn options() -> ActorOptions {
        ActorOptions {
            sleep_timeout: Duration::from_millis(400),
            ..ActorOptions::default()
        }
    }

    async fn on_before_connect(&mut self, params: &Option<Params>) -> Result<(), UserError> {
        match params {
            Some(p) if !p.name.is_empty() => Ok(()),
            _ => Err(UserError::with_code("no_name", "a name is required")),
        }
    }

    async fn create_conn_state(&mut self, params: &Option<Params>) -> Member {
        Member {
            name: params.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
            sent: 0,
        }
    }

    async fn on_connect(&mut self, ctx: &mut Ctx<Self>, conn: ConnId) {
        let name = ctx.conn_by_id(&conn).map(|c| c.state().name.clone());
        record(
            ctx.actor_id(),
            format!("connect:{}", name.unwrap_or_default()),
        );
    }

    async fn on_disconnect(&mut self, ctx: &mut Ctx<Self>, conn: ConnId) {
        let name = ctx.conn_by_id(&conn).map(|c| c.state().name.clone());
        record(
            ctx.actor_id(),
            format!("disconnect:{}", name.unwrap_or_default()),
        );
    }

    async fn say(&mut self, ctx: &mut Ctx<Self>, text: String) -> u32 {
        let Some(conn) = ctx.conn_mut() else { return 0 };
        conn.state_mut().sent += 1;
        let (from, sent) = (conn.state().name.clone(), conn.state().sent);
        self.said.push(format!("{from}: {text}"));
        ctx.broadcast("said", &(from, text));
        sent
    }

    async fn whisper(&self, ctx: &mut Ctx<Self>, to: String, text: String) -> bool {
        match ctx.conns().find(|c| c.state().name == to) {
            Some(conn) => {
                conn.send("whisper", &text);
                true
            }
            None => false,
        }
    }

    async fn members(&self, ctx: &mut Ctx<Self>) -> Vec<(String, bool)> {
        let mut all: Vec<(String, bool)> = ctx
            .conns()
            .map(|c| (c.state().name.clone(), c.is_realtime()))
            .collect();
        all.sort();
        all
    }

    async fn kick(&self, ctx: &mut Ctx<Self>, name: String) {
        if let Some(conn) = ctx.conns().find(|c| c.state().name == name) {
            conn.disconnect("kicked");
        }
    }

    async fn nap(&self, ctx: &mut Ctx<Self>) {
        ctx.sleep();
    }

    async fn generation(&self, ctx: &mut Ctx<Self>) -> u32 {
        ctx.generation()
    }
}

fn registry() -> Registry {
    Registry::new().register::<Room>("room")
}

async fn join(client: &Client, room: &str, name: &str) -> Connection {
    let conn = client
        .get_or_create("room", [room])
        .with_params(&serde_json::json!({ "name": name }))
        .unwrap()
        .connect();
    tokio::time::timeout(Duration::from_secs(20), conn.wait_connected())
        .await
        .expect("connected in time")
        .unwrap();
    conn
}

/// The next event's single argument.
async fn next<T: serde::de::DeserializeOwned>(stream: &mut rivetkit_client::EventStream) -> T {
    let (arg,): (T,) = tokio::time::timeout(Duration::from_secs(20), stream.recv_as())
        .await
        .expect("event in time")
        .expect("stream open")
        .expect("event decodes");
    arg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_state_events_and_disconnects() {
    let running = common::start_embedded(registry(), None).await;
    let client = Client::new(running.endpoint()).unwrap();
    let alice = join(&client, "r1", "alice").await;
    let bob = join(&client, "r1", "bob").await;
    let id = alice.actor_id().unwrap();

    let mut bob_said = bob.events("said");
    let mut bob_whispers = bob.events("whisper");
    let mut alice_whispers = alice.events("whisper");
    // A subscription reaches the actor with the next frame on the socket; an action after it
    // is ordered behind it.
    assert_eq!(
        bob.action::<_, Vec<(String, bool)>>("members", ())
            .await
            .unwrap(),
        [("alice".to_string(), true), ("bob".to_string(), true)]
    );
    assert_eq!(alice.action::<_, u32>("say", ("hi",)).await.unwrap(), 1);
    assert_eq!(alice.action::<_, u32>("say", ("again",)).await.unwrap(), 2);
    let first: (String, String) = next(&mut bob_said).await;
    assert_eq!(first, ("alice".into(), "hi".into()));
    let second: (String, String) = next(&mut bob_said).await;
    assert_eq!(second, ("alice".into(), "again".into()));

    assert!(alice
        .action::<_, bool>("whisper", ("bob", "psst"))
        .await
        .unwrap());
    let w: String = next(&mut bob_whispers).await;
    assert_eq!(w, "psst");

    // An HTTP action has its own transient connection, with the handle's params.
    let carol = client
        .get_or_create("room", ["r1"])
        .with_params(&serde_json::json!({ "name": "carol" }))
        .unwrap();
    let members: Vec<(String, bool)> = carol.action("members", ()).await.unwrap();
    assert_eq!(
        members,
        [
            ("alice".to_string(), true),
            ("bob".to_string(), true),
            ("carol".to_string(), false)
        ]
    );

    // The actor disconnects bob: his socket closes with the reason (and his client reconnects
    // as a new connection, so the join hooks run again).
    let mut status = bob.status_watch();
    bob.action::<_, ()>("kick", ("bob",)).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| *s != ConnectionStatus::Connected),
    )
    .await
    .expect("bob disconnected")
    .unwrap();
    common::eventually(Duration::from_secs(10), "bob's leave recorded", || async {
        hooks_of(&id)
            .contains(&"disconnect:bob".to_string())
            .then_some(())
    })
    .await;
    // Only absence can be checked here: give a stray whisper time to arrive.
    let stray = tokio::time::timeout(Duration::from_millis(200), alice_whispers.recv()).await;
    assert!(stray.is_err(), "the whisper went to bob only");
    let h = hooks_of(&id);
    assert!(h.starts_with(&[
        "connect:alice".to_string(),
        "connect:bob".to_string(),
        "connect:carol".to_string(),
        "disconnect:carol".to_string(),
    ]));

    // A missing name is refused by on_before_connect.
    let nameless = client.get_or_create("room", ["r1"]).connect();
    match nameless.wait_connected().await {
        Err(ClientError::Remote(e)) => {
            assert_eq!((e.group.as_str(), e.code.as_str()), ("user", "no_name"));
            assert_eq!(e.message, "a name is required");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    alice.close().await;
    bob.close().await;
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_survive_the_actors_sleep() {
    let running = common::start_embedded(registry(), None).await;
    let client = Client::new(running.endpoint()).unwrap();
    let alice = join(&client, "sleepy", "alice").await;
    let id = alice.actor_id().unwrap();
    let mut said = alice.events("said");
    assert_eq!(alice.action::<_, u32>("say", ("one",)).await.unwrap(), 1);
    let _: (String, String) = next(&mut said).await;
    let connection_id = alice.connection_id().unwrap();

    // An open connection does not keep the actor awake: it sleeps on its idle timer.
    common::wait_asleep(&running, &id).await;
    assert_eq!(alice.status(), ConnectionStatus::Connected);

    // The next action on the same connection wakes it; the connection's state and
    // subscription came back with it, and the connect hooks did not run again.
    assert_eq!(alice.action::<_, u32>("say", ("two",)).await.unwrap(), 2);
    let event: (String, String) = next(&mut said).await;
    assert_eq!(event, ("alice".into(), "two".into()));
    assert_eq!(alice.action::<_, u32>("generation", ()).await.unwrap(), 2);
    assert_eq!(alice.connection_id().unwrap(), connection_id);
    let h = hooks_of(&id);
    assert_eq!(
        h.iter().filter(|x| *x == "connect:alice").count(),
        1,
        "{h:?}"
    );
    assert!(!h.contains(&"disconnect:alice".to_string()), "{h:?}");

    // Asked to sleep with a connection open: same story.
    alice.action::<_, ()>("nap", ()).await.unwrap();
    common::wait_asleep(&running, &id).await;
    assert_eq!(alice.action::<_, u32>("say", ("three",)).await.unwrap(), 3);

    // A client that goes away while the actor sleeps is disconnected on the next wake.
    alice.action::<_, ()>("nap", ()).await.unwrap();
    common::wait_asleep(&running, &id).await;
    alice.close().await;
    let bob = join(&client, "sleepy", "bob").await;
    common::eventually(
        Duration::from_secs(10),
        "alice's leave after the wake",
        || async {
            hooks_of(&id)
                .contains(&"disconnect:alice".to_string())
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        bob.action::<_, Vec<(String, bool)>>("members", ())
            .await
            .unwrap(),
        [("bob".to_string(), true)]
    );
    bob.close().await;
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_survive_a_host_crash() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (engine, endpoint) = common::start_engine(dir.path()).await;
    let config = || RegistryConfig {
        endpoint: endpoint.clone(),
        ..common::config()
    };
    let first = registry().config(config()).start().await.unwrap();
    let client = Client::new(&endpoint).unwrap();
    let alice = join(&client, "crashy", "alice").await;
    let mut said = alice.events("said");
    assert_eq!(alice.action::<_, u32>("say", ("before",)).await.unwrap(), 1);
    let _: (String, String) = next(&mut said).await;

    // The host vanishes; a new one connects. The client's socket stays open (the gateway
    // holds it), and its next action starts the actor on the new host, which restores the
    // connection from storage.
    first.kill();
    let second = registry().config(config()).start().await.unwrap();
    assert_eq!(alice.action::<_, u32>("say", ("after",)).await.unwrap(), 2);
    let event: (String, String) = next(&mut said).await;
    assert_eq!(event, ("alice".into(), "after".into()));
    assert_eq!(second.actor_count(), 1);
    alice.close().await;
    second.shutdown().await.unwrap();
    engine.shutdown().await.unwrap();
}
