//! `rivet-bench-gateway [--smoke] [--requests N] [--threads N]`: the gateway's added latency
//! against a plain loopback round trip, everything in this process (see the library docs).
//!
//! `--threads 1` runs engine, host, servers and client on one thread: no cross-thread wake-ups,
//! so the round trips show the software path alone (an idle VM's wake-up latency otherwise
//! dominates, see docs/benchmarks.md).

use anyhow::Context;
use rivet_bench_gateway::{run, table, Options};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut opts = Options::full();
    let mut threads = 2usize;
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> anyhow::Result<usize> {
            args.next()
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--smoke" => opts = Options::smoke(),
            "--requests" => opts.requests = number("--requests")?,
            "--threads" => threads = number("--threads")?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let figures = runtime.block_on(run(&opts))?;
    print!("{}", table(&figures));
    Ok(())
}
