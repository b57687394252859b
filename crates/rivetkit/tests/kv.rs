//! `ctx.kv()`: get, put, delete, prefix and range listing, range deletion; values survive a
//! sleep; user keys never collide with the state. Also `ctx.save_state()` and actor-to-actor
//! calls with `ctx.client()`.

mod common;

use rivetkit::{actor, Ctx, Error, Registry};
use rivetkit_client::Client;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
struct Store {
    saves: u32,
}

type Entries = Vec<(String, String)>;

fn text(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Entries {
    entries
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

#[actor(rename_all = "camelCase")]
impl Store {
    async fn put(&self, ctx: &mut Ctx<Self>, key: String, value: String) -> Result<(), Error> {
        Ok(ctx.kv().put(key, value).await?)
    }

    async fn get(&self, ctx: &mut Ctx<Self>, key: String) -> Result<Option<String>, Error> {
        let found = ctx.kv().get(key).await?;
        Ok(found.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    async fn delete(&self, ctx: &mut Ctx<Self>, key: String) -> Result<(), Error> {
        Ok(ctx.kv().delete(key).await?)
    }

    async fn list_prefix(&self, ctx: &mut Ctx<Self>, prefix: String) -> Result<Entries, Error> {
        Ok(text(ctx.kv().list_prefix(prefix, None).await?))
    }

    async fn list_range(
        &self,
        ctx: &mut Ctx<Self>,
        start: String,
        end: String,
        reverse: bool,
        limit: Option<u64>,
    ) -> Result<Entries, Error> {
        Ok(text(ctx.kv().list_range(start, end, reverse, limit).await?))
    }

    async fn delete_range(
        &self,
        ctx: &mut Ctx<Self>,
        start: String,
        end: String,
    ) -> Result<(), Error> {
        Ok(ctx.kv().delete_range(start, end).await?)
    }

    async fn nap(&self, ctx: &mut Ctx<Self>) {
        ctx.sleep();
    }

    /// Saves mid-action, then fails: the saved change stays.
    async fn save_then_fail(&mut self, ctx: &mut Ctx<Self>) -> Result<(), Error> {
        self.saves += 1;
        ctx.save_state(self).await?;
        Err(Error::user("after_save", "failed after saving"))
    }

    async fn saves(&self) -> u32 {
        self.saves
    }

    /// Calls another actor through the engine.
    async fn ask_other(
        &self,
        ctx: &mut Ctx<Self>,
        key: String,
        value: String,
    ) -> Result<Option<String>, Error> {
        let other = ctx.client().get_or_create("store", [key.as_str()]);
        other
            .action::<_, ()>("put", ("from-peer", value))
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        other
            .action("get", ("from-peer",))
            .await
            .map_err(|e| Error::internal(e.to_string()))
    }
}

fn pairs(list: &[(&str, &str)]) -> Entries {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_operations_and_persistence() {
    let running = common::start_embedded(Registry::new().register::<Store>("store"), None).await;
    let client = Client::new(running.endpoint()).unwrap();
    let s = client.get_or_create("store", ["kv"]);
    for (k, v) in [
        ("a/1", "one"),
        ("a/2", "two"),
        ("a/3", "three"),
        ("b/1", "bee"),
    ] {
        s.action::<_, ()>("put", (k, v)).await.unwrap();
    }
    assert_eq!(
        s.action::<_, Option<String>>("get", ("a/2",))
            .await
            .unwrap()
            .as_deref(),
        Some("two")
    );
    assert_eq!(
        s.action::<_, Option<String>>("get", ("zz",)).await.unwrap(),
        None
    );
    assert_eq!(
        s.action::<_, Entries>("listPrefix", ("a/",)).await.unwrap(),
        pairs(&[("a/1", "one"), ("a/2", "two"), ("a/3", "three")])
    );
    assert_eq!(
        s.action::<_, Entries>("listRange", ("a/2", "b/1", false, None::<u64>))
            .await
            .unwrap(),
        pairs(&[("a/2", "two"), ("a/3", "three")]),
        "end is exclusive"
    );
    assert_eq!(
        s.action::<_, Entries>("listRange", ("a/", "c", true, Some(2)))
            .await
            .unwrap(),
        pairs(&[("b/1", "bee"), ("a/3", "three")]),
        "reverse with a limit"
    );
    s.action::<_, ()>("delete", ("a/1",)).await.unwrap();
    s.action::<_, ()>("deleteRange", ("a/3", "b/2"))
        .await
        .unwrap();
    assert_eq!(
        s.action::<_, Entries>("listPrefix", ("",)).await.unwrap(),
        pairs(&[("a/2", "two")]),
        "user keys only: the state record is not listed"
    );

    let id = s.resolve().await.unwrap();
    s.action::<_, ()>("nap", ()).await.unwrap();
    common::wait_asleep(&running, &id).await;
    assert_eq!(
        s.action::<_, Option<String>>("get", ("a/2",))
            .await
            .unwrap()
            .as_deref(),
        Some("two")
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_state_mid_action_and_actor_to_actor_calls() {
    let running = common::start_embedded(Registry::new().register::<Store>("store"), None).await;
    let client = Client::new(running.endpoint()).unwrap();
    let s = client.get_or_create("store", ["saver"]);
    let e = s.action::<_, ()>("saveThenFail", ()).await.unwrap_err();
    assert_eq!(e.remote().map(|r| r.code.as_str()), Some("after_save"));
    let id = s.resolve().await.unwrap();
    s.action::<_, ()>("nap", ()).await.unwrap();
    common::wait_asleep(&running, &id).await;
    assert_eq!(s.action::<_, u32>("saves", ()).await.unwrap(), 1);

    let got: Option<String> = s.action("askOther", ("peer", "hello")).await.unwrap();
    assert_eq!(got.as_deref(), Some("hello"));
    let peer = client.get("store", ["peer"]);
    assert_eq!(
        peer.action::<_, Option<String>>("get", ("from-peer",))
            .await
            .unwrap()
            .as_deref(),
        Some("hello")
    );
    running.shutdown().await.unwrap();
}
