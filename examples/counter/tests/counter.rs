//! The `example-counter` binary as a user runs it: served on a free port with a temporary
//! data directory, called over HTTP and over a connection with `rivetkit-client`, called with
//! the curl command it prints, and its `client` command run against it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rivet_test_support::process::ChildProcess;
use rivetkit_client::Client;

const BIN: &str = env!("CARGO_BIN_EXE_example-counter");
/// Upper bound for anything the tests wait for (a cold start on a loaded machine).
const WAIT: Duration = Duration::from_secs(60);

/// The counter served on a free port, storing in `dir`.
struct Server {
    process: ChildProcess,
    endpoint: String,
    addr: SocketAddr,
}

async fn serve(dir: &Path) -> Server {
    let port = rivet_test_support::free_port();
    let mut process = ChildProcess::spawn(
        "counter",
        Command::new(BIN)
            .args(["--port", &port.to_string(), "--data-dir"])
            .arg(dir),
    );
    let ready = process.wait_for_line("Counter is ready on", WAIT).await;
    let endpoint = format!("http://127.0.0.1:{port}");
    assert!(ready.ends_with(&endpoint), "{ready}");
    Server {
        process,
        addr: ([127, 0, 0, 1], port).into(),
        endpoint,
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_over_http_and_events_over_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let client = Client::new(server.endpoint.as_str()).unwrap();

    let http = client.get_or_create("counter", ["shared"]);
    assert_eq!(http.action::<_, i64>("increment", (2,)).await.unwrap(), 2);
    assert_eq!(
        http.action::<_, i64>("increment", ()).await.unwrap(),
        3,
        "the amount defaults to 1"
    );
    assert_eq!(http.action::<_, i64>("getCount", ()).await.unwrap(), 3);

    let conn = client.get_or_create("counter", ["shared"]).connect();
    let mut counts = conn.events("newCount");
    within("the connection", conn.wait_connected())
        .await
        .unwrap();
    assert_eq!(conn.actor_id(), Some(http.resolve().await.unwrap()));
    // The subscription goes out on the socket right after Init; an action sent after it and
    // answered means the actor has it (one socket, handled in order), so the HTTP increment
    // below cannot overtake it.
    assert_eq!(
        within("getCount", conn.action::<_, i64>("getCount", ()))
            .await
            .unwrap(),
        3
    );

    // An increment made over HTTP reaches the connection as an event...
    assert_eq!(http.action::<_, i64>("increment", (10,)).await.unwrap(), 13);
    let (seen,): (i64,) = within("newCount", counts.recv_as())
        .await
        .expect("stream open")
        .unwrap();
    assert_eq!(seen, 13);
    // ...and so does one made over the connection itself.
    assert_eq!(
        within("increment", conn.action::<_, i64>("increment", (1,)))
            .await
            .unwrap(),
        14
    );
    let (seen,): (i64,) = within("newCount", counts.recv_as())
        .await
        .expect("stream open")
        .unwrap();
    assert_eq!(seen, 14);

    // Errors reach the caller with their code and change nothing.
    let err = http
        .action::<_, i64>("increment", (i64::MAX,))
        .await
        .unwrap_err();
    assert!(err.is("user", "overflow"), "{err}");
    assert_eq!(http.action::<_, i64>("getCount", ()).await.unwrap(), 14);

    // Another key is another counter.
    let other = client.get_or_create("counter", ["other"]);
    assert_eq!(other.action::<_, i64>("getCount", ()).await.unwrap(), 0);
    conn.close().await;
}

/// The curl command the binary prints works as printed (its URL and body, sent as is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_curl_command_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path()).await;
    let output = server.process.output();
    let curl = output
        .lines()
        .find(|l| l.trim_start().starts_with("curl -X POST"))
        .unwrap_or_else(|| panic!("no curl command in:\n{output}"));
    let url = curl.split('\'').nth(1).expect("a quoted URL");
    let path = url
        .strip_prefix(&server.endpoint)
        .unwrap_or_else(|| panic!("{url} is not on {}", server.endpoint));
    let rest = &output[output.find(curl).unwrap() + curl.len()..];
    let data_line = rest.lines().nth(1).expect("the headers and body line");
    assert!(
        data_line.contains("-H 'content-type: application/json'"),
        "{data_line}"
    );
    let body = data_line
        .split("-d '")
        .nth(1)
        .unwrap()
        .trim_end_matches('\'');
    assert_eq!(body, r#"{"args":[5]}"#);
    for expected in [5, 10] {
        let response = rivet_test_support::send(
            server.addr,
            "POST",
            path,
            &[("content-type", "application/json")],
            body,
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.json(), serde_json::json!({ "output": expected }));
    }
    // The same counter as the one the client command and the npm snippet use.
    let client = Client::new(server.endpoint.as_str()).unwrap();
    let counter = client.get_or_create("counter", ["my-counter"]);
    assert_eq!(counter.action::<_, i64>("getCount", ()).await.unwrap(), 10);
    server.process.terminate();
    assert!(server.process.wait_exit(WAIT).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_command_connects_listens_and_increments() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let mut run = ChildProcess::spawn(
        "counter client",
        Command::new(BIN).args([
            "client",
            "--endpoint",
            &server.endpoint,
            "--key",
            "from-client",
            "--times",
            "3",
            "--by",
            "2",
        ]),
    );
    let status = run.wait_exit(WAIT).await;
    let output = run.output();
    assert!(status.success(), "client failed ({status}):\n{output}");
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| !l.starts_with("connected to counter"))
        .collect();
    assert_eq!(
        lines,
        [
            "increment(2) -> 2",
            "event newCount: 2",
            "increment(2) -> 4",
            "event newCount: 4",
            "increment(2) -> 6",
            "event newCount: 6",
            "getCount over HTTP -> 6",
        ],
        "{output}"
    );
    assert!(
        output.starts_with("connected to counter \"from-client\" (actor "),
        "{output}"
    );

    // What the client did is in the actor the server hosts.
    let client = Client::new(server.endpoint.as_str()).unwrap();
    let counter = client.get_or_create("counter", ["from-client"]);
    assert_eq!(counter.action::<_, i64>("getCount", ()).await.unwrap(), 6);

    // Against nothing, the client fails with a message instead of hanging.
    let port = rivet_test_support::free_port();
    let mut nothing = ChildProcess::spawn(
        "counter client (no server)",
        Command::new(BIN).args(["client", "--endpoint", &format!("http://127.0.0.1:{port}")]),
    );
    let status = nothing.wait_exit(WAIT).await;
    assert!(!status.success());
    assert!(nothing.output().contains("Error:"), "{}", nothing.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_survives_a_restart_with_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path()).await;
    let client = Client::new(server.endpoint.as_str()).unwrap();
    let counter = client.get_or_create("counter", ["durable"]);
    assert_eq!(
        counter.action::<_, i64>("increment", (7,)).await.unwrap(),
        7
    );
    server.process.terminate();
    assert!(server.process.wait_exit(WAIT).await.success());
    assert!(server
        .process
        .output()
        .contains("stopped: every actor saved its state"));

    let server = serve(dir.path()).await;
    let client = Client::new(server.endpoint.as_str()).unwrap();
    let counter = client.get_or_create("counter", ["durable"]);
    assert_eq!(counter.action::<_, i64>("getCount", ()).await.unwrap(), 7);
}

#[test]
fn help_lists_the_commands_and_flags() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--port",
        "--data-dir",
        "--memory",
        "client",
        "serve",
        "6420",
    ] {
        assert!(help.contains(needle), "no {needle:?} in:\n{help}");
    }
    let output = Command::new(BIN)
        .args(["--data-dir", "/tmp/x", "--memory"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "--data-dir and --memory conflict");
}
