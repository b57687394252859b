//! The real npm client (`rivetkit/client` from rivetkit@2.3.19, and 2.3.11's) against Rust
//! actors: the actors below run on an in-process engine, and `tests/compat/rust-actors/suite.mjs`
//! drives them with the npm client in bare, cbor and json (handles, typed actions, errors,
//! connections and events, hibernation, raw HTTP and WebSocket, schedules, destroy). The suite
//! prints one line per case; where Rust actors knowingly behave differently from npm actors it
//! prints `KNOWN …` lines (its KNOWN table) instead of failing.
//!
//! `tests/compat/rust-actors/mirror.ts` defines the same actors with npm rivetkit; the ignored
//! test at the end runs the same suite against them on the same engine, which is how the
//! suite's expectations were checked against what npm TypeScript actors do.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use rivetkit::http::{Request, Response};
use rivetkit::raw_ws::{WebSocket, WsMessage};
use rivetkit::{actor, ActorOptions, ConnId, Ctx, Error, Registry, RunningRegistry, UserError};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::io::{AsyncBufReadExt, BufReader};

// ---------------------------------------------------------------------------------------------
// Values: creation input, typed arguments and results, identity, destroy.

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CreateInput {
    label: String,
    start: i64,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Values {
    input: Option<CreateInput>,
    count: i64,
}

#[derive(Serialize, Deserialize)]
struct Inner {
    flag: bool,
    ratio: f64,
}

#[derive(Serialize, Deserialize)]
struct Nested {
    name: String,
    inner: Inner,
    scores: Vec<i64>,
}

#[derive(Serialize, Deserialize)]
struct Item {
    id: u32,
    label: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Described {
    doubled: f64,
    shout: String,
    nested: Nested,
    item_ids: Vec<u32>,
    labels: Vec<Option<String>>,
    missing_was_null: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    actor_id: String,
    name: String,
    key: Option<String>,
    count: i64,
}

/// A byte string that crosses the wire as a `Uint8Array` (serde bytes, not a list of numbers).
#[derive(Debug, Clone, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Bytes(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[actor(rename_all = "camelCase")]
impl Values {
    async fn create_state(input: Option<CreateInput>) -> Values {
        Values {
            count: input.as_ref().map_or(0, |i| i.start),
            input,
        }
    }

    async fn get_input(&self) -> Option<CreateInput> {
        self.input.clone()
    }

    async fn increment(&mut self, by: i64) -> i64 {
        self.count += by;
        self.count
    }

    async fn describe(
        &self,
        n: f64,
        s: String,
        nested: Nested,
        items: Vec<Item>,
        missing: Option<String>,
    ) -> Described {
        Described {
            doubled: n * 2.0,
            shout: s.to_uppercase(),
            nested,
            item_ids: items.iter().map(|i| i.id).collect(),
            labels: items.into_iter().map(|i| i.label).collect(),
            missing_was_null: missing.is_none(),
        }
    }

    async fn next_big(&self, x: u64) -> u64 {
        x + 1
    }

    async fn reverse_bytes(&self, bytes: Bytes) -> Bytes {
        let mut b = bytes.0;
        b.reverse();
        Bytes(b)
    }

    async fn nothing(&mut self) {}

    async fn identity(&self, ctx: &mut Ctx<Self>) -> Identity {
        Identity {
            actor_id: ctx.actor_id().to_string(),
            name: ctx.name().to_string(),
            key: ctx.key().map(str::to_string),
            count: self.count,
        }
    }

    async fn destroy(&self, ctx: &mut Ctx<Self>) {
        ctx.destroy();
    }
}

// ---------------------------------------------------------------------------------------------
// Faulty: every kind of action error.

#[derive(Default, Serialize, Deserialize)]
struct Faulty {
    calls: u32,
}

#[actor(rename_all = "camelCase")]
impl Faulty {
    fn options() -> ActorOptions {
        ActorOptions {
            action_timeout: Duration::from_millis(500),
            ..ActorOptions::default()
        }
    }

    async fn user_fail(
        &mut self,
        code: String,
        message: String,
        detail: serde_json::Value,
    ) -> Result<u32, UserError> {
        self.calls += 1;
        Err(UserError::with_code(code, message).metadata(&detail))
    }

    async fn io_fail(&mut self) -> Result<u32, Error> {
        self.calls += 1;
        let bytes = std::fs::read("/nonexistent/rivetkit-npm-client-test")?;
        Ok(bytes.len() as u32)
    }

    async fn slow(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    async fn length(&self, text: String) -> usize {
        text.len()
    }

    async fn calls(&self) -> u32 {
        self.calls
    }
}

// ---------------------------------------------------------------------------------------------
// Chat: connections, parameters, connection state, events.

#[derive(Deserialize)]
struct ChatParams {
    name: String,
    token: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Member {
    name: String,
    said: u32,
}

#[derive(Default, Serialize, Deserialize)]
struct Chat {
    /// `connect:<name>` / `disconnect:<name>` for realtime connections, in order.
    log: Vec<String>,
    messages: u32,
}

#[derive(Serialize)]
struct Message {
    from: String,
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WhoAmI {
    id: String,
    name: String,
    said: u32,
    realtime: bool,
}

#[derive(Serialize)]
struct Counts {
    total: usize,
    realtime: usize,
}

#[actor(rename_all = "camelCase")]
impl Chat {
    async fn on_before_connect(&mut self, params: &Option<ChatParams>) -> Result<(), UserError> {
        match params {
            Some(p) if p.token.as_deref() == Some("bad") => {
                Err(UserError::with_code("forbidden", "bad token")
                    .metadata(&serde_json::json!({ "name": p.name })))
            }
            _ => Ok(()),
        }
    }

    async fn create_conn_state(&mut self, params: &Option<ChatParams>) -> Member {
        Member {
            name: params
                .as_ref()
                .map_or_else(|| "anonymous".to_string(), |p| p.name.clone()),
            said: 0,
        }
    }

    async fn on_connect(&mut self, ctx: &mut Ctx<Self>) {
        let Some(conn) = ctx.conn().filter(|c| c.is_realtime()) else {
            return;
        };
        let name = conn.state().name.clone();
        self.log.push(format!("connect:{name}"));
        ctx.broadcast("joined", &name);
    }

    async fn on_disconnect(&mut self, ctx: &mut Ctx<Self>) {
        let Some(conn) = ctx.conn().filter(|c| c.is_realtime()) else {
            return;
        };
        let name = conn.state().name.clone();
        self.log.push(format!("disconnect:{name}"));
        ctx.broadcast("left", &name);
    }

    async fn say(&mut self, ctx: &mut Ctx<Self>, text: String) -> u32 {
        self.messages += 1;
        let (from, said) = match ctx.conn_mut() {
            Some(conn) => {
                let state = conn.state_mut();
                state.said += 1;
                (state.name.clone(), state.said)
            }
            None => ("nobody".to_string(), 0),
        };
        ctx.broadcast("message", &Message { from, text });
        said
    }

    async fn whoami(&self, ctx: &mut Ctx<Self>) -> Option<WhoAmI> {
        ctx.conn().map(|c| WhoAmI {
            id: c.id().to_string(),
            name: c.state().name.clone(),
            said: c.state().said,
            realtime: c.is_realtime(),
        })
    }

    async fn whisper(&self, ctx: &mut Ctx<Self>, to: String, text: String) -> bool {
        let from = ctx
            .conn()
            .map_or_else(|| "nobody".to_string(), |c| c.state().name.clone());
        match ctx.conns().find(|c| c.id().as_str() == to) {
            Some(conn) => {
                conn.send("whisper", &Message { from, text });
                true
            }
            None => false,
        }
    }

    async fn announce(&self, ctx: &mut Ctx<Self>, event: String, text: String) {
        ctx.broadcast(&event, &text);
    }

    async fn conn_count(&self, ctx: &mut Ctx<Self>) -> Counts {
        Counts {
            total: ctx.conns().count(),
            realtime: ctx.conns().filter(|c| c.is_realtime()).count(),
        }
    }

    async fn kick(&self, ctx: &mut Ctx<Self>, who: String, reason: String) -> bool {
        let target: Option<ConnId> = ctx
            .conns()
            .find(|c| c.is_realtime() && c.state().name == who)
            .map(|c| c.id().clone());
        match target.and_then(|id| ctx.conn_by_id(&id)) {
            Some(conn) => {
                conn.disconnect(&reason);
                true
            }
            None => false,
        }
    }

    async fn log(&self) -> Vec<String> {
        self.log.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Sleepy: sleeps after 1 s idle or on request; connections hibernate.

#[derive(Default, Serialize, Deserialize)]
struct Sleepy {
    count: i64,
    wakes: u32,
    sleeps: u32,
}

#[derive(Deserialize)]
struct SleepyParams {
    name: String,
}

#[derive(Serialize, Deserialize)]
struct SleepyConn {
    name: String,
    actions: u32,
}

#[derive(Serialize)]
struct SleepyInfo {
    count: i64,
    wakes: u32,
    sleeps: u32,
    conn: Option<SleepyConnInfo>,
}

#[derive(Serialize)]
struct SleepyConnInfo {
    name: String,
    actions: u32,
}

#[actor(rename_all = "camelCase")]
impl Sleepy {
    fn options() -> ActorOptions {
        ActorOptions {
            sleep_timeout: Duration::from_millis(1000),
            ..ActorOptions::default()
        }
    }

    async fn on_wake(&mut self) {
        self.wakes += 1;
    }

    async fn on_sleep(&mut self) {
        self.sleeps += 1;
    }

    async fn create_conn_state(&mut self, params: &Option<SleepyParams>) -> SleepyConn {
        SleepyConn {
            name: params
                .as_ref()
                .map_or_else(|| "anonymous".to_string(), |p| p.name.clone()),
            actions: 0,
        }
    }

    async fn increment(&mut self, ctx: &mut Ctx<Self>, by: i64) -> i64 {
        self.count += by;
        if let Some(conn) = ctx.conn_mut() {
            conn.state_mut().actions += 1;
        }
        ctx.broadcast("changed", &self.count);
        self.count
    }

    async fn info(&self, ctx: &mut Ctx<Self>) -> SleepyInfo {
        SleepyInfo {
            count: self.count,
            wakes: self.wakes,
            sleeps: self.sleeps,
            conn: ctx
                .conn()
                .filter(|c| c.is_realtime())
                .map(|c| SleepyConnInfo {
                    name: c.state().name.clone(),
                    actions: c.state().actions,
                }),
        }
    }

    async fn nap(&self, ctx: &mut Ctx<Self>) {
        ctx.sleep();
    }
}

// ---------------------------------------------------------------------------------------------
// Raw: `on_request` and `on_websocket`. Plain: neither.

#[derive(Default, Serialize, Deserialize)]
struct Raw {
    requests: u32,
}

#[actor(rename_all = "camelCase")]
impl Raw {
    async fn on_request(&mut self, request: Request) -> Option<Response> {
        self.requests += 1;
        match request.path_only() {
            "/missing" => None,
            "/status/418" => Some(
                Response::new(418)
                    .header("x-echo-status", "418")
                    .body(b"teapot".to_vec()),
            ),
            _ => Some(
                Response::json(&serde_json::json!({
                    "method": request.method,
                    "path": request.path_only(),
                    "query": request.query(),
                    "custom": request.header("x-custom"),
                    "contentType": request.header("content-type"),
                    "body": String::from_utf8_lossy(&request.body),
                    "requests": self.requests,
                }))
                .status(201)
                .header("x-echo", "yes"),
            ),
        }
    }

    async fn on_websocket(&mut self, ctx: &mut Ctx<Self>, mut socket: WebSocket) {
        socket.send(WsMessage::Text(format!("hello {}", socket.path())));
        ctx.wait_until(async move {
            while let Some(message) = socket.recv().await {
                match message {
                    WsMessage::Text(t) => socket.send(WsMessage::Text(format!("echo:{t}"))),
                    binary => socket.send(binary),
                }
            }
        });
    }

    async fn requests(&self) -> u32 {
        self.requests
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Plain {}

#[actor(rename_all = "camelCase")]
impl Plain {
    async fn ping(&self) -> String {
        "pong".into()
    }
}

// ---------------------------------------------------------------------------------------------
// Timer: an action that schedules another.

#[derive(Default, Serialize, Deserialize)]
struct Timer {
    count: i64,
}

#[actor(rename_all = "camelCase")]
impl Timer {
    async fn bump_later(&mut self, ctx: &mut Ctx<Self>, ms: u64, by: i64) -> Result<String, Error> {
        ctx.schedule()
            .after(Duration::from_millis(ms), "bump", &(by,))
    }

    async fn bump(&mut self, ctx: &mut Ctx<Self>, by: i64) {
        self.count += by;
        ctx.broadcast("bumped", &self.count);
    }

    async fn get_count(&self) -> i64 {
        self.count
    }
}

// ---------------------------------------------------------------------------------------------
// Running the suite

fn registry() -> Registry {
    Registry::new()
        .register::<Values>("values")
        .register::<Faulty>("faulty")
        .register::<Chat>("chat")
        .register::<Sleepy>("sleepy")
        .register::<Raw>("raw")
        .register::<Plain>("plain")
        .register::<Timer>("timer")
}

/// Longest the whole suite may take.
const SUITE_LIMIT: Duration = Duration::from_secs(300);

/// Kills the suite's whole process group when dropped: node re-executes itself (for the
/// WebSocket flag on Node 20) and may start an actor host, and those must not outlive a
/// failed or timed-out test.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Runs `node rust-actors/suite.mjs` against `running` with `args`, echoing its output as it
/// comes, and fails with the failing cases if it does not exit 0.
async fn run_suite(running: &RunningRegistry, args: &[&str]) {
    let started = Instant::now();
    let mut child = tokio::process::Command::new("node")
        .arg("rust-actors/suite.mjs")
        .args(args)
        .current_dir(rivet_test_support::compat_dir())
        .env("RIVETKIT_SUITE_ENDPOINT", running.endpoint())
        // The client must reach only the engine given above.
        .env_remove("RIVET_ENGINE")
        .env_remove("RIVET_ENDPOINT")
        .env_remove("RIVET_TOKEN")
        .env_remove("RIVET_NAMESPACE")
        .env_remove("RIVET_POOL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("failed to run `node` (is Node.js installed?)");
    let _group = GroupGuard(child.id().map(|p| p as i32));
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = tokio::spawn(echo_lines(stdout, "suite"));
    let err = tokio::spawn(echo_lines(stderr, "suite stderr"));
    let status = match tokio::time::timeout(SUITE_LIMIT, child.wait()).await {
        Ok(status) => Some(status.expect("waiting for node")),
        Err(_) => None,
    };
    drop(_group);
    let out = out.await.unwrap();
    let err = err.await.unwrap();
    let failures: Vec<&String> = out.iter().filter(|l| l.starts_with("FAIL")).collect();
    let summary = out
        .iter()
        .rev()
        .find(|l| l.starts_with("summary:"))
        .cloned()
        .unwrap_or_else(|| "no summary line".into());
    let Some(status) = status else {
        panic!(
            "npm client suite {args:?} did not finish within {SUITE_LIMIT:?}\n{}\n--- stderr\n{}",
            out.join("\n"),
            err.join("\n")
        );
    };
    assert!(
        status.success(),
        "npm client suite {args:?} exited with {status} after {:.1} s: {summary}\n\
         failing cases:\n  {}\n--- full output\n{}\n--- stderr\n{}",
        started.elapsed().as_secs_f64(),
        if failures.is_empty() {
            "(none reported: see the output)".to_string()
        } else {
            failures
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        },
        out.join("\n"),
        err.join("\n"),
    );
    assert!(summary.contains(" 0 failed"), "{summary}");
}

/// Prints each line as it arrives (visible live with `--no-capture`) and returns them all.
async fn echo_lines(reader: impl tokio::io::AsyncRead + Unpin, label: &str) -> Vec<String> {
    let mut lines = BufReader::new(reader).lines();
    let mut all = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("[{label}] {line}");
        all.push(line);
    }
    all
}

async fn start() -> (RunningRegistry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let running = common::start_embedded(registry(), Some(dir.path())).await;
    (running, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_2_3_19_against_rust_actors() {
    let (running, _dir) = start().await;
    run_suite(&running, &["--client", "2.3.19"]).await;
    running.shutdown().await.unwrap();
}

/// rivetkit@2.3.11's client speaks client protocol v4 too (its codec's current version is 4),
/// so every encoding works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_2_3_11_against_rust_actors() {
    let (running, _dir) = start().await;
    run_suite(&running, &["--client", "2.3.11"]).await;
    running.shutdown().await.unwrap();
}

/// The same suite against `tests/compat/rust-actors/mirror.ts` (the same actors in npm
/// rivetkit) on the same engine: what the expectations were checked against. Ignored by
/// default because it adds an npm actor host (a cold tsx start takes a while); run it with
/// `cargo nextest run -p rivetkit --test npm_client --run-ignored only`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "comparison run against npm TypeScript actors; run explicitly"]
async fn npm_client_2_3_19_against_the_typescript_mirror() {
    let (running, _dir) = start().await;
    run_suite(&running, &["--client", "2.3.19", "--target", "ts"]).await;
    running.shutdown().await.unwrap();
}

/// Serves the test actors until killed, for running the suite by hand while debugging:
/// `cargo nextest run -p rivetkit --test npm_client --run-ignored only serve --no-capture`,
/// then `node rust-actors/suite.mjs --endpoint <printed URL> --only …` in tests/compat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serves the actors for manual suite runs; never ends"]
async fn serve_the_test_actors() {
    let (running, _dir) = start().await;
    println!("test actors served at {}", running.endpoint());
    std::future::pending::<()>().await;
}
