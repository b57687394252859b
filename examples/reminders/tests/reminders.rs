//! The `example-reminders` binary: reminders set, listed, cancelled and fired (with the
//! `reminder` event) while it runs, and reminders that fall due while the process is down —
//! after a graceful stop (SIGTERM) and after `kill -9` — firing when it is started again on
//! the same data directory, with no request to wake the actor.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rivet_test_support::process::ChildProcess;
use rivetkit_client::{ActorHandle, Client};
use serde::Deserialize;

const BIN: &str = env!("CARGO_BIN_EXE_example-reminders");
/// Upper bound for anything the tests wait for (a cold start on a loaded machine).
const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reminder {
    id: String,
    text: String,
    due_at: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fired {
    id: String,
    text: String,
    due_at: i64,
    fired_at: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Server {
    process: ChildProcess,
    client: Client,
}

async fn serve(dir: &Path) -> Server {
    let port = rivet_test_support::free_port();
    let mut process = ChildProcess::spawn(
        "reminders",
        Command::new(BIN)
            .args(["--port", &port.to_string(), "--data-dir"])
            .arg(dir),
    );
    let ready = process.wait_for_line("Reminders is ready on", WAIT).await;
    let endpoint = format!("http://127.0.0.1:{port}");
    assert!(ready.ends_with(&endpoint), "{ready}");
    Server {
        process,
        client: Client::new(endpoint.as_str()).unwrap(),
    }
}

impl Server {
    fn reminders(&self, key: &str) -> ActorHandle {
        self.client.get_or_create("reminders", [key])
    }

    /// Waits until the process has printed `n` fired reminders, and returns those lines.
    async fn fired_lines(&mut self, n: usize, limit: Duration) -> Vec<String> {
        self.process
            .wait_output(&format!("{n} fired reminders"), limit, |out| {
                let lines: Vec<String> = out
                    .lines()
                    .filter(|l| l.starts_with("reminder fired: "))
                    .map(str::to_string)
                    .collect();
                (lines.len() >= n).then_some(lines)
            })
            .await
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_list_cancel_and_fire_with_the_reminder_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path()).await;
    let handle = server.reminders("live");
    let conn = handle.connect();
    let mut events = conn.events("reminder");
    within("the connection", conn.wait_connected())
        .await
        .unwrap();
    // After the subscription (same socket, in order): the events below cannot be missed.
    let none: Vec<Reminder> = conn.action("pending", ()).await.unwrap();
    assert!(none.is_empty());

    let start = now_ms();
    let soon: Reminder = conn.action("remindIn", (300, "soon")).await.unwrap();
    let dropped: Reminder = conn.action("remindIn", (600, "cancelled")).await.unwrap();
    let last: Reminder = handle
        .action("remindAt", (start + 900, "at a time"))
        .await
        .unwrap();
    assert_eq!((soon.id.as_str(), soon.text.as_str()), ("r1", "soon"));
    assert!(soon.due_at >= start + 300);
    assert_eq!(last.due_at, start + 900);
    let pending: Vec<Reminder> = conn.action("pending", ()).await.unwrap();
    assert_eq!(pending, [soon.clone(), dropped.clone(), last.clone()]);
    assert!(conn
        .action::<_, bool>("cancel", (dropped.id.as_str(),))
        .await
        .unwrap());
    assert!(!conn
        .action::<_, bool>("cancel", (dropped.id.as_str(),))
        .await
        .unwrap());

    // Events arrive in due order; the cancelled one, due between them, never does.
    for expected in [&soon, &last] {
        let (fired,): (Fired,) = within("reminder event", events.recv_as())
            .await
            .expect("stream open")
            .unwrap();
        assert_eq!(
            (&fired.id, &fired.text, fired.due_at),
            (&expected.id, &expected.text, expected.due_at)
        );
        assert!(fired.fired_at >= fired.due_at, "{fired:?} fired early");
    }
    let fired: Vec<Fired> = handle.action("fired", ()).await.unwrap();
    assert_eq!(
        fired.iter().map(|f| f.text.as_str()).collect::<Vec<_>>(),
        ["soon", "at a time"]
    );
    let pending: Vec<Reminder> = handle.action("pending", ()).await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
    let lines = server.fired_lines(2, WAIT).await;
    assert!(
        lines[0].starts_with("reminder fired: [live] r1 \"soon\""),
        "{lines:?}"
    );

    // The scheduled action is not for clients; bad input is refused.
    let err = handle.action::<_, ()>("fire", ("r1",)).await.unwrap_err();
    assert!(err.is("user", "not_callable"), "{err}");
    let err = handle
        .action::<_, Reminder>("remindIn", (10, "  "))
        .await
        .unwrap_err();
    assert!(err.is("user", "empty_text"), "{err}");
    let err = handle
        .action::<_, Reminder>("remindAt", (now_ms() + 400 * 24 * 3600 * 1000, "later"))
        .await
        .unwrap_err();
    assert!(err.is("user", "too_far"), "{err}");
    conn.close().await;
}

/// Sets one reminder with `remindIn` and one with `remindAt`, due after `in_ms` and
/// `in_ms + 1000`.
async fn set_two(handle: &ActorHandle, in_ms: u64) -> (Reminder, Reminder) {
    let first: Reminder = handle
        .action("remindIn", (in_ms, "in a few seconds"))
        .await
        .unwrap();
    let second: Reminder = handle
        .action(
            "remindAt",
            (now_ms() + in_ms as i64 + 1000, "at a set time"),
        )
        .await
        .unwrap();
    (first, second)
}

/// After the restart: both fired, each at or after its due time, none left pending.
async fn check_fired_after(handle: &ActorHandle, expected: &[Reminder], restarted_at: i64) {
    let fired: Vec<Fired> = handle.action("fired", ()).await.unwrap();
    assert_eq!(fired.len(), expected.len(), "{fired:?}");
    for (f, r) in fired.iter().zip(expected) {
        assert_eq!((&f.id, &f.text, f.due_at), (&r.id, &r.text, r.due_at));
        assert!(f.fired_at >= f.due_at, "{f:?} fired early");
        assert!(f.fired_at >= restarted_at, "{f:?} fired before the restart");
    }
    let pending: Vec<Reminder> = handle.action("pending", ()).await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_fire_after_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path()).await;
    let (first, second) = set_two(&server.reminders("me"), 4000).await;

    server.process.terminate();
    assert!(server.process.wait_exit(WAIT).await.success());
    assert!(
        now_ms() < first.due_at,
        "the stop took too long to test a restart before the reminders are due"
    );
    let output = server.process.output();
    assert!(!output.contains("reminder fired"), "{output}");
    assert!(output.contains("stopped: pending reminders are saved"));

    let mut server = serve(dir.path()).await;
    let restarted_at = now_ms();
    // Nobody calls the actor: the engine's alarm starts it when the first one is due.
    let lines = server.fired_lines(2, WAIT).await;
    assert!(lines[0].contains("r1 \"in a few seconds\""), "{lines:?}");
    assert!(lines[1].contains("r2 \"at a set time\""), "{lines:?}");
    check_fired_after(&server.reminders("me"), &[first, second], restarted_at).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_fire_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path()).await;
    let (first, second) = set_two(&server.reminders("me"), 2000).await;
    let status = server.process.kill();
    assert!(!status.success());

    let started = Instant::now();
    let mut server = serve(dir.path()).await;
    let restarted_at = now_ms();
    // The engine in the new process finds the actor on the dead process's host; after the
    // lost threshold (15 s) it is rescheduled and its alarm starts it. Still no request.
    let lines = server.fired_lines(2, WAIT).await;
    eprintln!("fired {:?} after the restart", started.elapsed());
    assert!(lines[0].contains("r1 \"in a few seconds\""), "{lines:?}");
    assert!(lines[1].contains("r2 \"at a set time\""), "{lines:?}");
    check_fired_after(&server.reminders("me"), &[first, second], restarted_at).await;
}

#[test]
fn help_lists_the_flags() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in ["--port", "--data-dir", "--memory", "6420"] {
        assert!(help.contains(needle), "no {needle:?} in:\n{help}");
    }
}
