//! Scheduled actions: after/at/cancel/list, firing while awake, waking a sleeping actor
//! through the engine's alarm, and surviving host and engine restarts.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rivetkit::{actor, Ctx, Error, Registry, RegistryConfig, RunningRegistry};
use rivetkit_client::{ActorHandle, Client};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
struct Reminders {
    fired: Vec<String>,
}

#[actor(rename_all = "camelCase")]
impl Reminders {
    async fn remind_in(
        &mut self,
        ctx: &mut Ctx<Self>,
        ms: u64,
        text: String,
    ) -> Result<String, Error> {
        ctx.schedule()
            .after(Duration::from_millis(ms), "fire", &(text,))
    }

    async fn remind_at(
        &mut self,
        ctx: &mut Ctx<Self>,
        at_ms: i64,
        text: String,
    ) -> Result<String, Error> {
        ctx.schedule().at(at_ms, "fire", &(text,))
    }

    async fn cancel(&mut self, ctx: &mut Ctx<Self>, id: String) -> bool {
        ctx.schedule().cancel(&id)
    }

    async fn pending(&self, ctx: &mut Ctx<Self>) -> Vec<(String, String, i64)> {
        ctx.schedule()
            .list()
            .into_iter()
            .map(|e| (e.id, e.action, e.at_ms))
            .collect()
    }

    async fn fire(&mut self, text: String) {
        self.fired.push(text);
    }

    async fn fired(&self) -> Vec<String> {
        self.fired.clone()
    }

