//! The engine as a library: listeners, health and metadata shapes, metrics, persistence and
//! start-up failures.

use std::net::TcpListener;
use std::time::Duration;

use rivet_engine::{Engine, EngineError};
use rivet_store::StoreError;
use rivet_test_support::{engine_config as config, get, try_send};

fn is_ray_id(value: &str) -> bool {
    value.len() == 30
        && value.ends_with("l00")
        && value.parse::<rivet_orchestrator::id::Id>().is_ok()
}

#[tokio::test]
async fn health_and_metadata_have_the_reference_shapes() {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(home.path(), &[])).await.unwrap();
    let guard = engine.guard_addr();

    let health = get(guard, "/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.json(),
        serde_json::json!({"runtime": "engine", "status": "ok", "version": rivet_engine::VERSION})
    );
    assert!(health
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert!(is_ray_id(health.header("x-rivet-ray-id").unwrap()));

    // The npm client sends `?namespace=`; unknown query parameters are ignored.
    let metadata = get(guard, "/metadata?namespace=default&other=1").await;
    assert_eq!(metadata.status, 200);
    let body = metadata.json();
    assert_eq!(body["runtime"], "engine");
    assert_eq!(body["version"], rivet_engine::VERSION);
    assert_eq!(body["envoy_protocol_version"], 8);
    assert_eq!(body["epoxy_protocol_version"], 3);
    for key in [
        "git_sha",
        "build_timestamp",
        "rustc_version",
        "rustc_host",
        "cargo_target",
        "cargo_profile",
    ] {
        assert!(
            body[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key}: {body}"
        );
    }

    let peer = get(engine.api_peer_addr(), "/health").await;
    assert_eq!(peer.status, 200);
    assert_eq!(peer.json()["runtime"], "engine");
    assert!(is_ray_id(peer.header("x-rivet-ray-id").unwrap()));

    engine.shutdown().await.unwrap();
}

