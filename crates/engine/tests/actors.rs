//! The actor lifecycle end to end: a real engine, the in-repo test host over the real
//! `/envoys/connect` socket, and the REST API.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rivet_engine::{Engine, EngineOptions};
use rivet_envoy_protocol::{
    self as proto, Command, KvGetRequest, KvPutRequest, KvRequestData, KvResponseData,
    SqliteCommitRequest, SqliteDirtyPage, StopActorReason, StopCode,
};
use rivet_orchestrator::lifecycle::{self, WaitOutcome};
use rivet_test_host::{Behaviour, HostOptions, TestHost};
use rivet_test_support::{engine_config, get, send};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
const POOL: &str = "default";

struct TestEngine {
    engine: Engine,
    _home: tempfile::TempDir,
}

impl TestEngine {
    async fn start(lifecycle: lifecycle::Config) -> TestEngine {
        let home = tempfile::tempdir().unwrap();
        let config = engine_config(home.path(), &[("RIVET__memory", "{}")]);
        let engine = Engine::start_with(&config, EngineOptions { lifecycle })
            .await
            .unwrap();
        let test = TestEngine {
            engine,
            _home: home,
        };
        test.put_pool(POOL).await;
        test
    }

    fn addr(&self) -> SocketAddr {
        self.engine.guard_addr()
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    async fn put_pool(&self, pool: &str) {
        let response = send(
            self.addr(),
            "PUT",
            &format!("/runner-configs/{pool}?namespace=default"),
            &[("content-type", "application/json")],
            &json!({"datacenters": {"default": {"normal": {}}}}).to_string(),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
    }

    async fn host(&self, behaviour: Behaviour) -> TestHost {
        let mut options = HostOptions::new(self.endpoint(), POOL);
        options.behaviour = behaviour;
        options.actor_names = vec!["counter".into()];
        TestHost::connect(options).await.unwrap()
    }

    async fn create(&self, key: Option<&str>) -> String {
        let mut body = json!({"name": "counter", "runner_name_selector": POOL, "crash_policy": "sleep", "input": "aGk="});
        if let Some(key) = key {
            body["key"] = json!(key);
        }
        let response = send(
            self.addr(),
            "POST",
            "/actors?namespace=default",
            &[("content-type", "application/json")],
            &body.to_string(),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()["actor"]["actor_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn actor(&self, id: &str) -> Value {
        let response = get(
            self.addr(),
            &format!("/actors?namespace=default&actor_ids={id}"),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()["actors"][0].clone()
    }

    /// Polls the actor JSON until `check` holds.
    async fn wait_actor(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let actor = self.actor(id).await;
            if check(&actor) {
                return actor;
            }
            assert!(Instant::now() < deadline, "actor never {what}: {actor}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until exactly `n` hosts are listed (the engine noticed connects and closes).
    async fn wait_envoys(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let envoys = get(self.addr(), "/envoys?namespace=default").await.json();
            if envoys["envoys"].as_array().map(Vec::len) == Some(n) {
                return;
            }
            assert!(Instant::now() < deadline, "never {n} hosts: {envoys}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wake(&self, id: &str) -> WaitOutcome {
        self.engine
            .shell()
            .wake(id.parse().unwrap(), WAIT)
            .await
            .unwrap()
    }
}

fn fast_lifecycle() -> lifecycle::Config {
    lifecycle::Config {
        lost_threshold: 1_500,
        backoff_base: 200,
        backoff_max: 1_000,
        ..lifecycle::Config::DEFAULT
    }
}

async fn next_start(host: &TestHost) -> proto::CommandWrapper {
    loop {
        let command = host.next_command(WAIT).await.expect("no command arrived");
        if let Command::StartActor(_) = command.inner {
            return command;
        }
    }
}

async fn next_stop(host: &TestHost) -> (proto::CommandWrapper, StopActorReason) {
    loop {
        let command = host.next_command(WAIT).await.expect("no command arrived");
        if let Command::StopActor(stop) = &command.inner {
            let reason = stop.reason;
            return (command, reason);
        }
    }
}

#[tokio::test]
async fn a_created_actor_starts_on_the_connected_host_and_becomes_connectable() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let host = t.host(Behaviour::default()).await;
    let id = t.create(Some("k1")).await;
    let start = next_start(&host).await;
    assert_eq!(start.checkpoint.actor_id, id);
    assert_eq!(start.checkpoint.generation, 1);
    assert_eq!(start.checkpoint.index, 1);
    let Command::StartActor(start) = start.inner else {
        unreachable!()
    };
    assert_eq!(start.config.name, "counter");
    assert_eq!(start.config.key.as_deref(), Some("k1"));
    assert_eq!(start.config.input.as_deref(), Some(&b"hi"[..]));
    let actor = t
        .wait_actor(&id, "connectable", |a| a["connectable_ts"].is_i64())
        .await;
    assert_eq!(actor["start_ts"], actor["connectable_ts"]);
    assert!(actor["sleep_ts"].is_null());
    assert!(actor.get("error").is_none());

    // Host metadata: names and the host listing.
    let names = get(t.addr(), "/actors/names?namespace=default")
        .await
        .json();
    assert_eq!(names["names"]["counter"], json!({"metadata": {}}));
    let envoys = get(t.addr(), "/envoys?namespace=default&name=default")
        .await
        .json();
    assert_eq!(envoys["envoys"][0]["envoy_key"], host.envoy_key());
    assert_eq!(envoys["envoys"][0]["slots"], 1);
}

#[tokio::test]
async fn without_a_host_the_actor_reports_no_envoys_and_starts_once_one_connects() {
    let t = TestEngine::start(fast_lifecycle()).await;
    let id = t.create(None).await;
    let actor = t.actor(&id).await;
    assert_eq!(actor["error"], "no_envoys", "{actor}");
    assert!(actor["reschedule_ts"].is_i64(), "{actor}");
    // The gateway's wait ends at once with the error, not a hang.
    assert_eq!(
        t.wake(&id).await,
        WaitOutcome::Failed(lifecycle::ActorError::NoEnvoys)
    );
    let host = t.host(Behaviour::default()).await;
    // The backoff retry (a durable timer) finds the host.
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    let actor = t
        .wait_actor(&id, "running", |a| a["connectable_ts"].is_i64())
        .await;
    assert!(
        actor.get("error").is_none(),
        "error cleared on start: {actor}"
    );
}

#[tokio::test]
async fn sleep_then_wake_starts_the_next_generation() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let host = t.host(Behaviour::default()).await;
    let id = t.create(None).await;
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    let response = send(
        t.addr(),
        "POST",
        &format!("/actors/{id}/sleep?namespace=default"),
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let (stop, reason) = next_stop(&host).await;
    assert_eq!(reason, StopActorReason::SleepIntent);
    assert_eq!(stop.checkpoint.index, 2);
    t.wait_actor(&id, "asleep", |a| {
        a["sleep_ts"].is_i64() && a["connectable_ts"].is_null()
    })
    .await;
    let outcome = t.wake(&id).await;
    let WaitOutcome::Ready { generation, .. } = outcome else {
        panic!("not ready: {outcome:?}")
    };
    assert_eq!(generation, 2);
    let start = next_start(&host).await;
    assert_eq!(start.checkpoint.generation, 2);
    assert_eq!(start.checkpoint.index, 1);
    let actor = t.actor(&id).await;
    assert!(actor["sleep_ts"].is_null() && actor["connectable_ts"].is_i64());
}

#[tokio::test]
async fn an_alarm_wakes_a_sleeping_actor() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let host = t.host(Behaviour::default()).await;
    let id = t.create(None).await;
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    let alarm = rivet_orchestrator::shell::now_ms() + 400;
    host.set_alarm(&id, 1, Some(alarm)).await.unwrap();
    host.sleep_intent(&id, 1).await.unwrap();
    let (_, reason) = next_stop(&host).await;
    assert_eq!(reason, StopActorReason::SleepIntent);
    let start = next_start(&host).await;
    assert_eq!(start.checkpoint.generation, 2);
    assert!(
        rivet_orchestrator::shell::now_ms() >= alarm,
        "woke before the alarm"
    );
}

#[tokio::test]
async fn a_reconnect_within_the_threshold_resumes_and_replays_unacknowledged_commands() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let behaviour = Behaviour {
        ack_commands: false,
        ..Behaviour::default()
    };
    let mut host = t.host(behaviour).await;
    let id = t.create(None).await;
    assert_eq!(next_start(&host).await.checkpoint.generation, 1);
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    // Drop the TCP connection and come back with the same key.
    host.reconnect().await.unwrap();
    // The never-acknowledged StartActor is replayed; the host recognises it as a duplicate.
    let deadline = Instant::now() + WAIT;
    while host.duplicate_commands().is_empty() {
        assert!(Instant::now() < deadline, "no replay");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(host.duplicate_commands()[0].checkpoint.generation, 1);
    // Nothing restarted: still generation 1, still connectable.
    let outcome = t.wake(&id).await;
    assert!(
        matches!(outcome, WaitOutcome::Ready { generation: 1, .. }),
        "{outcome:?}"
    );
    assert!(host
        .next_command(Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test]
async fn a_host_lost_past_the_threshold_leaves_its_actors_asleep_with_an_error() {
    let t = TestEngine::start(fast_lifecycle()).await;
    let host = t.host(Behaviour::default()).await;
    let key = host.envoy_key().to_string();
    let id = t.create(None).await;
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    host.kill();
    let actor = t.wait_actor(&id, "lost", |a| a["sleep_ts"].is_i64()).await;
    assert_eq!(
        actor["error"],
        json!({"envoy_connection_lost": {"envoy_key": key}})
    );
    assert!(actor["connectable_ts"].is_null());
}

#[tokio::test]
async fn a_request_moves_an_actor_off_a_dead_host_at_once() {
    // Lost threshold as the reference's: the move must not wait for it.
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let dead = t.host(Behaviour::default()).await;
    let id = t.create(None).await;
    assert_eq!(dead.wait_running(&id, WAIT).await, Some(1));
    let alive = t.host(Behaviour::default()).await;
    dead.kill();
    t.wait_envoys(1).await;
    let started = Instant::now();
    let outcome = t.wake(&id).await;
    let WaitOutcome::Ready { host, generation } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(host.0, alive.envoy_key());
    assert_eq!(generation, 2);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn stale_generations_cannot_write_kv_sqlite_or_events() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let zombie = t.host(Behaviour::default()).await;
    let zombie_key = zombie.envoy_key().to_string();
    let id = t.create(None).await;
    assert_eq!(zombie.wait_running(&id, WAIT).await, Some(1));
    // The zombie's writes while it is current are accepted.
    let put = |value: &[u8]| {
        KvRequestData::Put(KvPutRequest {
            keys: vec![b"state".to_vec()],
            values: vec![value.to_vec()],
        })
    };
    assert_eq!(
        zombie.kv(&id, put(b"v1")).await.unwrap(),
        KvResponseData::Put
    );
    let commit = |generation: u64, head: u64| SqliteCommitRequest {
        actor_id: id.clone(),
        dirty_pages: vec![SqliteDirtyPage {
            pgno: 1,
            bytes: vec![7; 4096],
        }],
        db_size_pages: 1,
        now_ms: 0,
        expected_generation: Some(generation),
        expected_head_txid: Some(head),
    };
    assert!(matches!(
        zombie.sqlite_commit(commit(1, 0)).await.unwrap(),
        proto::SqliteCommitResponse::Ok(_)
    ));
    // The actor moves to a new host while the zombie is cut off.
    let fresh = t.host(Behaviour::default()).await;
    zombie.kill();
    t.wait_envoys(1).await;
    let outcome = t.wake(&id).await;
    assert!(
        matches!(outcome, WaitOutcome::Ready { generation: 2, .. }),
        "{outcome:?}"
    );
    assert_eq!(fresh.wait_running(&id, WAIT).await, Some(2));
    // The zombie comes back with its old key and tries to write.
    let mut options = HostOptions::new(t.endpoint(), POOL);
    options.envoy_key = zombie_key;
    let zombie = TestHost::connect(options).await.unwrap();
    let answer = zombie.kv(&id, put(b"zombie")).await.unwrap();
    assert!(matches!(answer, KvResponseData::Error(_)), "{answer:?}");
    let answer = zombie.sqlite_commit(commit(1, 1)).await.unwrap();
    assert!(
        matches!(answer, proto::SqliteCommitResponse::Error(_)),
        "{answer:?}"
    );
    // A stale Stopped event does not stop the new generation.
    zombie.stopped(&id, 1, StopCode::Ok, None).await.unwrap();
    // The new instance still sees its own state and can write.
    let got = fresh
        .kv(
            &id,
            KvRequestData::Get(KvGetRequest {
                keys: vec![b"state".to_vec()],
            }),
        )
        .await
        .unwrap();
    let KvResponseData::Get(entries) = got else {
        panic!("{got:?}")
    };
    assert_eq!(entries.values, vec![b"v1".to_vec()]);
    assert_eq!(
        fresh.kv(&id, put(b"v2")).await.unwrap(),
        KvResponseData::Put
    );
    let actor = t.actor(&id).await;
    assert!(
        actor["connectable_ts"].is_i64() && actor["destroy_ts"].is_null(),
        "{actor}"
    );
}

/// Requests that arrive together share one transaction: they must still apply in the order
/// sent, and a refused or invalid one must fail alone.
#[tokio::test]
async fn kv_requests_sent_together_apply_in_order_and_fail_alone() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let host = t.host(Behaviour::default()).await;
    let a = t.create(Some("a")).await;
    let b = t.create(Some("b")).await;
    assert_eq!(host.wait_running(&a, WAIT).await, Some(1));
    assert_eq!(host.wait_running(&b, WAIT).await, Some(1));
    let put = |keys: &[&[u8]], values: &[&[u8]]| {
        KvRequestData::Put(KvPutRequest {
            keys: keys.iter().map(|k| k.to_vec()).collect(),
            values: values.iter().map(|v| v.to_vec()).collect(),
        })
    };
    let get = || {
        KvRequestData::Get(KvGetRequest {
            keys: vec![b"k".to_vec()],
        })
    };
    let missing = "t1s4f27ni26z168a3jwmydor4jcl00";
    // Issued back to back on one socket (each is queued for sending when first polled).
    let answers = futures::future::join_all([
        host.kv(&a, put(&[b"k"], &[b"1"])),
        host.kv(&a, put(&[b"k", b"j"], &[b"only one value"])),
        host.kv(missing, put(&[b"k"], &[b"x"])),
        host.kv(&a, put(&[b"k"], &[b"2"])),
        host.kv(&b, put(&[b"k"], &[b"b"])),
        host.kv(&a, get()),
    ])
    .await;
    let answers: Vec<KvResponseData> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers[0], KvResponseData::Put);
    assert!(
        matches!(answers[1], KvResponseData::Error(_)),
        "{:?}",
        answers[1]
    );
    assert!(
        matches!(answers[2], KvResponseData::Error(_)),
        "{:?}",
        answers[2]
    );
    assert_eq!(answers[3], KvResponseData::Put);
    assert_eq!(answers[4], KvResponseData::Put);
    let KvResponseData::Get(entries) = &answers[5] else {
        panic!("{:?}", answers[5])
    };
    assert_eq!(entries.values, vec![b"2".to_vec()]);
    // The invalid put wrote none of its keys; the other actor's write landed.
    let KvResponseData::Get(j) = host
        .kv(
            &a,
            KvRequestData::Get(KvGetRequest {
                keys: vec![b"j".to_vec()],
            }),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(j.values.is_empty(), "{j:?}");
    let KvResponseData::Get(other) = host.kv(&b, get()).await.unwrap() else {
        panic!()
    };
    assert_eq!(other.values, vec![b"b".to_vec()]);
}

#[tokio::test]
async fn destroy_stops_the_actor_frees_its_key_and_deletes_its_data() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let host = t.host(Behaviour::default()).await;
    let id = t.create(Some("gone")).await;
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    let put = KvRequestData::Put(KvPutRequest {
        keys: vec![b"k".to_vec()],
        values: vec![b"v".to_vec()],
    });
    assert_eq!(host.kv(&id, put).await.unwrap(), KvResponseData::Put);
    let response = send(
        t.addr(),
        "DELETE",
        &format!("/actors/{id}?namespace=default"),
        &[],
        "",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let (_, reason) = next_stop(&host).await;
    assert_eq!(reason, StopActorReason::Destroy);
    t.wait_actor(&id, "destroyed", |a| a["destroy_ts"].is_i64())
        .await;
    // KV is gone (the REST read agrees), and the key can be used again.
    let kv = get(
        t.addr(),
        &format!("/actors/{id}/kv/keys/aw%3D%3D?namespace=default"),
    )
    .await;
    assert_eq!(kv.status, 400, "{}", kv.body);
    assert_eq!(kv.json()["code"], "kv_key_not_found");
    let again = t.create(Some("gone")).await;
    assert_ne!(again, id);
}

#[tokio::test]
async fn stop_intent_destroys_and_an_error_stop_sleeps_with_crashed() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let host = t.host(Behaviour::default()).await;
    let a = t.create(None).await;
    let b = t.create(None).await;
    assert_eq!(host.wait_running(&a, WAIT).await, Some(1));
    assert_eq!(host.wait_running(&b, WAIT).await, Some(1));
    host.stop_intent(&a, 1).await.unwrap();
    t.wait_actor(&a, "destroyed", |a| a["destroy_ts"].is_i64())
        .await;
    host.stopped(&b, 1, StopCode::Error, Some("kaboom".into()))
        .await
        .unwrap();
    let actor = t.wait_actor(&b, "asleep", |a| a["sleep_ts"].is_i64()).await;
    assert_eq!(actor["error"], json!({"crashed": {"message": "kaboom"}}));
    assert_eq!(actor["crash_policy"], "sleep");
    // The next request starts it again and clears the error.
    assert!(matches!(
        t.wake(&b).await,
        WaitOutcome::Ready { generation: 2, .. }
    ));
    assert!(t.actor(&b).await.get("error").is_none());
}

#[tokio::test]
async fn duplicate_and_stale_events_are_acknowledged_but_ignored() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let host = t.host(Behaviour::manual()).await;
    let id = t.create(None).await;
    next_start(&host).await;
    let index = host.running(&id, 1).await.unwrap();
    assert!(host.wait_acked_event(&id, 1, index, WAIT).await);
    // Replaying Running with an old index, or a stop from a generation that never existed,
    // changes nothing.
    let running = proto::Event::StateUpdate(proto::EventActorStateUpdate {
        state: proto::ActorState::Running,
    });
    host.send_raw(proto::ToRivet::Events(vec![proto::EventWrapper {
        checkpoint: proto::ActorCheckpoint {
            actor_id: id.clone(),
            generation: 7,
            index: 0,
        },
        inner: proto::Event::StateUpdate(proto::EventActorStateUpdate {
            state: proto::ActorState::Stopped(proto::ActorStateStopped {
                code: StopCode::Ok,
                message: None,
            }),
        }),
    }]))
    .await
    .unwrap();
    host.send_raw(proto::ToRivet::Events(vec![proto::EventWrapper {
        checkpoint: proto::ActorCheckpoint {
            actor_id: id.clone(),
            generation: 1,
            index,
        },
        inner: running,
    }]))
    .await
    .unwrap();
    assert!(host.wait_acked_event(&id, 7, 0, WAIT).await);
    let actor = t.actor(&id).await;
    assert!(
        actor["connectable_ts"].is_i64() && actor["destroy_ts"].is_null(),
        "{actor}"
    );
}

#[tokio::test]
async fn a_draining_host_hands_its_actors_to_another_host() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let leaving = t.host(Behaviour::default()).await;
    let id = t.create(None).await;
    assert_eq!(leaving.wait_running(&id, WAIT).await, Some(1));
    let staying = t.host(Behaviour::default()).await;
    leaving.stopping().await.unwrap();
    let (_, reason) = next_stop(&leaving).await;
    assert_eq!(reason, StopActorReason::GoingAway);
    assert_eq!(staying.wait_running(&id, WAIT).await, Some(2));
    // The draining host is no longer listed.
    t.wait_envoys(1).await;
    let envoys = get(t.addr(), "/envoys?namespace=default").await.json();
    assert_eq!(envoys["envoys"][0]["envoy_key"], staying.envoy_key());
}

#[tokio::test]
async fn a_second_socket_with_the_same_key_evicts_the_first_and_keeps_the_actors() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let first = t.host(Behaviour::default()).await;
    let id = t.create(None).await;
    assert_eq!(first.wait_running(&id, WAIT).await, Some(1));
    let mut options = HostOptions::new(t.endpoint(), POOL);
    options.envoy_key = first.envoy_key().to_string();
    let second = TestHost::connect(options).await.unwrap();
    let (code, reason) = first.closed(WAIT).await.expect("first socket not closed");
    assert_eq!(code, 1000);
    assert!(reason.starts_with("ws.eviction#"), "{reason}");
    // Same key: the actor stays where it is, nothing restarts.
    assert!(matches!(
        t.wake(&id).await,
        WaitOutcome::Ready { generation: 1, .. }
    ));
    t.wait_envoys(1).await;
    drop(second);
}

#[tokio::test]
async fn a_v6_host_runs_actors_and_may_commit_more_than_320_pages() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let mut options = HostOptions::new(t.endpoint(), POOL);
    options.protocol_version = 6;
    let host = TestHost::connect(options).await.unwrap();
    let id = t.create(None).await;
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    let pages = (1..=400)
        .map(|pgno| SqliteDirtyPage {
            pgno,
            bytes: vec![(pgno % 251) as u8; 4096],
        })
        .collect();
    let answer = host
        .sqlite_commit(SqliteCommitRequest {
            actor_id: id.clone(),
            dirty_pages: pages,
            db_size_pages: 400,
            now_ms: 0,
            expected_generation: Some(1),
            expected_head_txid: Some(0),
        })
        .await
        .unwrap();
    assert!(
        matches!(answer, proto::SqliteCommitResponse::Ok(_)),
        "{answer:?}"
    );
    let config = get(t.addr(), "/runner-configs?namespace=default")
        .await
        .json();
    assert_eq!(
        config["runner_configs"]["default"]["datacenters"]["default"]["protocol_version"], 6,
        "{config}"
    );
}

#[tokio::test]
async fn bad_connect_requests_are_closed_with_the_reference_codes() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let refused = |options: HostOptions| async move {
        match TestHost::connect(options).await {
            Err(rivet_test_host::HostError::Refused { code, reason }) => (code, reason),
            other => panic!("connected: {other:?}"),
        }
    };
    let base = || HostOptions::new(t.endpoint(), POOL);
    // Query values the test host would never send.
    let raw = |query: &str| {
        let url = format!("ws://{}/envoys/connect?{query}", t.addr());
        async move {
            // Real hosts offer `rivet`; the engine answers it on every upgrade.
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut request = url.into_client_request().unwrap();
            request
                .headers_mut()
                .insert("sec-websocket-protocol", "rivet".parse().unwrap());
            let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
            use futures::StreamExt;
            loop {
                match socket.next().await {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
                        return (u16::from(frame.code), frame.reason.to_string())
                    }
                    Some(Ok(_)) => continue,
                    other => panic!("no close frame: {other:?}"),
                }
            }
        }
    };
    let good = "namespace=default&envoy_key=abc&version=1&pool_name=default";
    let (code, reason) = raw(&format!("protocol_version=7&{good}")).await;
    assert_eq!(code, 1011);
    assert!(reason.starts_with("ws.invalid_request#"), "{reason}");
    let (_, reason) =
        raw("protocol_version=8&namespace=default&envoy_key=abc&version=x&pool_name=default").await;
    assert!(reason.starts_with("core.internal_error#"), "{reason}");
    let (_, reason) =
        raw("protocol_version=8&namespace=default&envoy_key=abc&pool_name=default").await;
    assert!(reason.starts_with("ws.invalid_request#"), "{reason}");
    let mut o = base();
    o.namespace = "nope".into();
    assert!(refused(o).await.1.starts_with("namespace.not_found#"));
    let mut o = base();
    o.envoy_key = "ab".into();
    assert!(refused(o).await.1.starts_with("ws.invalid_request#"));
    let mut o = base();
    o.pool = "no-such-pool".into();
    assert!(refused(o).await.1.starts_with("ws.no_runner_config#"));
}

