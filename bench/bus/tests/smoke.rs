//! CI check that the benchmark still runs (against the real NATS and PostgreSQL).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let opts = rivet_bench_bus::Opts {
        smoke: true,
        ..Default::default()
    };
    let rows = rivet_bench_bus::run(&opts).await.unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert!(row.one_sub_per_s > 0.0, "{row:?}");
        assert!(row.fanout_delivered_per_s > 0.0, "{row:?}");
        assert!(row.rr_p50 <= row.rr_p99, "{row:?}");
    }
    assert!(rivet_bench_bus::table(&rows).contains("| postgres |"));
}
