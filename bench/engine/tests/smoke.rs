//! CI check that the benchmark still runs: every phase, our engine in-process, tiny counts.

use rivet_bench_engine::{run, table, Options, Which};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let opts = Options::smoke();
    let figures = run(&opts).await.unwrap();
    assert_eq!(figures.len(), 1);
    let ours = &figures[0];
    assert_eq!(ours.which, Which::Ours);
    assert_eq!(ours.create_to_connectable.count(), opts.latency_creates);
    // Connectable comes after the host sent Running, which comes after the POST was written.
    assert!(ours.create_to_connectable.p50() >= ours.create_to_host_running.p50());
    assert_eq!(ours.throughput.len(), opts.concurrency.len());
    for t in &ours.throughput {
        assert_eq!(t.creates, opts.throughput_creates);
        assert!(t.per_s() > 0.0, "{t:?}");
    }
    assert_eq!(ours.wake.count(), opts.wakes);
    assert!(ours.rss_idle_kib > 0);
    let created =
        opts.latency_creates + opts.throughput_creates * opts.concurrency.len() + opts.sleeping;
    assert_eq!(ours.rss_sleeping.map(|(n, _)| n), Some(created));
    assert!(table(&figures).contains("| create → connectable p50 |"));
}
