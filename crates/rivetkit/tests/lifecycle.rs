//! Lifecycle hooks, input, vars, sleep and wake, destroy, idle sleep, `keep_awake`, `run`,
//! timeouts and panics, through the gateway with `rivetkit-client`.

mod common;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rivetkit::{actor, ActorOptions, Ctx, Error, Registry, RunCtx, UserError, Value};
use rivetkit_client::{Client, ClientError};
use serde::{Deserialize, Serialize};

/// Hooks that ran, per actor id, in order.
fn log() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static LOG: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    LOG.get_or_init(Default::default)
}

fn record(ctx_actor: &str, what: impl Into<String>) {
    log()
        .lock()
        .unwrap()
        .entry(ctx_actor.to_string())
        .or_default()
        .push(what.into());
}

fn hooks_of(actor_id: &str) -> Vec<String> {
    log()
        .lock()
        .unwrap()
        .get(actor_id)
        .cloned()
        .unwrap_or_default()
}

#[derive(Serialize, Deserialize)]
struct Lamp {
    color: String,
    switched: u32,
}

#[derive(Deserialize)]
struct LampInput {
    color: String,
}

/// Rebuilt on every start.
struct LampVars {
    generation: u32,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Snapshot {
    color: String,
    switched: u32,
    generation: u32,
    vars_generation: u32,
    region: String,
}

#[actor(rename_all = "camelCase")]
impl Lamp {
    async fn create_state(ctx: &mut Ctx<Self>, input: Option<LampInput>) -> Lamp {
        record(ctx.actor_id(), "create_state");
        Lamp {
            color: input.map_or_else(|| "white".to_string(), |i| i.color),
            switched: 0,
        }
    }

    async fn on_create(&mut self, ctx: &mut Ctx<Self>) {
        record(ctx.actor_id(), "on_create");
    }

    async fn create_vars(ctx: &mut Ctx<Self>) -> LampVars {
        record(ctx.actor_id(), "create_vars");
        LampVars {
            generation: ctx.generation(),
        }
    }

    async fn on_wake(&mut self, ctx: &mut Ctx<Self>) {
        record(ctx.actor_id(), "on_wake");
    }

    async fn on_sleep(&mut self, ctx: &mut Ctx<Self>) {
        record(ctx.actor_id(), "on_sleep");
        // Changed in on_sleep: must be saved before the actor stops.
        self.switched += 100;
    }

    async fn on_destroy(&mut self, ctx: &mut Ctx<Self>) {
        record(ctx.actor_id(), "on_destroy");
    }

    fn on_state_change(&mut self, ctx: &mut Ctx<Self>) {
        record(ctx.actor_id(), format!("state_change:{}", self.switched));
    }

    async fn switch(&mut self) -> u32 {
        self.switched += 1;
        self.switched
    }

    async fn snapshot(&self, ctx: &mut Ctx<Self>) -> Snapshot {
        Snapshot {
            color: self.color.clone(),
            switched: self.switched,
            generation: ctx.generation(),
            vars_generation: ctx.vars().generation,
            region: ctx.region().to_string(),
        }
    }

    async fn go_to_sleep(&self, ctx: &mut Ctx<Self>) {
        ctx.sleep();
    }

