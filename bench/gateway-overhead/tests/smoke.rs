//! CI check that the benchmark still runs: every kind of round trip, tiny counts.

use rivet_bench_gateway::{run, table, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let opts = Options::smoke();
    let f = run(&opts).await.unwrap();
    for s in [
        &f.loopback_http,
        &f.health_http,
        &f.gateway_http,
        &f.http_inbound,
        &f.http_outbound,
        &f.loopback_ws,
        &f.gateway_ws,
        &f.ws_inbound,
        &f.ws_outbound,
        &f.store_load,
        &f.shell_wake,
    ] {
        assert_eq!(s.count(), opts.requests);
        assert!(s.p50() > 0.0 && s.p99() >= s.p50());
    }
    // The phases are parts of each gateway round trip, so no phase percentile exceeds the
    // round trip's.
    assert!(f.http_inbound.p50() <= f.gateway_http.p50());
    assert!(f.http_outbound.p50() <= f.gateway_http.p50());
    assert!(f.ws_inbound.p50() <= f.gateway_ws.p50());
    assert!(f.ws_outbound.p50() <= f.gateway_ws.p50());
    assert!(table(&f).contains("| HTTP vs bare axum |"));
}
