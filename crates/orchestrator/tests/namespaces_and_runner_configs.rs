//! Namespaces and runner configs against the real stores: memory, file_system (fjall) and
//! PostgreSQL (a fresh schema per test).

mod common;

use common::on_every_driver;
use std::collections::BTreeMap;

use rivet_orchestrator::error::DataError;
use rivet_orchestrator::namespace::{self, ListQuery};
use rivet_orchestrator::runner_config::{self, Kind, RunnerConfig};
use rivet_store::{Db, StoreConfig};
use serde_json::json;

#[tokio::test]
async fn the_default_namespace_is_created_once_even_when_racing() {
    on_every_driver(|db| async move {
        let (a, b) = tokio::join!(
            namespace::ensure_default_namespace(&db, 1, 10),
            namespace::ensure_default_namespace(&db, 1, 20),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b);
        assert_eq!(a.name, "default");
        assert_eq!(a.display_name, "Default");
        assert!(a.namespace_id.ends_with("l00"));
        let again = namespace::ensure_default_namespace(&db, 1, 30)
            .await
            .unwrap();
        assert_eq!(again, a);
        let all = namespace::list(&db, ListQuery::default()).await.unwrap();
        assert_eq!(all, vec![a]);
    })
    .await;
}

#[tokio::test]
async fn namespace_names_follow_the_reference_rules() {
    on_every_driver(|db| async move {
        for (name, reason) in [
            ("", "invalid name"),
            ("Upper", "invalid name"),
            ("-lead", "invalid name"),
            ("trail-", "invalid name"),
            ("a--b", "invalid name"),
            ("a_b", "invalid name"),
        ] {
            let err = namespace::create(&db, 1, name, "X", 1).await.unwrap_err();
            assert!(
                matches!(err, DataError::FailedToCreate { reason: r } if r == reason),
                "{name}: {err}"
            );
        }
        let long = "a".repeat(65);
        assert!(matches!(
            namespace::create(&db, 1, &long, "X", 1).await,
            Err(DataError::FailedToCreate {
                reason: "name too long"
            })
        ));
        assert!(matches!(
            namespace::create(&db, 1, "ok", "", 1).await,
            Err(DataError::FailedToCreate {
                reason: "display name too short"
            })
        ));
        assert!(matches!(
            namespace::create(&db, 1, "ok", &"d".repeat(129), 1).await,
            Err(DataError::FailedToCreate {
                reason: "display name too long"
            })
        ));
        let max = "a".repeat(64);
        namespace::create(&db, 1, &max, &"d".repeat(128), 1)
            .await
            .unwrap();
        let digit = namespace::create(&db, 1, "1st-ns", "First", 5)
            .await
            .unwrap();
        assert_eq!(digit.create_ts, 5);
        assert!(matches!(
            namespace::create(&db, 1, "1st-ns", "Again", 6).await,
            Err(DataError::NameNotUnique)
        ));
        assert_eq!(namespace::resolve(&db, "1st-ns").await.unwrap(), digit);
        assert!(matches!(
            namespace::resolve(&db, "missing").await,
            Err(DataError::NamespaceNotFound)
        ));
    })
    .await;
}

