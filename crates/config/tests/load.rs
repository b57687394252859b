//! Loading the configuration from files and environment variables.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rivet_config::{Config, ConfigError, LogFormat, PubSub, Sources, Storage};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(paths: &[PathBuf], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load_from(&Sources {
        config_paths: paths.to_vec(),
        default_dir: None,
        env: env(vars),
    })
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_use_the_embedded_store_under_the_data_home() {
    let config = load(&[], &[("HOME", "/home/ann")]).unwrap();
    assert_eq!(config.guard.port, 6420);
    assert_eq!(config.api_peer.port, 6421);
    assert_eq!(config.metrics.port, 6430);
    assert_eq!(config.guard.host, "127.0.0.1");
    assert_eq!(
        config.storage,
        Storage::FileSystem {
            path: PathBuf::from("/home/ann/.local/share/rivet-engine/db"),
            sync: true
        }
    );
    assert_eq!(config.pubsub, PubSub::Memory);
    assert_eq!(config.topology.datacenter_name, "default");
    assert_eq!(config.topology.datacenter_label, 1);
    assert_eq!(config.topology.public_url, "http://127.0.0.1:6420");
    assert_eq!(config.logs.format, LogFormat::Text);
    assert!(!config.otel.enabled);
    assert_eq!(config.otel.grpc_endpoint, "http://localhost:4317");
    assert_eq!(config.otel.sampler_ratio, 0.001);

    let xdg = load(&[], &[("HOME", "/home/ann"), ("XDG_DATA_HOME", "/xdg")]).unwrap();
    assert_eq!(
        xdg.storage,
        Storage::FileSystem {
            path: PathBuf::from("/xdg/rivet-engine/db"),
            sync: true
        }
    );
}

#[test]
fn json_json5_and_yaml_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let json = write(dir.path(), "a.json", r#"{"guard": {"port": 7001}}"#);
    let json5 = write(
        dir.path(),
        "b.json5",
        "// comment\n{guard: {port: 7002,}, auth: {admin_token: 'tok'}}",
    );
    let jsonc = write(
        dir.path(),
        "c.jsonc",
        "{\n /* c */ \"guard\": {\"port\": 7003}\n}",
    );
    let yaml = write(dir.path(), "d.yaml", "guard:\n  port: 7004\nmemory: {}\n");

    assert_eq!(load(&[json], &[("HOME", "/h")]).unwrap().guard.port, 7001);
    let config = load(&[json5], &[("HOME", "/h")]).unwrap();
    assert_eq!(config.guard.port, 7002);
    assert_eq!(config.auth.admin_token.as_deref(), Some("tok"));
    assert_eq!(load(&[jsonc], &[("HOME", "/h")]).unwrap().guard.port, 7003);
    let config = load(&[yaml], &[]).unwrap();
    assert_eq!(config.guard.port, 7004);
    assert_eq!(config.storage, Storage::Memory);
}

#[test]
fn a_directory_is_merged_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "20-port.yaml", "guard:\n  port: 7200\n");
    write(
        dir.path(),
        "10-base.json",
        r#"{"guard": {"port": 7100, "host": "0.0.0.0"}}"#,
    );
    write(dir.path(), "README.md", "not config");
    let config = load(&[dir.path().to_path_buf()], &[("HOME", "/h")]).unwrap();
    assert_eq!(config.guard.port, 7200);
    assert_eq!(config.guard.host, "0.0.0.0");
    assert_eq!(config.topology.public_url, "http://127.0.0.1:7200");
}

#[test]
fn the_default_directory_is_probed_when_no_path_is_given() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "config.yml", "metrics:\n  port: 9999\n");
    let config = Config::load_from(&Sources {
        config_paths: vec![],
        default_dir: Some(dir.path().to_path_buf()),
        env: env(&[("HOME", "/h")]),
    })
    .unwrap();
    assert_eq!(config.metrics.port, 9999);
}

