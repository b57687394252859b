//! The chat page in headless Chromium (Debian's `chromium`, driven by npm `playwright-core`
//! in `web/browser-test.mjs`) against the example binary, with a `rivetkit-client`
//! connection in this test as the other user: the page's npm client and the Rust client talk
//! through the Rust actor.
//!
//! Needs, besides the build: Node.js, `npm ci --ignore-scripts && npm run build` in
//! `examples/chat-room/web`, and `/usr/bin/chromium` (or `CHROMIUM`). `scripts/test.sh`
//! provides all three; without them this test fails and says what is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{serve, web_dir, within, WAIT};
use rivet_test_support::process::ChildProcess;
use rivetkit_client::EventStream;
use serde_json::Value;

const ROOM: &str = "browser-room";
const BOB_TEXT: &str = "hi alice, bob here (from Rust)";

/// The next occurrence of a one-argument event, failing at once with the browser side's
/// output if that ends first (e.g. Chromium does not start).
async fn next(events: &mut EventStream, browser: &mut ChildProcess) -> Value {
    let what = format!("event {}", events.event());
    let deadline = Instant::now() + WAIT;
    let recv = events.recv_as::<(Value,)>();
    tokio::pin!(recv);
    loop {
        tokio::select! {
            got = &mut recv => {
                let (value,) = got.unwrap_or_else(|| panic!("{what}: stream closed")).unwrap();
                return value;
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if let Some(status) = browser.try_wait() {
                    panic!(
                        "the browser side exited ({status}) while the test waited for {what}:\n{}",
                        browser.output()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}; browser side's output:\n{}",
                    browser.output()
                );
            }
        }
    }
}

/// Chromium's path, or a failure that says how to get it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "Chromium is not installed at {} (set CHROMIUM to another path): `apt-get install -y \
         chromium` as root, which scripts/test.sh does",
        path.display()
    );
    path
}

/// Fails, saying how to fix it, unless Node.js and the page's npm packages are ready.
fn check_npm_setup(web: &Path) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "Node.js (`node`) is needed to drive the browser; install Node.js 20 and npm"
    );
    let fix = format!(
        "run `cd {} && npm ci --ignore-scripts && npm run build` (scripts/test.sh does it)",
        web.display()
    );
    assert!(
        web.join("node_modules/playwright-core/package.json")
            .is_file(),
        "the page's npm packages are not installed: {fix}"
    );
    assert!(
        web.join("dist/rivetkit-client.js").is_file(),
        "npm rivetkit's browser client is not built: {fix}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_chats_with_a_rust_client_in_headless_chromium() {
    let web = web_dir();
    check_npm_setup(&web);
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &web).await;

    // bob is in the room before the page joins.
    let bob = server.room_as(ROOM, "bob").connect();
    let mut joined = bob.events("joined");
    let mut left = bob.events("left");
    let mut messages = bob.events("message");
    within("bob's connection", bob.wait_connected())
        .await
        .unwrap();
    let members: Vec<String> = bob.action("members", ()).await.unwrap();
    assert_eq!(members, ["bob"]);

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat-room-page.png");
    let mut browser = ChildProcess::spawn(
        "browser",
        Command::new("node")
            .arg("browser-test.mjs")
            .arg(format!("http://{}", server.web))
            .args([ROOM, BOB_TEXT])
            .arg(&screenshot)
            .current_dir(&web)
            .env("CHROMIUM", &chromium),
    );

    // The page first tries to join without a name and is refused: that is no join, so the
    // first `joined` bob hears is alice's.
    let alice = next(&mut joined, &mut browser).await;
    assert_eq!(alice["name"], "alice");
    browser
        .wait_for_line("STEP refused-without-name", Duration::from_secs(5))
        .await;
    let said = next(&mut messages, &mut browser).await;
    assert_eq!(said["from"], "alice");
    assert_eq!(said["text"], "hello from alice");

    let reply: Value = bob.action("sendMessage", (BOB_TEXT,)).await.unwrap();
    assert_eq!(reply["from"], "bob");

    // The page shows bob's message and both members, then closes the browser.
    let status = browser.wait_exit(Duration::from_secs(120)).await;
    let output = browser.output();
    assert!(
        status.success(),
        "browser test failed ({status}):\n{output}"
    );
    for step in ["STEP saw-bob", "STEP members", "PASS"] {
        assert!(output.contains(step), "no {step:?} in:\n{output}");
    }
    assert!(screenshot.is_file());
    eprintln!("screenshot of the page: {}", screenshot.display());

    // Closing the browser closed alice's connection.
    assert_eq!(next(&mut left, &mut browser).await["name"], "alice");
    let members: Vec<String> = bob.action("members", ()).await.unwrap();
    assert_eq!(members, ["bob"]);
    let history: Vec<Value> = bob.action("history", ()).await.unwrap();
    assert_eq!(history, [said, reply]);
    bob.close().await;
}