#[tokio::test]
async fn namespaces_list_in_id_order_with_filters() {
    on_every_driver(|db| async move {
        let mut created = Vec::new();
        for i in 0..5 {
            created.push(
                namespace::create(&db, 1, &format!("ns-{i}"), "N", i)
                    .await
                    .unwrap(),
            );
        }
        let all = namespace::list(&db, ListQuery::default()).await.unwrap();
        let mut by_id = created.clone();
        by_id.sort_by_key(|ns| ns.id().unwrap());
        assert_eq!(all, by_id);

        let one = namespace::list(
            &db,
            ListQuery {
                limit: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(one, by_id[..1]);
        let two = namespace::list(
            &db,
            ListQuery {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(two, by_id[..2]);

        let named = namespace::list(
            &db,
            ListQuery {
                name: Some("ns-3".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(named, vec![created[3].clone()]);

        let ids = vec![created[4].id().unwrap(), created[1].id().unwrap()];
        let mut expected = vec![created[4].clone(), created[1].clone()];
        expected.sort_by_key(|ns| ns.id().unwrap());
        let picked = namespace::list(
            &db,
            ListQuery {
                ids,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(picked, expected);
    })
    .await;
}

fn config(value: serde_json::Value) -> RunnerConfig {
    RunnerConfig::from_request(value).unwrap_or_else(|e| panic!("{e:?}"))
}

#[tokio::test]
async fn runner_configs_round_trip_with_defaults() {
    on_every_driver(|db| async move {
        let ns = namespace::ensure_default_namespace(&db, 1, 1).await.unwrap();
        let id = ns.id().unwrap();
        let changed = runner_config::upsert(
            &db,
            id,
            "pool-b",
            BTreeMap::from([("default".to_string(), config(json!({"normal": {}, "drain_on_version_upgrade": false})))]),
        )
        .await
        .unwrap();
        assert!(changed);
        runner_config::upsert(
            &db,
            id,
            "pool-a",
            BTreeMap::from([(
                "default".to_string(),
                config(json!({"serverless": {"url": "http://x", "request_lifespan": 300, "drain_grace_period": 10}, "metadata": {"a": 1}})),
            )]),
        )
        .await
        .unwrap();

        let all = runner_config::list(&db, id, Default::default()).await.unwrap();
        let names: Vec<_> = all.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["pool-a", "pool-b"]);
        assert_eq!(
            all[0].1["default"].to_response(None),
            json!({"serverless": {"url": "http://x", "headers": {}, "request_lifespan": 300,
                "drain_grace_period": 10, "max_concurrent_actors": 1000, "slots_per_runner": 1,
                "min_runners": 0, "max_runners": 1000, "runners_margin": 0,
                "drain_on_version_upgrade": true, "actor_eviction_delay": 0,
                "actor_eviction_period": 0, "actor_eviction_rate": 1.0},
                "metadata": {"a": 1}, "protocol_version": null})
        );
        assert_eq!(
            all[1].1["default"].to_response(None),
            json!({"normal": {"drain_on_version_upgrade": false, "actor_eviction_delay": 0,
                "actor_eviction_period": 0, "actor_eviction_rate": 1.0}, "protocol_version": null})
        );

        let serverless = runner_config::list(
            &db,
            id,
            runner_config::ListQuery { variant: Some("serverless".into()), ..Default::default() },
        )
        .await
        .unwrap();
        assert_eq!(serverless.len(), 1);
        assert!(matches!(serverless[0].1["default"].kind, Kind::Serverless(_)));
        let limited = runner_config::list(
            &db,
            id,
            runner_config::ListQuery { limit: Some(1), ..Default::default() },
        )
        .await
        .unwrap();
        assert_eq!(limited[0].0, "pool-a");
        assert_eq!(limited.len(), 1);
        let named = runner_config::list(
            &db,
            id,
            runner_config::ListQuery { pools: vec!["pool-b".into()], ..Default::default() },
        )
        .await
        .unwrap();
        assert_eq!(named[0].0, "pool-b");
        assert_eq!(named.len(), 1);

        // An empty map deletes the pool everywhere and reports no change.
        assert!(!runner_config::upsert(&db, id, "pool-b", BTreeMap::new()).await.unwrap());
        runner_config::delete(&db, id, "pool-a").await.unwrap();
        runner_config::delete(&db, id, "never-existed").await.unwrap();
        assert!(runner_config::list(&db, id, Default::default()).await.unwrap().is_empty());
    })
    .await;
}

#[test]
fn runner_config_requests_are_validated() {
    let err =
        RunnerConfig::from_request(json!({"serverless": {"url": "u", "request_lifespan": 300}}))
            .unwrap_err();
    match err {
        Err(DataError::RunnerConfigInvalid { reason }) => assert_eq!(
            reason,
            "`drain_grace_period` must be less than `request_lifespan` (1800s >= 300s)"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        RunnerConfig::from_request(json!({"bogus": {}}))
            .unwrap_err()
            .unwrap(),
        "no variant of enum RunnerConfigKind found in flattened data"
    );
    assert_eq!(
        RunnerConfig::from_request(json!({"serverless": {"request_lifespan": 3}}))
            .unwrap_err()
            .unwrap(),
        "missing field `url`"
    );
    assert!(
        RunnerConfig::from_request(json!({"normal": {}, "extra": 1}))
            .unwrap_err()
            .unwrap()
            .starts_with("unknown field `extra`")
    );
    // Unknown fields inside the kind are ignored (reference quirk).
    let config = config(json!({"normal": {"whatever": 1, "actor_eviction_rate": 2.5}}));
    assert_eq!(
        config.to_response(Some(8))["normal"]["actor_eviction_rate"],
        2.5
    );
    assert_eq!(config.to_response(Some(8))["protocol_version"], 8);
}

/// Two engine nodes (two store handles on one PostgreSQL schema) racing to create `default` and
/// a same-named namespace end with one record each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_on_postgres_create_one_namespace() {
    let url = std::env::var("RIVET_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("orch_test_{:016x}", rand::random::<u64>());
    let open = || {
        Db::open(StoreConfig::Postgres {
            url: url.clone(),
            pool_size: 4,
            schema: Some(schema.clone()),
        })
    };
    let a = open().await.unwrap();
    let b = open().await.unwrap();
    let (da, db_) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { namespace::ensure_default_namespace(&a, 1, 1).await }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { namespace::ensure_default_namespace(&b, 1, 2).await }
        }),
    );
    assert_eq!(da.unwrap().unwrap(), db_.unwrap().unwrap());
    let (ca, cb) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { namespace::create(&a, 1, "race", "R", 3).await }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { namespace::create(&b, 1, "race", "R", 4).await }
        }),
    );
    let outcomes = [ca.unwrap(), cb.unwrap()];
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Err(DataError::NameNotUnique))));
    assert_eq!(
        namespace::list(&a, ListQuery::default())
            .await
            .unwrap()
            .len(),
        2
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