#[test]
fn environment_wins_over_files_and_is_parsed_as_the_field_type() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.json", r#"{"guard": {"port": 7001}}"#);
    let config = load(
        &[file],
        &[
            ("HOME", "/h"),
            ("RIVET__GUARD__PORT", "6500"),
            ("rivet__auth__ADMIN_TOKEN", "12345"),
            ("RIVET__file_system__path", "/data"),
            ("RIVET__file_system__sync", "false"),
            ("RIVET__topology__datacenter_label", "3"),
            ("RIVET_LOG_LEVEL", "debug"),
            ("RIVET_LOG_FORMAT", "json"),
            ("RIVET_OTEL_ENABLED", "true"),
            ("RIVET_OTEL_SAMPLER_RATIO", "0.5"),
            ("RIVET_ENDPOINT", "http://ignored"),
        ],
    )
    .unwrap();
    assert_eq!(config.guard.port, 6500);
    // A numeric-looking token stays the string it was given.
    assert_eq!(config.auth.admin_token.as_deref(), Some("12345"));
    assert_eq!(
        config.storage,
        Storage::FileSystem {
            path: PathBuf::from("/data"),
            sync: false
        }
    );
    assert_eq!(config.topology.datacenter_label, 3);
    assert_eq!(config.logs.level, "debug");
    assert_eq!(config.logs.format, LogFormat::Json);
    assert!(config.otel.enabled);
    assert_eq!(config.otel.sampler_ratio, 0.5);
}

