//! CI check that the benchmark still runs: every phase on our stack (engine in-process, the
//! Rust actor host as a child process of the debug bench binary), tiny counts.

use rivet_bench_rivetkit::{run, table, Options, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let opts = Options::smoke(env!("CARGO_BIN_EXE_rivet-bench-rivetkit").into());
    let report = run(&opts).await.unwrap();
    assert_eq!(report.figures.len(), 2);
    for (f, target) in report
        .figures
        .iter()
        .zip([Target::OursStrict, Target::OursRelaxed])
    {
        assert_eq!(f.target, target);
        let seq = opts.seq_calls * opts.rounds;
        for s in [
            &f.http_ping,
            &f.http_increment,
            &f.conn_ping,
            &f.conn_increment,
        ] {
            assert_eq!(s.count(), seq, "{target:?}");
            assert!(s.p50() > 0.0 && s.p99() >= s.p50());
        }
        for r in [
            &f.tp_http_ping,
            &f.tp_http_increment,
            &f.tp_conn_ping,
            &f.tp_conn_increment,
        ] {
            assert_eq!(r.count(), opts.rounds);
            assert!(r.median() > 0.0);
            assert_eq!(r.errors, 0);
        }
        assert_eq!(f.create.count(), opts.creates * opts.rounds);
        assert_eq!(f.wake.count(), opts.wakes * opts.rounds);
        assert_eq!(f.broadcast.count(), opts.broadcasts * opts.rounds);
    }
    assert_eq!(report.memory.len(), 1);
    assert_eq!(report.memory[0].actors, opts.mem_actors);
    assert!(report.memory[0].before_kib > 0 && report.memory[0].after_kib > 0);
    assert!(table(&report).contains("| HTTP `ping`, p50 (ms) |"));
}
