//! Runs the benchmark's smoke mode so CI notices when it breaks.

#[test]
fn smoke() {
    let rows = rivet_bench_store::run(&rivet_bench_store::Options::smoke()).unwrap();
    // 2 writer counts + 1 contention + 2 read rows + 1 scan row per driver, 4 raw fjall rows.
    assert_eq!(rows.len(), 4 * 6 + 4);
    assert!(rows.iter().all(|r| r.per_second > 0.0), "{rows:?}");
}