#[test]
fn pubsub_variants_are_selected_by_key() {
    let config = load(
        &[],
        &[
            ("HOME", "/h"),
            ("RIVET__pubsub__nats__url", "nats://127.0.0.1:4222"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.pubsub,
        PubSub::Nats {
            url: "nats://127.0.0.1:4222".into()
        }
    );

    let config = load(
        &[],
        &[
            ("RIVET__postgres__url", "postgres://postgres@127.0.0.1/test"),
            ("RIVET__pubsub__postgres", "{}"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.pubsub,
        PubSub::Postgres {
            url: "postgres://postgres@127.0.0.1/test".into()
        }
    );
    assert_eq!(
        config.storage,
        Storage::Postgres {
            url: "postgres://postgres@127.0.0.1/test".into(),
            pool_size: 16
        }
    );

    let err = load(&[], &[("HOME", "/h"), ("RIVET__pubsub__postgres", "{}")]).unwrap_err();
    assert!(err.to_string().contains("pubsub.postgres.url"), "{err}");
}

#[test]
fn the_seed_documentation_spelling_is_an_alias() {
    let config = load(&[], &[("RIVET__database__file_system__path", "/seed")]).unwrap();
    assert_eq!(
        config.storage,
        Storage::FileSystem {
            path: PathBuf::from("/seed"),
            sync: true
        }
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.yaml",
        "database:\n  postgres:\n    url: postgres://u:pw@h/db\n    pool_size: 4\n",
    );
    assert_eq!(
        load(&[file], &[]).unwrap().storage,
        Storage::Postgres {
            url: "postgres://u:pw@h/db".into(),
            pool_size: 4
        }
    );
}

#[test]
fn two_storage_backends_are_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.json", r#"{"file_system": {"path": "/a"}}"#);
    let err = load(
        std::slice::from_ref(&file),
        &[("RIVET__postgres__url", "postgres://postgres@127.0.0.1/test")],
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConfigError::TwoBackends { .. }), "{text}");
    assert!(text.contains("`file_system`"), "{text}");
    assert!(text.contains("`postgres`"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(text.contains("RIVET__postgres__url"), "{text}");

    let err = load(
        &[],
        &[("RIVET__memory", "{}"), ("RIVET__database__memory", "{}")],
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::TwoBackends { .. }), "{err}");
}

#[test]
fn unknown_keys_name_the_full_path_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.json", r#"{"guard": {"prot": 1}}"#);
    let err = load(std::slice::from_ref(&file), &[("HOME", "/h")]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`guard.prot`"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(text.contains("unknown field"), "{text}");

    let err = load(&[], &[("HOME", "/h"), ("RIVET__bogus__key", "1")]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`bogus`") || text.contains("bogus"), "{text}");
    assert!(text.contains("RIVET__bogus__key"), "{text}");
}

#[test]
fn wrong_types_name_the_key_and_the_variable() {
    let err = load(&[], &[("HOME", "/h"), ("RIVET__guard__port", "abc")]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`guard.port`"), "{text}");
    assert!(text.contains("RIVET__guard__port"), "{text}");

    let err = load(&[], &[("HOME", "/h"), ("RIVET__guard__port", "70000")]).unwrap_err();
    assert!(err.to_string().contains("`guard.port`"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yaml", "file_system:\n  sync: maybe\n");
    let err = load(std::slice::from_ref(&file), &[("HOME", "/h")]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`file_system.sync`"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
}

#[test]
fn invalid_values_are_rejected() {
    for (var, value, key) in [
        ("RIVET_OTEL_SAMPLER_RATIO", "2", "otel.sampler_ratio"),
        (
            "RIVET_OTEL_GRPC_ENDPOINT",
            "localhost:4317",
            "otel.grpc_endpoint",
        ),
        ("RIVET_OTEL_ENABLED", "perhaps", "otel.enabled"),
        ("RIVET_LOG_FORMAT", "xml", "logs.format"),
        (
            "RIVET__topology__datacenter_label",
            "0",
            "topology.datacenter_label",
        ),
        ("RIVET__auth__admin_token", "", "auth.admin_token"),
        ("RIVET__pubsub__nats__url", "http://x", "pubsub.nats.url"),
    ] {
        let err = load(&[], &[("HOME", "/h"), (var, value)]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(key), "{var}={value}: {text}");
        assert!(text.contains(var), "{var}={value}: {text}");
    }
}

#[test]
fn unreadable_and_malformed_files_are_reported() {
    let missing = PathBuf::from("/nonexistent/rivet.json");
    let err = load(&[missing], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.json", "{ nope");
    let err = load(std::slice::from_ref(&bad), &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    assert!(err.to_string().contains(&bad.display().to_string()));

    let toml = write(dir.path(), "c.toml", "a = 1");
    let err = load(&[toml], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::UnsupportedFile { .. }), "{err}");
}

#[test]
fn show_redacts_secrets() {
    let config = load(
        &[],
        &[
            ("RIVET__auth__admin_token", "hunter2"),
            (
                "RIVET__postgres__url",
                "postgres://postgres:pw@127.0.0.1/test",
            ),
            ("RIVET__pubsub__nats__url", "nats://u:natspw@127.0.0.1:4222"),
        ],
    )
    .unwrap();
    let shown = config.to_redacted_json().to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains(":pw@"), "{shown}");
    assert!(!shown.contains("natspw"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(shown.contains("127.0.0.1/test"), "{shown}");
}

proptest! {
    #[test]
    fn any_port_round_trips_through_the_environment(port in any::<u16>()) {
        let config = load(&[], &[("HOME", "/h"), ("RIVET__metrics__port", &port.to_string())]).unwrap();
        prop_assert_eq!(config.metrics.port, port);
    }

    #[test]
    fn any_string_token_is_kept_verbatim(token in "[!-~]{1,40}") {
        let config = load(&[], &[("HOME", "/h"), ("RIVET__auth__admin_token", &token)]).unwrap();
        prop_assert_eq!(config.auth.admin_token.as_deref(), Some(token.as_str()));
    }
}

#[test]
fn reference_only_sections_are_accepted_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.json",
        r#"{"telemetry": {"enabled": false}, "runtime": {"worker_load_shedding_curve": [[0, 1000], [1000, 999]]}}"#,
    );
    let config = load(
        std::slice::from_ref(&file),
        &[
            ("HOME", "/h"),
            ("RIVET__PEGBOARD__ENVOY_LOST_THRESHOLD", "5000"),
            ("RIVET__FEATURES__X", "true"),
        ],
    )
    .unwrap();
    // Nothing of them shows in the effective configuration.
    let shown = config.to_redacted_json().to_string();
    assert!(
        !shown.contains("telemetry") && !shown.contains("pegboard"),
        "{shown}"
    );
}
