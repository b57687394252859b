//! The real npm client (`rivetkit/client@2.3.19`) through this engine's gateway to the real npm
//! actor hosts (2.3.19 on envoy v8, 2.3.11 on v6): `tests/compat/gateway/suite.mjs` runs every
//! case of the gateway acceptance list (handles, actions in bare/cbor/json, connections and
//! events, raw fetch and WebSocket, header routing, every rvt-* error, CORS, sleep and wake,
//! hibernating connections, a host killed and restarted) and prints one line per case.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rivet-engine");

fn suite(host_version: &str) {
    let dir = rivet_test_support::compat_dir();
    let output = Command::new("node")
        .current_dir(&dir)
        .arg("gateway/suite.mjs")
        .args(["--engine-bin", BIN, "--host-version", host_version])
        .output()
        .expect("failed to run `node` (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "gateway suite with rivetkit {host_version} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
}

#[test]
fn npm_client_through_the_gateway_to_rivetkit_2_3_19_actors() {
    suite("2.3.19");
}

#[test]
fn npm_client_through_the_gateway_to_rivetkit_2_3_11_actors() {
    suite("2.3.11");
}
