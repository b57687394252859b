//! The real npm actor host (`rivetkit@2.3.19`, envoy v8, and `rivetkit@2.3.11`, envoy v6)
//! attached to this engine binary: `tests/compat/host/scenario.mjs` starts the engine, attaches
//! the host through `RIVET_ENDPOINT`, and checks creation, names, sleep, alarms, an engine
//! restart, `kill -9` of the host and destroy through the REST API, and with the npm client
//! through the gateway that state changed by actions survives sleep, the restart and the kill
//! (it prints each step).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rivet-engine");

fn scenario(host_version: &str) {
    let dir = rivet_test_support::compat_dir();
    let output = Command::new("node")
        .current_dir(&dir)
        .arg("host/scenario.mjs")
        .args([
            "--engine-bin",
            BIN,
            "--host-version",
            host_version,
            "--with-gateway",
        ])
        .output()
        .expect("failed to run `node` (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scenario with rivetkit {host_version} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("PASS"), "{stdout}");
}

#[test]
fn npm_rivetkit_2_3_19_host_runs_on_this_engine() {
    scenario("2.3.19");
}

#[test]
fn npm_rivetkit_2_3_11_host_runs_on_this_engine() {
    scenario("2.3.11");
}