#[tokio::test]
async fn with_an_admin_token_hosts_must_offer_it_as_a_subprotocol() {
    let home = tempfile::tempdir().unwrap();
    let config = engine_config(
        home.path(),
        &[
            ("RIVET__memory", "{}"),
            ("RIVET__auth__admin_token", "s3cret"),
        ],
    );
    let engine = Engine::start(&config).await.unwrap();
    let endpoint = format!("http://{}", engine.guard_addr());
    let response = send(
        engine.guard_addr(),
        "PUT",
        "/runner-configs/default?namespace=default",
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer s3cret"),
        ],
        &json!({"datacenters": {"default": {"normal": {}}}}).to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let connect = |token: Option<&str>| {
        let mut o = HostOptions::new(endpoint.clone(), POOL);
        o.token = token.map(str::to_string);
        TestHost::connect(o)
    };
    match connect(None).await {
        Err(rivet_test_host::HostError::Refused { reason, .. }) => {
            assert!(reason.starts_with("guard.missing_header#"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match connect(Some("wrong")).await {
        Err(rivet_test_host::HostError::Refused { reason, .. }) => {
            assert!(reason.starts_with("api.forbidden#"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    connect(Some("s3cret")).await.unwrap();
}

async fn get_or_create(addr: SocketAddr, key: &str) -> (String, bool) {
    let body = json!({"name": "counter", "key": key, "runner_name_selector": POOL, "crash_policy": "sleep"});
    let response = send(
        addr,
        "PUT",
        "/actors?namespace=default",
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    (
        body["actor"]["actor_id"].as_str().unwrap().to_string(),
        body["created"].as_bool().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_get_or_creates_on_one_key_make_one_actor() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let host = t.host(Behaviour::default()).await;
    let addr = t.addr();
    let calls: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(async move { get_or_create(addr, "hot").await }))
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for call in calls {
        let (id, was_created) = call.await.unwrap();
        ids.insert(id);
        created += usize::from(was_created);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(created, 1);
    let id = ids.into_iter().next().unwrap();
    assert_eq!(host.wait_running(&id, WAIT).await, Some(1));
    // Exactly one StartActor went out.
    let start = next_start(&host).await;
    assert_eq!(start.checkpoint.actor_id, id);
    assert!(host
        .next_command(Duration::from_millis(200))
        .await
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_keys_get_one_actor_each_under_concurrency() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let host = t.host(Behaviour::default()).await;
    let addr = t.addr();
    // Two racing calls per key, all at once.
    let calls: Vec<_> = (0..2000)
        .map(|i| {
            tokio::spawn(async move {
                (
                    i % 1000,
                    get_or_create(addr, &format!("k{}", i % 1000)).await,
                )
            })
        })
        .collect();
    let mut by_key: std::collections::HashMap<usize, std::collections::HashSet<String>> =
        std::collections::HashMap::new();
    let mut created = 0;
    for call in calls {
        let (key, (id, was_created)) = call.await.unwrap();
        by_key.entry(key).or_default().insert(id);
        created += usize::from(was_created);
    }
    assert_eq!(by_key.len(), 1000);
    assert!(by_key.values().all(|ids| ids.len() == 1));
    assert_eq!(created, 1000);
    // Every actor runs on the host.
    let deadline = Instant::now() + WAIT;
    while host.actors().len() < 1000 {
        assert!(Instant::now() < deadline, "{} running", host.actors().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_newer_host_version_drains_the_older_hosts() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let old = t.host(Behaviour::default()).await;
    let id = t.create(None).await;
    assert_eq!(old.wait_running(&id, WAIT).await, Some(1));
    let mut options = HostOptions::new(t.endpoint(), POOL);
    options.version = 2;
    let new = TestHost::connect(options).await.unwrap();
    let (_, reason) = next_stop(&old).await;
    assert_eq!(reason, StopActorReason::GoingAway);
    assert_eq!(new.wait_running(&id, WAIT).await, Some(2));
    // New actors go to the newer version only.
    let other = t.create(None).await;
    assert_eq!(new.wait_running(&other, WAIT).await, Some(1));
}

#[tokio::test]
async fn a_host_that_stops_answering_pings_is_closed_after_15_seconds() {
    let t = TestEngine::start(lifecycle::Config::DEFAULT).await;
    let behaviour = Behaviour {
        answer_pings: false,
        ..Behaviour::default()
    };
    let host = t.host(behaviour).await;
    let started = Instant::now();
    let (code, reason) = host
        .closed(Duration::from_secs(25))
        .await
        .expect("never closed");
    assert_eq!(code, 1011);
    assert!(reason.starts_with("ws.timed_out#"), "{reason}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(14) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    assert!(host.pings_received() >= 4);
    t.wait_envoys(0).await;
}
