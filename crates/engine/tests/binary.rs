//! The `rivet-engine` binary: start with no config, signals, `config show`/`validate`, `--help`,
//! and start-up failures with a non-zero exit.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rivet-engine");

/// A command with a clean environment: only HOME and PATH, so no RIVET_* of the caller leaks in.
fn engine(home: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    command
}

fn wait_exit(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            panic!("engine did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut text).unwrap();
    }
    text
}

#[tokio::test]
async fn start_with_no_config_is_healthy_within_two_seconds_and_stops_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = engine(home.path())
        .arg("start")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard: SocketAddr = "127.0.0.1:6420".parse().unwrap();
    let deadline = Duration::from_secs(2);
    loop {
        if let Ok(response) = rivet_test_support::try_send(guard, "GET", "/health", &[], "").await {
            assert_eq!(response.status, 200);
            assert_eq!(response.json()["runtime"], "engine");
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "engine exited early with {status}: {}",
                stderr_of(&mut child)
            );
        }
        assert!(
            started.elapsed() < deadline,
            "no /health answer within {deadline:?} of spawning the engine"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(home.path().join(".local/share/rivet-engine/db").is_dir());

    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let logs = stderr_of(&mut child);
    assert!(status.success(), "exit {status}: {logs}");
    assert!(logs.contains("engine started"), "{logs}");
    assert!(logs.contains("engine stopped"), "{logs}");
}

#[tokio::test]
async fn sigint_stops_gracefully_with_json_logs() {
    let home = tempfile::tempdir().unwrap();
    let guard = TcpListener::bind("127.0.0.1:0").unwrap();
    let guard_port = guard.local_addr().unwrap().port();
    drop(guard);
    let mut child = engine(home.path())
        .arg("start")
        .env("RIVET__guard__port", guard_port.to_string())
        .env("RIVET__api_peer__port", "0")
        .env("RIVET__metrics__port", "0")
        .env("RIVET__memory", "{}")
        .env("RIVET_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{guard_port}").parse().unwrap();
    rivet_test_support::wait_healthy(addr, Duration::from_secs(10)).await;
    signal(&child, "INT");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let logs = stderr_of(&mut child);
    assert!(status.success(), "exit {status}: {logs}");
    let stopped = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .any(|line| line["message"] == "engine stopped");
    assert!(stopped, "no JSON 'engine stopped' line in:\n{logs}");
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

#[test]
fn a_taken_port_exits_non_zero_with_the_reason() {
    let home = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = run(engine(home.path())
        .arg("start")
        .env("RIVET__guard__port", port.to_string())
        .env("RIVET__memory", "{}"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port} is already in use")),
        "{stderr}"
    );
}

#[test]
fn config_show_prints_the_effective_config_with_secrets_redacted() {
    let home = tempfile::tempdir().unwrap();
    let output = run(engine(home.path())
        .args(["config", "show"])
        .env("RIVET__auth__admin_token", "hunter2")
        .env("RIVET__guard__port", "7777"));
    assert!(output.status.success(), "{output:?}");
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["guard"]["port"], 7777);
    assert_eq!(shown["auth"]["admin_token"], "<redacted>");
    assert_eq!(
        shown["storage"]["file_system"]["path"],
        home.path()
            .join(".local/share/rivet-engine/db")
            .display()
            .to_string()
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("hunter2"));
}

#[test]
fn config_validate_accepts_good_and_names_bad_config() {
    let home = tempfile::tempdir().unwrap();
    let good = home.path().join("good.yaml");
    std::fs::write(&good, "guard:\n  port: 7000\nmemory: {}\n").unwrap();
    let output = run(engine(home.path())
        .args(["config", "validate", "--config"])
        .arg(&good));
    assert!(output.status.success(), "{output:?}");

    let bad = home.path().join("bad.json");
    std::fs::write(&bad, r#"{"guard": {"port": "high"}}"#).unwrap();
    let output = run(engine(home.path())
        .args(["config", "validate", "--config"])
        .arg(&bad));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("guard.port"), "{stderr}");
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");

    let output = run(engine(home.path())
        .args(["config", "validate"])
        .env("RIVET__memory", "{}")
        .env("RIVET__file_system__path", "/data"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("two storage backends"), "{stderr}");
}

#[test]
fn help_explains_commands_and_environment() {
    let home = tempfile::tempdir().unwrap();
    let output = run(engine(home.path()).arg("--help"));
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "start",
        "config",
        "--config",
        "RIVET__guard__port",
        "RIVET__file_system__path",
        "RIVET_LOG_LEVEL",
        "RIVET__auth__admin_token",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}