    async fn nap(&self, ctx: &mut Ctx<Self>) {
        ctx.sleep();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn registry() -> Registry {
    Registry::new().register::<Reminders>("reminders")
}

async fn fired(handle: &ActorHandle) -> Vec<String> {
    handle.action("fired", ()).await.unwrap()
}

/// Waits, without sending the actor anything, until the engine reports it running again.
async fn wait_awake(running: &RunningRegistry, actor_id: &str) {
    common::eventually(
        Duration::from_secs(40),
        "actor woken by its alarm",
        || async {
            let view = common::actor_view(running, actor_id).await;
            (view["sleep_ts"].is_null() && !view["connectable_ts"].is_null()).then_some(())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_at_cancel_and_list() {
    let running = common::start_embedded(registry(), None).await;
    let client = Client::new(running.endpoint()).unwrap();
    let r = client.get_or_create("reminders", ["r1"]);
    let keep: String = r.action("remindIn", (300, "kept")).await.unwrap();
    let dropped: String = r.action("remindIn", (200, "cancelled")).await.unwrap();
    let at: String = r.action("remindAt", (now_ms() + 400, "at")).await.unwrap();
    let pending: Vec<(String, String, i64)> = r.action("pending", ()).await.unwrap();
    assert_eq!(
        pending.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
        [dropped.clone(), keep.clone(), at.clone()],
        "listed earliest first"
    );
    assert!(pending.iter().all(|p| p.1 == "fire"));
    assert!(r
        .action::<_, bool>("cancel", (dropped.clone(),))
        .await
        .unwrap());
    assert!(!r.action::<_, bool>("cancel", (dropped,)).await.unwrap());

    let got = common::eventually(Duration::from_secs(10), "both fire", || async {
        let f = fired(&r).await;
        (f.len() == 2).then_some(f)
    })
    .await;
    assert_eq!(got, ["kept", "at"]);
    let pending: Vec<(String, String, i64)> = r.action("pending", ()).await.unwrap();
    assert!(pending.is_empty(), "fired entries are removed: {pending:?}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_wakes_a_sleeping_actor() {
    let running = common::start_embedded(registry(), None).await;
    let client = Client::new(running.endpoint()).unwrap();
    let r = client.get_or_create("reminders", ["sleeper"]);
    let _: String = r.action("remindIn", (1500, "wake up")).await.unwrap();
    let id = r.resolve().await.unwrap();
    r.action::<_, ()>("nap", ()).await.unwrap();
    common::wait_asleep(&running, &id).await;
    wait_awake(&running, &id).await;
    assert_eq!(fired(&r).await, ["wake up"]);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_survive_an_engine_restart() {
    let dir = tempfile::tempdir().unwrap();
    let running = common::start_embedded(registry(), Some(dir.path())).await;
    let client = Client::new(running.endpoint()).unwrap();
    let r = client.get_or_create("reminders", ["durable"]);
    let _: String = r.action("remindIn", (2500, "after restart")).await.unwrap();
    let id = r.resolve().await.unwrap();
    running.shutdown().await.unwrap();

    // The drained actor is started again as soon as a host is back; its alarm is still due.
    let running = common::start_embedded(registry(), Some(dir.path())).await;
    let client = Client::new(running.endpoint()).unwrap();
    let r = client.get_for_id("reminders", &id);
    let got = common::eventually(
        Duration::from_secs(20),
        "alarm after the restart",
        || async {
            let f = fired(&r).await;
            (!f.is_empty()).then_some(f)
        },
    )
    .await;
    assert_eq!(got, ["after restart"]);
    running.shutdown().await.unwrap();
}

fn host_config(addr: std::net::SocketAddr) -> RegistryConfig {
    RegistryConfig {
        endpoint: format!("http://{addr}"),
        ..common::config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_survive_host_restarts() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (engine, endpoint) = common::start_engine(dir.path()).await;
    let addr = engine.guard_addr();
    let client = Client::new(endpoint).unwrap();

    // A graceful restart: the host drains (the actor sleeps), a new host takes over.
    let host = registry().config(host_config(addr)).start().await.unwrap();
    let r = client.get_or_create("reminders", ["hosted"]);
    let _: String = r.action("remindIn", (1500, "drained")).await.unwrap();
    let id = r.resolve().await.unwrap();
    host.shutdown().await.unwrap();
    let host = registry().config(host_config(addr)).start().await.unwrap();
    let got = common::eventually(Duration::from_secs(20), "alarm after a drain", || async {
        let f = fired(&r).await;
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(got, ["drained"]);

    // A crash: the host vanishes without draining; the next request moves the actor to the
    // new host at once, and its due alarm fires there.
    let _: String = r.action("remindIn", (1000, "crashed")).await.unwrap();
    host.kill();
    let host = registry().config(host_config(addr)).start().await.unwrap();
    let got = common::eventually(
        Duration::from_secs(60),
        "alarm after a host crash",
        || async {
            let view = common::actor_view(&host, &id).await;
            if view["connectable_ts"].is_null() {
                return None;
            }
            let f = fired(&r).await;
            (f.len() == 2).then_some(f)
        },
    )
    .await;
    assert_eq!(got, ["drained", "crashed"]);
    host.shutdown().await.unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_alarm_fires_after_host_and_engine_die_together() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (engine, endpoint) = common::start_engine(dir.path()).await;
    let addr = engine.guard_addr();
    let client = Client::new(endpoint).unwrap();
    let host = registry().config(host_config(addr)).start().await.unwrap();
    let r = client.get_or_create("reminders", ["together"]);
    let _: String = r.action("remindIn", (500, "survivor")).await.unwrap();
    let id = r.resolve().await.unwrap();
    host.kill();
    engine.shutdown().await.unwrap();

    let (engine, _) = common::start_engine(dir.path()).await;
    let addr = engine.guard_addr();
    let host = registry().config(host_config(addr)).start().await.unwrap();
    // No request: only the alarm can start the actor on the new host, once the old one is
    // declared lost (the engine's start-up marks it disconnected).
    common::eventually(
        Duration::from_secs(40),
        "actor started by its alarm",
        || async { (host.actor_count() == 1).then_some(()) },
    )
    .await;
    let r = Client::new(format!("http://{addr}"))
        .unwrap()
        .get_for_id("reminders", &id);
    let got = common::eventually(Duration::from_secs(10), "alarm fired", || async {
        let f = fired(&r).await;
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(got, ["survivor"]);
    host.shutdown().await.unwrap();
    engine.shutdown().await.unwrap();
}
