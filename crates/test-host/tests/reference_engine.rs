//! The test host against the real reference engine (`@rivetkit/engine-cli-linux-x64-musl`
//! 2.3.19, installed by `npm ci --ignore-scripts` in `tests/compat`): this checks the host speaks
//! the protocol exactly as the reference expects, and pins reference behaviour our engine must
//! match. Each test starts its own reference engine on free ports with file-system storage in a
//! temporary directory. Skipped (with a message) only when the binary is not installed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rivet_test_host::protocol::{
    ActorCheckpoint, Command, KvGetRequest, KvListPrefixQuery, KvListQuery, KvListRequest,
    KvPutRequest, KvRequestData, KvResponseData, SqliteCommitFinalizeRequest,
    SqliteCommitFinalizeResponse, SqliteCommitRequest, SqliteCommitResponse,
    SqliteCommitStageBeginRequest, SqliteCommitStageBeginResponse, SqliteCommitStageSegmentRequest,
    SqliteCommitStageSegmentResponse, SqliteDirtyPage, SqliteGetPagesRequest,
    SqliteGetPagesResponse, StopActorReason,
};
use rivet_test_host::{Behaviour, HostError, HostOptions, TestHost};
use rivet_test_support::{free_port, get, send, try_send, wait_healthy};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);
const PAGE: usize = 4096;

/// A reference engine child process; killed on drop.
struct RefEngine {
    child: tokio::process::Child,
    guard: SocketAddr,
    dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/compat/node_modules/@rivetkit/engine-cli-linux-x64-musl/rivet-engine")
}

impl RefEngine {
    /// Starts the reference engine, or returns `None` (after saying so) if it is not installed.
    async fn start() -> Option<Self> {
        let bin = binary();
        if !bin.exists() {
            eprintln!(
                "SKIPPED: reference engine not installed at {} (run `npm ci --ignore-scripts` in tests/compat)",
                bin.display()
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (guard, peer, metrics) = (free_port(), free_port(), free_port());
        let config = json!({
            "file_system": { "path": dir.path().join("db") },
            "guard": { "host": "127.0.0.1", "port": guard },
            "api_peer": { "host": "127.0.0.1", "port": peer },
            "metrics": { "host": "127.0.0.1", "port": metrics },
            // Telemetry would try to reach the internet.
            "telemetry": { "enabled": false },
        });
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("engine.log")).unwrap();
        let child = tokio::process::Command::new(&bin)
            .arg("start")
            .arg("--config")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let guard: SocketAddr = format!("127.0.0.1:{guard}").parse().unwrap();
        wait_healthy(guard, Duration::from_secs(30)).await;
        let engine = Self { child, guard, dir };
        // `/health` answers before the namespace and config stores are usable; a runner config
        // write succeeding is the first sign that the engine is really ready.
        engine.put_runner_config("ready-probe").await;
        Some(engine)
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.guard)
    }