    async fn destroy_me(&self, ctx: &mut Ctx<Self>) {
        ctx.destroy();
    }
}

fn client(running: &rivetkit::RunningRegistry) -> Client {
    Client::new(running.endpoint()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_hooks_vars_sleep_and_wake() {
    let running = common::start_embedded(Registry::new().register::<Lamp>("lamp"), None).await;
    let client = client(&running);
    let lamp = client
        .get_or_create_with_input("lamp", ["l1"], &serde_json::json!({ "color": "red" }))
        .unwrap();
    let first: Snapshot = lamp.action("snapshot", ()).await.unwrap();
    assert_eq!(
        first,
        Snapshot {
            color: "red".into(),
            switched: 0,
            generation: 1,
            vars_generation: 1,
            region: "test-region".into(),
        }
    );
    assert_eq!(lamp.action::<_, u32>("switch", ()).await.unwrap(), 1);
    let id = lamp.resolve().await.unwrap();
    assert_eq!(
        hooks_of(&id),
        [
            "create_state",
            "on_create",
            "create_vars",
            "on_wake",
            "state_change:1"
        ]
    );

    lamp.action::<_, ()>("goToSleep", ()).await.unwrap();
    common::wait_asleep(&running, &id).await;
    assert_eq!(
        hooks_of(&id).last().map(String::as_str),
        Some("state_change:101")
    );

    // The next action wakes it: state (with on_sleep's change) is back, vars are new, and
    // neither create_state nor on_create runs again.
    let woken: Snapshot = lamp.action("snapshot", ()).await.unwrap();
    assert_eq!(woken.switched, 101);
    assert_eq!(woken.color, "red");
    assert_eq!((woken.generation, woken.vars_generation), (2, 2));
    let hooks = hooks_of(&id);
    assert_eq!(hooks.iter().filter(|h| *h == "create_state").count(), 1);
    assert_eq!(hooks.iter().filter(|h| *h == "on_create").count(), 1);
    assert_eq!(hooks.iter().filter(|h| *h == "on_wake").count(), 2);
    assert_eq!(hooks.iter().filter(|h| *h == "create_vars").count(), 2);
    assert_eq!(hooks.iter().filter(|h| *h == "on_sleep").count(), 1);

    // Without input the default applies.
    let plain = client.get_or_create("lamp", ["l2"]);
    let snap: Snapshot = plain.action("snapshot", ()).await.unwrap();
    assert_eq!(snap.color, "white");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_runs_on_destroy_and_frees_the_key() {
    let running = common::start_embedded(Registry::new().register::<Lamp>("lamp"), None).await;
    let client = client(&running);
    let lamp = client.get_or_create("lamp", ["doomed"]);
    lamp.action::<_, u32>("switch", ()).await.unwrap();
    let id = lamp.resolve().await.unwrap();
    lamp.action::<_, ()>("destroyMe", ()).await.unwrap();
    // The reply leaves once the engine recorded the destroy: the key is free at once.
    let again = client.get_or_create("lamp", ["doomed"]);
    let snap: Snapshot = again.action("snapshot", ()).await.unwrap();
    assert_eq!(snap.switched, 0, "a new actor starts from a fresh state");
    assert_ne!(again.resolve().await.unwrap(), id);

    common::wait_destroyed(&running, &id).await;
    assert!(hooks_of(&id).contains(&"on_destroy".to_string()));
    assert!(!hooks_of(&id).contains(&"on_sleep".to_string()));
    running.shutdown().await.unwrap();
}

/// Sleeps after 300 ms idle; `hold` keeps it awake until `release`.
#[derive(Default, Serialize, Deserialize)]
struct Napper {
    calls: u32,
}

fn gates() -> &'static Mutex<HashMap<String, tokio::sync::oneshot::Sender<()>>> {
    static GATES: OnceLock<Mutex<HashMap<String, tokio::sync::oneshot::Sender<()>>>> =
        OnceLock::new();
    GATES.get_or_init(Default::default)
}

#[actor(rename_all = "camelCase")]
impl Napper {
    fn options() -> ActorOptions {
        ActorOptions {
            sleep_timeout: Duration::from_millis(300),
            ..ActorOptions::default()
        }
    }

    async fn touch(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }

    async fn hold(&self, ctx: &mut Ctx<Self>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        gates()
            .lock()
            .unwrap()
            .insert(ctx.actor_id().to_string(), tx);
        ctx.wait_until(async move {
            let _ = rx.await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_actors_sleep_unless_kept_awake() {
    let running = common::start_embedded(Registry::new().register::<Napper>("napper"), None).await;
    let client = client(&running);
    let napper = client.get_or_create("napper", ["n1"]);
    assert_eq!(napper.action::<_, u32>("touch", ()).await.unwrap(), 1);
    let id = napper.resolve().await.unwrap();
    common::wait_asleep(&running, &id).await;
    assert_eq!(napper.action::<_, u32>("touch", ()).await.unwrap(), 2);

    napper.action::<_, ()>("hold", ()).await.unwrap();
    // Several idle timeouts pass while the work is pending: still awake.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let view = common::actor_view(&running, &id).await;
    assert!(
        view["sleep_ts"].is_null(),
        "slept during keep_awake: {view}"
    );
    let release = gates().lock().unwrap().remove(&id).unwrap();
    release.send(()).unwrap();
    common::wait_asleep(&running, &id).await;
    running.shutdown().await.unwrap();
}

/// Actions that misbehave.
#[derive(Default, Serialize, Deserialize)]
struct Wild {
    count: i64,
}

#[actor(rename_all = "camelCase")]
impl Wild {
    fn options() -> ActorOptions {
        ActorOptions {
            action_timeout: Duration::from_millis(200),
            ..ActorOptions::default()
        }
    }

    async fn add(&mut self, n: i64) -> i64 {
        self.count += n;
        self.count
    }

    async fn hang(&self) {
        std::future::pending::<()>().await;
    }

    async fn explode(&mut self) -> i64 {
        self.count += 1000;
        panic!("boom");
    }

    async fn reject(&self) -> Result<(), Error> {
        Err(Error::public("custom", "nope", "not today"))
    }

    /// Output wrapped by `on_before_action_response` for this action only.
    async fn wrapped(&self) -> i64 {
        7
    }

    async fn on_before_action_response(&mut self, action: &str, output: Value) -> Value {
        if action == "wrapped" {
            Value::object([("wrapped", output)])
        } else {
            output
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_panics_and_output_transforms() {
    let running = common::start_embedded(Registry::new().register::<Wild>("wild"), None).await;
    let client = client(&running);
    let wild = client.get_or_create("wild", ["w1"]);
    assert_eq!(wild.action::<_, i64>("add", (5,)).await.unwrap(), 5);

    let remote = |r: Result<(), ClientError>| match r {
        Err(ClientError::Remote(e)) => e,
        other => panic!("expected a remote error, got {other:?}"),
    };
    let e = remote(wild.action("hang", ()).await);
    assert_eq!(
        (e.group.as_str(), e.code.as_str()),
        ("actor", "action_timed_out")
    );
    assert_eq!(e.status, Some(408));
    // The message npm actors send, which the npm client shows as is.
    assert_eq!(e.message, "Action timed out");

    let e = remote(wild.action("reject", ()).await);
    assert_eq!(
        (e.group.as_str(), e.code.as_str(), e.message.as_str()),
        ("custom", "nope", "not today")
    );

    let wrapped: serde_json::Value = wild.action("wrapped", ()).await.unwrap();
    assert_eq!(wrapped, serde_json::json!({ "wrapped": 7 }));

    // A panic crashes the actor: its half-done change is not kept, the next call restarts it
    // from the saved state.
    let id = wild.resolve().await.unwrap();
    let e = remote(wild.action::<_, i64>("explode", ()).await.map(drop));
    assert_eq!(
        (e.group.as_str(), e.code.as_str()),
        ("rivetkit", "internal_error")
    );
    common::eventually(Duration::from_secs(10), "crash recorded", || async {
        let view = common::actor_view(&running, &id).await;
        (!view["error"].is_null()).then_some(())
    })
    .await;
    assert_eq!(wild.action::<_, i64>("add", (1,)).await.unwrap(), 6);
    running.shutdown().await.unwrap();
}

/// A background task that ticks the state until the actor stops.
#[derive(Default, Serialize, Deserialize)]
struct Ticker {
    ticks: u64,
}

#[actor]
impl Ticker {
    async fn run(mut ctx: RunCtx<Self>) -> Result<(), Error> {
        loop {
            tokio::select! {
                _ = ctx.stopping() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {
                    if ctx.update(|state: &mut Ticker, _| state.ticks += 1).await.is_none() {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn ticks(&self) -> u64 {
        self.ticks
    }

    async fn fail(&self) -> Result<(), UserError> {
        Err(UserError::new("plain"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_updates_state_between_actions() {
    let running = common::start_embedded(Registry::new().register::<Ticker>("ticker"), None).await;
    let client = client(&running);
    let ticker = client.get_or_create("ticker", ["t1"]);
    let first: u64 = ticker.action("ticks", ()).await.unwrap();
    let later = common::eventually(Duration::from_secs(10), "ticks advance", || async {
        let now: u64 = ticker.action("ticks", ()).await.unwrap();
        (now >= first + 5).then_some(now)
    })
    .await;
    assert!(later >= first + 5);
    match ticker.action::<_, ()>("fail", ()).await {
        Err(ClientError::Remote(e)) => {
            assert_eq!(
                (e.group.as_str(), e.code.as_str(), e.message.as_str()),
                ("user", "user_error", "plain")
            )
        }
        other => panic!("expected a user error, got {other:?}"),
    }
    running.shutdown().await.unwrap();
}