/// A browser page on another origin (npm's browser client) reads `/metadata` before anything
/// else, and retries forever until it can: both need the REST routes' CORS headers.
#[tokio::test]
async fn health_and_metadata_answer_cross_origin_requests() {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(home.path(), &[])).await.unwrap();
    let guard = engine.guard_addr();
    let origin = "http://127.0.0.1:8080";
    for path in ["/metadata?namespace=default", "/health"] {
        let response = try_send(guard, "GET", path, &[("origin", origin)], "")
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some(origin),
            "{path}"
        );
        assert_eq!(
            response.header("access-control-allow-credentials"),
            Some("true"),
            "{path}"
        );
        let preflight = try_send(
            guard,
            "OPTIONS",
            path,
            &[
                ("origin", origin),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-rivet-token"),
            ],
            "",
        )
        .await
        .unwrap();
        assert_eq!(preflight.status, 200, "{path}");
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            Some(origin),
            "{path}"
        );
        assert_eq!(
            preflight.header("access-control-allow-methods"),
            Some("GET"),
            "{path}"
        );
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_root_follow_the_reference() {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(home.path(), &[])).await.unwrap();
    let guard = engine.guard_addr();

    let missing = get(guard, "/no/such/route").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        serde_json::json!({"group": "api", "code": "not_found", "message": "The requested resource was not found"})
    );
    assert!(is_ray_id(missing.header("x-rivet-ray-id").unwrap()));

    let wrong_method = try_send(guard, "POST", "/health", &[], "").await.unwrap();
    assert_eq!(wrong_method.status, 405);
    let allow = wrong_method.header("allow").unwrap().to_ascii_uppercase();
    assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
    assert!(wrong_method.header("x-rivet-ray-id").is_some());

    let root = get(guard, "/").await;
    assert_eq!(root.status, 308);
    assert_eq!(root.header("location"), Some("/ui/"));

    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_expose_process_store_and_bus_figures() {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(home.path(), &[])).await.unwrap();
    engine
        .db()
        .txn(|tx| async move {
            tx.set(b"metrics-test", b"1")?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    engine
        .bus()
        .publish("metrics.test", bytes_of("x"))
        .await
        .unwrap();

    let metrics = get(engine.metrics_addr(), "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = &metrics.body;
    for name in [
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "rivet_store_commit_duration_seconds_bucket",
        "rivet_store_commit_duration_seconds_count",
        "rivet_bus_messages_published_total",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let commits = sample(text, "rivet_store_commits_total");
    assert!(commits >= 1.0, "{text}");
    assert!(
        sample(text, "rivet_bus_messages_published_total") >= 1.0,
        "{text}"
    );
    // Any path on the metrics port serves the same exposition.
    assert!(get(engine.metrics_addr(), "/")
        .await
        .body
        .contains("rivet_store_commits_total"));

    engine.shutdown().await.unwrap();
}

fn bytes_of(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no sample {name}"))
}

#[tokio::test]
async fn data_under_the_default_path_survives_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let config = config(home.path(), &[]);
    let engine = Engine::start(&config).await.unwrap();
    engine
        .db()
        .txn(|tx| async move {
            tx.set(b"persisted", b"across restarts")?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    assert!(home.path().join(".local/share/rivet-engine/db").is_dir());

    let engine = Engine::start(&config).await.unwrap();
    let value = engine
        .db()
        .txn(|tx| async move { tx.get(b"persisted").await })
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some(&b"across restarts"[..]));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let error = Engine::start(&config(home.path(), &[("RIVET__guard__port", &port)]))
        .await
        .err()
        .expect("start must fail");
    assert!(matches!(error, EngineError::PortInUse { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("already in use"), "{text}");
    assert!(text.contains("RIVET__guard__port"), "{text}");
}

#[tokio::test]
async fn a_data_directory_in_use_by_another_engine_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("data");
    let dir_text = dir.display().to_string();
    let first = Engine::start(&config(
        home.path(),
        &[("RIVET__file_system__path", &dir_text)],
    ))
    .await
    .unwrap();
    let error = Engine::start(&config(
        home.path(),
        &[("RIVET__file_system__path", &dir_text)],
    ))
    .await
    .err()
    .expect("second engine must not open the same directory");
    let text = error.to_string();
    assert!(
        matches!(
            &error,
            EngineError::Store {
                source: StoreError::Locked { .. },
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains(&dir_text), "{text}");
    first.shutdown().await.unwrap();

    // Once the first engine is gone the directory opens again.
    let again = Engine::start(&config(
        home.path(),
        &[("RIVET__file_system__path", &dir_text)],
    ))
    .await
    .unwrap();
    again.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unwritable_data_directory_names_the_path() {
    let home = tempfile::tempdir().unwrap();
    // A path below a regular file can never be created, even by root.
    let file = home.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let dir = file.join("db").display().to_string();
    let error = Engine::start(&config(home.path(), &[("RIVET__file_system__path", &dir)]))
        .await
        .err()
        .expect("start must fail");
    let text = error.to_string();
    assert!(matches!(error, EngineError::Store { .. }), "{text}");
    assert!(text.contains(&dir), "{text}");
}

#[tokio::test]
async fn unreachable_postgres_and_nats_name_the_url_without_the_password() {
    let home = tempfile::tempdir().unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);

    let pg_url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/test");
    let error = tokio::time::timeout(
        Duration::from_secs(60),
        Engine::start(&config(home.path(), &[("RIVET__postgres__url", &pg_url)])),
    )
    .await
    .expect("start must give up")
    .err()
    .expect("start must fail");
    let text = error.to_string();
    assert!(matches!(error, EngineError::Store { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let nats_url = format!("nats://user:hunter2@127.0.0.1:{port}");
    let error = tokio::time::timeout(
        Duration::from_secs(60),
        Engine::start(&config(
            home.path(),
            &[
                ("RIVET__memory", "{}"),
                ("RIVET__pubsub__nats__url", &nats_url),
            ],
        )),
    )
    .await
    .expect("start must give up")
    .err()
    .expect("start must fail");
    let text = error.to_string();
    assert!(matches!(error, EngineError::Bus { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn the_engine_runs_on_postgres_and_nats() {
    let home = tempfile::tempdir().unwrap();
    let pg = std::env::var("RIVET_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let nats = std::env::var("RIVET_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string());
    let engine = Engine::start(&config(
        home.path(),
        &[
            ("RIVET__postgres__url", &pg),
            ("RIVET__pubsub__nats__url", &nats),
        ],
    ))
    .await
    .unwrap();
    let key = format!("engine-test-{}", rand::random::<u64>());
    let written = key.clone();
    engine
        .db()
        .txn(move |tx| {
            let key = written.clone();
            async move {
                tx.set(key.as_bytes(), b"pg")?;
                Ok::<_, StoreError>(())
            }
        })
        .await
        .unwrap();
    let value = engine
        .db()
        .txn(move |tx| {
            let key = key.clone();
            async move {
                let value = tx.get(key.as_bytes()).await?;
                tx.clear(key.as_bytes());
                Ok::<_, StoreError>(value)
            }
        })
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some(&b"pg"[..]));
    assert_eq!(get(engine.guard_addr(), "/health").await.status, 200);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_guard_port_of_zero_advertises_the_bound_port() {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(home.path(), &[])).await.unwrap();
    let body = get(engine.guard_addr(), "/datacenters").await.json();
    assert_eq!(
        body["datacenters"][0]["url"],
        format!("http://127.0.0.1:{}/", engine.guard_addr().port())
    );
    engine.shutdown().await.unwrap();
}