    async fn json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let response = send(
            self.guard,
            method,
            path,
            &[("content-type", "application/json")],
            &body.to_string(),
        )
        .await;
        let status = response.status;
        (status, response.json())
    }

    /// `PUT /runner-configs/<pool>`. The reference answers `/health` before it is ready: for a
    /// short while after start this fails with 500 ("replica 1 has not been configured yet")
    /// or 400 `namespace.not_found` for `default`, so retry those until a deadline.
    async fn put_runner_config(&self, pool: &str) {
        let start = Instant::now();
        loop {
            let (status, body) = self
                .json(
                    "PUT",
                    &format!("/runner-configs/{pool}?namespace=default"),
                    json!({"datacenters": {"default": {"normal": {}}}}),
                )
                .await;
            if status == 200 {
                return;
            }
            let not_ready = status == 500 || body["code"] == "not_found";
            assert!(
                not_ready && start.elapsed() < WAIT,
                "PUT runner config: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn create_actor(&self, pool: &str, key: &str) -> String {
        let (status, body) = self
            .json(
                "POST",
                "/actors?namespace=default",
                json!({"name": "counter", "key": key, "runner_name_selector": pool, "crash_policy": "sleep"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["actor"]["actor_id"].as_str().unwrap().to_string()
    }

    async fn actor(&self, actor_id: &str) -> Value {
        let response = get(
            self.guard,
            &format!("/actors?namespace=default&actor_ids={actor_id}"),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()["actors"][0].clone()
    }

    /// Polls the actor until `field` is set (non-null); returns the actor.
    async fn wait_actor_field(&self, actor_id: &str, field: &str) -> Value {
        let start = Instant::now();
        loop {
            let actor = self.actor(actor_id).await;
            if !actor[field].is_null() {
                return actor;
            }
            assert!(
                start.elapsed() < WAIT,
                "{field} not set within {WAIT:?}: {actor}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `GET /envoys` until `pred` holds for the list of envoy keys.
    async fn wait_envoys(&self, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let response = get(self.guard, "/envoys?namespace=default").await;
            assert_eq!(response.status, 200, "{}", response.body);
            let keys: Vec<String> = response.json()["envoys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["envoy_key"].as_str().unwrap().to_string())
                .collect();
            if pred(&keys) {
                return keys;
            }
            assert!(start.elapsed() < WAIT, "envoys never matched: {keys:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RefEngine {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("engine.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- reference engine log (last 40 lines, newest first) ---");
            for line in tail {
                eprintln!("{}", line.chars().take(400).collect::<String>());
            }
        }
    }
}

fn host_options(engine: &RefEngine, pool: &str, protocol_version: u16) -> HostOptions {
    let mut opts = HostOptions::new(engine.endpoint(), pool);
    opts.protocol_version = protocol_version;
    opts.actor_names = vec!["counter".into()];
    opts
}

/// Connects a host, creates an actor and checks the StartActor command and connectability.
async fn start_actor(engine: &RefEngine, host: &TestHost, pool: &str, key: &str) -> String {
    let actor_id = engine.create_actor(pool, key).await;
    let cmd = host.next_command(WAIT).await.expect("StartActor");
    assert_eq!(
        cmd.checkpoint,
        ActorCheckpoint {
            actor_id: actor_id.clone(),
            generation: 1,
            index: 1
        }
    );
    let Command::StartActor(start) = &cmd.inner else {
        panic!("expected StartActor, got {cmd:?}");
    };
    assert_eq!(start.config.name, "counter");
    assert_eq!(start.config.key.as_deref(), Some(key));
    assert_eq!(start.config.input, None);
    assert!(start.hibernating_requests.is_empty());
    assert_eq!(host.wait_running(&actor_id, WAIT).await, Some(1));
    let actor = engine.wait_actor_field(&actor_id, "connectable_ts").await;
    assert!(actor["sleep_ts"].is_null(), "{actor}");
    actor_id
}

fn page(fill: u8) -> Vec<u8> {
    vec![fill; PAGE]
}

async fn kv_round_trip(host: &TestHost, actor_id: &str) {
    let put = host
        .kv(
            actor_id,
            KvRequestData::Put(KvPutRequest {
                keys: vec![b"a".to_vec(), b"c".to_vec(), b"pre/x".to_vec()],
                values: vec![b"1".to_vec(), b"333".to_vec(), b"x".to_vec()],
            }),
        )
        .await
        .unwrap();
    assert_eq!(put, KvResponseData::Put);

    let got = host
        .kv(
            actor_id,
            KvRequestData::Get(KvGetRequest {
                keys: vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()],
            }),
        )
        .await
        .unwrap();
    let KvResponseData::Get(got) = got else {
        panic!("expected Get, got {got:?}");
    };
    // Only existing keys, in request order.
    assert_eq!(got.keys, vec![b"c".to_vec(), b"a".to_vec()]);
    assert_eq!(got.values, vec![b"333".to_vec(), b"1".to_vec()]);
    assert_eq!(got.metadata.len(), 2);
    assert_eq!(got.metadata[0].version, b"2.3.19".to_vec());
    assert!(got.metadata[0].update_ts > 0);

    let listed = host
        .kv(
            actor_id,
            KvRequestData::List(KvListRequest {
                query: KvListQuery::All,
                reverse: None,
                limit: None,
            }),
        )
        .await
        .unwrap();
    let KvResponseData::List(listed) = listed else {
        panic!("expected List, got {listed:?}");
    };
    assert_eq!(
        listed.keys,
        vec![b"a".to_vec(), b"c".to_vec(), b"pre/x".to_vec()]
    );

    let prefixed = host
        .kv(
            actor_id,
            KvRequestData::List(KvListRequest {
                query: KvListQuery::Prefix(KvListPrefixQuery {
                    key: b"pre/".to_vec(),
                }),
                reverse: Some(true),
                limit: Some(1),
            }),
        )
        .await
        .unwrap();
    let KvResponseData::List(prefixed) = prefixed else {
        panic!("expected List, got {prefixed:?}");
    };
    assert_eq!(prefixed.keys, vec![b"pre/x".to_vec()]);
    assert_eq!(prefixed.values, vec![b"x".to_vec()]);
}

async fn sqlite_round_trip(host: &TestHost, actor_id: &str, generation: u64) {
    let before = host
        .sqlite_get_pages(SqliteGetPagesRequest {
            actor_id: actor_id.into(),
            pgnos: vec![1],
            expected_generation: Some(generation),
            expected_head_txid: None,
        })
        .await
        .unwrap();
    let SqliteGetPagesResponse::Error(err) = before else {
        panic!("expected database_not_found before the first commit, got {before:?}");
    };
    assert_eq!(
        (err.group.as_str(), err.code.as_str()),
        ("depot", "database_not_found")
    );

    let committed = host
        .sqlite_commit(SqliteCommitRequest {
            actor_id: actor_id.into(),
            dirty_pages: vec![
                SqliteDirtyPage {
                    pgno: 1,
                    bytes: page(7),
                },
                SqliteDirtyPage {
                    pgno: 3,
                    bytes: page(9),
                },
            ],
            db_size_pages: 3,
            now_ms: 1,
            expected_generation: Some(generation),
            expected_head_txid: Some(0),
        })
        .await
        .unwrap();
    let SqliteCommitResponse::Ok(ok) = committed else {
        panic!("commit failed: {committed:?}");
    };
    assert_eq!(ok.head_txid, Some(1));

    let read = host
        .sqlite_get_pages(SqliteGetPagesRequest {
            actor_id: actor_id.into(),
            pgnos: vec![3, 1, 2, 4],
            expected_generation: Some(generation),
            expected_head_txid: None,
        })
        .await
        .unwrap();
    let SqliteGetPagesResponse::Ok(read) = read else {
        panic!("get_pages failed: {read:?}");
    };
    assert_eq!(read.head_txid, Some(1));
    let pages: Vec<(u32, Option<Vec<u8>>)> =
        read.pages.into_iter().map(|p| (p.pgno, p.bytes)).collect();
    assert_eq!(
        pages,
        vec![
            (3, Some(page(9))),
            (1, Some(page(7))),
            // Inside the size but never written: zeros. Beyond the size: absent.
            (2, Some(page(0))),
            (4, None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v8_start_kv_sqlite_and_sleep() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    engine.put_runner_config("pool-a").await;
    let host = TestHost::connect(host_options(&engine, "pool-a", 8))
        .await
        .unwrap();
    assert_eq!(host.init().envoy_lost_threshold, 15_000);
    assert_eq!(host.init().actor_stop_threshold, 1_800_000);
    assert_eq!(host.init().max_response_payload_size, 20 * 1024 * 1024);
    let key = host.envoy_key().to_string();
    engine.wait_envoys(|keys| keys.contains(&key)).await;

    let actor_id = start_actor(&engine, &host, "pool-a", "k1").await;
    assert_eq!(host.actors(), vec![(actor_id.clone(), 1)]);
    kv_round_trip(&host, &actor_id).await;
    sqlite_round_trip(&host, &actor_id, 1).await;

    let intent_index = host.sleep_intent(&actor_id, 1).await.unwrap();
    assert_eq!(intent_index, 1, "Running was event 0");
    let stop = host.next_command(WAIT).await.expect("StopActor");
    assert_eq!(
        stop.checkpoint,
        ActorCheckpoint {
            actor_id: actor_id.clone(),
            generation: 1,
            index: 2
        }
    );
    assert!(
        matches!(&stop.inner, Command::StopActor(s) if s.reason == StopActorReason::SleepIntent),
        "{stop:?}"
    );
    let actor = engine.wait_actor_field(&actor_id, "sleep_ts").await;
    assert!(actor["destroy_ts"].is_null(), "{actor}");
    assert!(host.actors().is_empty());
    assert!(host.duplicate_commands().is_empty());
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v6_start_kv_and_sqlite() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    engine.put_runner_config("pool-six").await;
    let host = TestHost::connect(host_options(&engine, "pool-six", 6))
        .await
        .unwrap();
    let actor_id = start_actor(&engine, &host, "pool-six", "k6").await;
    kv_round_trip(&host, &actor_id).await;
    sqlite_round_trip(&host, &actor_id, 1).await;

    // Staged commits do not exist in v6: refused locally, nothing reaches the engine.
    let staged = host
        .sqlite_stage_begin(SqliteCommitStageBeginRequest {
            actor_id: actor_id.clone(),
            expected_generation: Some(1),
            expected_head_txid: Some(1),
        })
        .await;
    assert!(matches!(staged, Err(HostError::Protocol(_))), "{staged:?}");

    // The pool's protocol_version follows the host that connected.
    let response = get(engine.guard, "/runner-configs?namespace=default").await;
    let body = response.json();
    assert_eq!(
        body["runner_configs"]["pool-six"]["datacenters"]["default"]["protocol_version"], 6,
        "{body}"
    );
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v8_staged_commit() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    engine.put_runner_config("pool-s").await;
    let host = TestHost::connect(host_options(&engine, "pool-s", 8))
        .await
        .unwrap();
    let actor_id = start_actor(&engine, &host, "pool-s", "ks").await;

    let begin = host
        .sqlite_stage_begin(SqliteCommitStageBeginRequest {
            actor_id: actor_id.clone(),
            expected_generation: Some(1),
            expected_head_txid: Some(0),
        })
        .await
        .unwrap();
    let SqliteCommitStageBeginResponse::Ok(begin) = begin else {
        panic!("stage begin failed: {begin:?}");
    };
    assert_eq!(begin.txid, 1);
    for first_pgno in [0u32, 320] {
        let pages = (first_pgno.max(1)..first_pgno + 3)
            .map(|pgno| SqliteDirtyPage {
                pgno,
                bytes: page(pgno as u8),
            })
            .collect();
        let segment = host
            .sqlite_stage_segment(SqliteCommitStageSegmentRequest {
                actor_id: actor_id.clone(),
                expected_generation: Some(1),
                txid: begin.txid,
                first_pgno,
                dirty_pages: pages,
            })
            .await
            .unwrap();
        let SqliteCommitStageSegmentResponse::Ok(segment) = segment else {
            panic!("segment {first_pgno} failed: {segment:?}");
        };
        assert!(segment.staged_bytes > 0);
    }
    let finalized = host
        .sqlite_commit_finalize(SqliteCommitFinalizeRequest {
            actor_id: actor_id.clone(),
            expected_generation: Some(1),
            txid: begin.txid,
            new_db_size_pages: 323,
            now_ms: 1,
            segment_first_pgnos: vec![0, 320],
        })
        .await
        .unwrap();
    let SqliteCommitFinalizeResponse::Ok(finalized) = finalized else {
        panic!("finalize failed: {finalized:?}");
    };
    assert_eq!(finalized.head_txid, Some(1));

    let read = host
        .sqlite_get_pages(SqliteGetPagesRequest {
            actor_id: actor_id.clone(),
            pgnos: vec![2, 322, 100],
            expected_generation: Some(1),
            expected_head_txid: Some(1),
        })
        .await
        .unwrap();
    let SqliteGetPagesResponse::Ok(read) = read else {
        panic!("get_pages failed: {read:?}");
    };
    let pages: Vec<Option<Vec<u8>>> = read.pages.into_iter().map(|p| p.bytes).collect();
    assert_eq!(
        pages,
        vec![Some(page(2)), Some(page(322u32 as u8)), Some(page(0))]
    );
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_without_runner_config_is_refused_after_upgrade() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    let err = TestHost::connect(host_options(&engine, "no-such-pool", 8))
        .await
        .unwrap_err();
    let HostError::Refused { code, reason } = err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert_eq!(code, 1011);
    assert!(reason.starts_with("ws.no_runner_config#"), "{reason}");

    let mut opts = host_options(&engine, "no-such-pool", 8);
    opts.namespace = "nope".into();
    let err = TestHost::connect(opts).await.unwrap_err();
    assert!(
        matches!(&err, HostError::Refused { code: 1011, reason } if reason.starts_with("namespace.not_found#")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_commands_are_replayed_on_reconnect_and_deduplicated() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    engine.put_runner_config("pool-r").await;
    let mut opts = host_options(&engine, "pool-r", 8);
    opts.behaviour = Behaviour {
        ack_commands: false,
        ..Behaviour::default()
    };
    let mut host = TestHost::connect(opts).await.unwrap();
    let actor_id = start_actor(&engine, &host, "pool-r", "kr").await;

    host.reconnect().await.unwrap();
    let start = Instant::now();
    while host.duplicate_commands().is_empty() {
        assert!(start.elapsed() < WAIT, "StartActor was not replayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let replayed = host.duplicate_commands();
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0].checkpoint.actor_id, actor_id);
    assert_eq!(replayed[0].checkpoint.index, 1);
    assert!(matches!(replayed[0].inner, Command::StartActor(_)));
    // Not handed to the test again, and the actor keeps running on this host.
    assert!(host
        .next_command(Duration::from_millis(200))
        .await
        .is_none());
    assert_eq!(host.actors(), vec![(actor_id.clone(), 1)]);

    // Acknowledged now: a second reconnect replays nothing.
    host.ack_commands(vec![replayed[0].checkpoint.clone()])
        .await
        .unwrap();
    // Give the ack a round trip to land: a KV request is answered after the ack is read.
    host.kv(&actor_id, KvRequestData::Drop).await.unwrap();
    host.reconnect().await.unwrap();
    host.kv(&actor_id, KvRequestData::Drop).await.unwrap();
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        assert_eq!(host.duplicate_commands().len(), 1, "replayed after ack");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.close().await;
}

/// The reference acknowledges events only once more than 250 are pending, acking the highest
/// index it has persisted at that moment; it never acks on a timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_acknowledged_once_more_than_250_are_pending() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    engine.put_runner_config("pool-e").await;
    let host = TestHost::connect(host_options(&engine, "pool-e", 8))
        .await
        .unwrap();
    let actor_id = start_actor(&engine, &host, "pool-e", "ke").await;
    let key = (actor_id.clone(), 1);
    // Event 0 was Running. Send alarm updates one frame each, as a host would, until the first
    // acknowledgement shows up.
    let mut last = 0;
    while !host.acked_events().contains_key(&key) && last < 400 {
        last = host.set_alarm(&actor_id, 1, None).await.unwrap();
    }
    assert!(
        host.wait_acked_event(&actor_id, 1, 250, WAIT).await,
        "no ack after {last} events: {:?}",
        host.acked_events()
    );
    let acked = host.acked_events()[&key];
    assert!(
        last >= 250 && acked <= last,
        "first ack {acked} after sending up to {last}"
    );
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_wakes_a_sleeping_actor_with_the_next_generation() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    engine.put_runner_config("pool-w").await;
    let host = TestHost::connect(host_options(&engine, "pool-w", 8))
        .await
        .unwrap();
    let actor_id = start_actor(&engine, &host, "pool-w", "kw").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let alarm_ts = now + 1_000;
    host.set_alarm(&actor_id, 1, Some(alarm_ts)).await.unwrap();
    host.sleep_intent(&actor_id, 1).await.unwrap();
    let stop = host.next_command(WAIT).await.expect("StopActor");
    assert!(
        matches!(&stop.inner, Command::StopActor(s) if s.reason == StopActorReason::SleepIntent)
    );

    let wake = host.next_command(WAIT).await.expect("StartActor on alarm");
    assert_eq!(
        wake.checkpoint,
        ActorCheckpoint {
            actor_id: actor_id.clone(),
            generation: 2,
            index: 1
        }
    );
    let Command::StartActor(start) = &wake.inner else {
        panic!("expected StartActor, got {wake:?}");
    };
    // createTs is the time of this allocation, not of the actor's creation.
    assert!(start.config.create_ts >= alarm_ts - 100, "{wake:?}");
    assert_eq!(host.wait_running(&actor_id, WAIT).await, Some(2));
    // Event indexes start again at 0 for the new generation: the next one is 1.
    assert_eq!(host.set_alarm(&actor_id, 2, None).await.unwrap(), 1);

    // The SQLite generation fence: generation 1 is stale now.
    let stale = host
        .sqlite_get_pages(SqliteGetPagesRequest {
            actor_id: actor_id.clone(),
            pgnos: vec![1],
            expected_generation: Some(1),
            expected_head_txid: None,
        })
        .await
        .unwrap();
    assert!(
        matches!(&stale, SqliteGetPagesResponse::Error(_)),
        "{stale:?}"
    );
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_destroy_and_drain() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    engine.put_runner_config("pool-c").await;
    let host = TestHost::connect(host_options(&engine, "pool-c", 8))
        .await
        .unwrap();
    let crashed = start_actor(&engine, &host, "pool-c", "crash").await;
    let destroyed = start_actor(&engine, &host, "pool-c", "destroy").await;
    let drained = start_actor(&engine, &host, "pool-c", "drain").await;

    // Unsolicited Stopped{Error}: the actor sleeps with a `crashed` error; no command follows.
    host.stopped(
        &crashed,
        1,
        rivet_test_host::protocol::StopCode::Error,
        Some("boom".into()),
    )
    .await
    .unwrap();
    let actor = engine.wait_actor_field(&crashed, "sleep_ts").await;
    assert_eq!(actor["error"], json!({"crashed": {"message": "boom"}}));
    assert!(actor["connectable_ts"].is_null(), "{actor}");

    // DELETE: StopActor{Destroy}, then destroyed once the host reports the stop.
    let response = send(
        engine.guard,
        "DELETE",
        &format!("/actors/{destroyed}?namespace=default"),
        &[],
        "",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let stop = host.next_command(WAIT).await.expect("StopActor");
    assert_eq!(stop.checkpoint.actor_id, destroyed);
    assert_eq!(stop.checkpoint.index, 2);
    assert!(matches!(&stop.inner, Command::StopActor(s) if s.reason == StopActorReason::Destroy));
    engine.wait_actor_field(&destroyed, "destroy_ts").await;

    // Draining: GoingAway to the remaining actor; with no other host it ends up sleeping with
    // `no_envoys` and a reschedule time. The engine keeps the socket open.
    host.stopping().await.unwrap();
    let key = host.envoy_key().to_string();
    engine.wait_envoys(|keys| !keys.contains(&key)).await;
    let stop = host.next_command(WAIT).await.expect("StopActor");
    assert_eq!(stop.checkpoint.actor_id, drained);
    assert!(matches!(&stop.inner, Command::StopActor(s) if s.reason == StopActorReason::GoingAway));
    let actor = engine.wait_actor_field(&drained, "reschedule_ts").await;
    assert_eq!(actor["error"], "no_envoys", "{actor}");
    assert!(host.closed(Duration::from_millis(200)).await.is_none());
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_host_leaves_envoys_and_newer_connection_evicts_older() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    engine.put_runner_config("pool-k").await;
    let opts = host_options(&engine, "pool-k", 8);
    let first = TestHost::connect(opts.clone()).await.unwrap();
    let key = first.envoy_key().to_string();
    engine.wait_envoys(|keys| keys.contains(&key)).await;

    // Same key again: the older socket is evicted with 1000 ws.eviction.
    let second = TestHost::connect(opts).await.unwrap();
    let (code, reason) = first.closed(WAIT).await.expect("older socket closed");
    assert_eq!(code, 1000);
    assert!(reason.starts_with("ws.eviction#"), "{reason}");
    assert!(second.closed(Duration::from_millis(200)).await.is_none());

    second.kill();
    engine.wait_envoys(|keys| !keys.contains(&key)).await;
    // The engine is still fine.
    let health = try_send(engine.guard, "GET", "/health", &[], "")
        .await
        .unwrap();
    assert_eq!(health.status, 200);
}

/// Slow (~16 s): a host that never answers pings is closed `1011 ws.timed_out` ~15 s after
/// connecting, and the actors of a host that vanished become sleeping with
/// `envoy_connection_lost` once `envoyLostThreshold` (15 s) has passed since its last ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_host_times_out_and_vanished_host_loses_its_actors() {
    let Some(engine) = RefEngine::start().await else {
        return;
    };
    engine.put_runner_config("pool-mute").await;
    engine.put_runner_config("pool-gone").await;

    let mut mute = host_options(&engine, "pool-mute", 8);
    mute.behaviour.answer_pings = false;
    let mute = TestHost::connect(mute).await.unwrap();
    let mute_connected = Instant::now();

    let gone = TestHost::connect(host_options(&engine, "pool-gone", 8))
        .await
        .unwrap();
    let actor_id = start_actor(&engine, &gone, "pool-gone", "kg").await;
    let key = gone.envoy_key().to_string();
    gone.kill();
    let killed = Instant::now();
    engine.wait_envoys(|keys| !keys.contains(&key)).await;
    // Right after the disconnect the actor is untouched.
    let actor = engine.actor(&actor_id).await;
    assert!(!actor["connectable_ts"].is_null(), "{actor}");

    let (code, reason) = mute
        .closed(Duration::from_secs(30))
        .await
        .expect("silent host closed");
    let after = mute_connected.elapsed();
    assert_eq!(code, 1011);
    assert!(reason.starts_with("ws.timed_out#"), "{reason}");
    assert!(
        after >= Duration::from_secs(14) && after < Duration::from_secs(25),
        "closed after {after:?}"
    );
    assert!(mute.pings_received() >= 4, "pings every ~3 s");

    let start = Instant::now();
    let actor = loop {
        let actor = engine.actor(&actor_id).await;
        if !actor["sleep_ts"].is_null() {
            break actor;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "actor never lost: {actor}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lost_after = killed.elapsed();
    assert!(
        lost_after >= Duration::from_secs(12) && lost_after < Duration::from_secs(30),
        "lost after {lost_after:?}"
    );
    assert_eq!(
        actor["error"],
        json!({"envoy_connection_lost": {"envoy_key": key}})
    );
    assert!(actor["connectable_ts"].is_null(), "{actor}");
}
