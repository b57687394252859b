//! `rivet-bench-engine [--smoke] [--no-reference] [--rounds N] [--latency N] [--creates N]
//! [--reference-creates N]
//! [--concurrency N] [--wakes N] [--sleeping N] [--sleeping-reference]`
//!
//! The measured run starts `rivet-engine` from the same target directory (build it first:
//! `cargo build --release -p rivet-engine`) or `$RIVET_ENGINE_BIN`, and the reference binary
//! from `tests/compat/node_modules`.

use anyhow::Context;
use rivet_bench_engine::{our_binary, reference_binary, run, table, Launch, Options};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).collect::<Vec<_>>();
    let smoke = args.iter().any(|a| a == "--smoke");
    let reference = reference_binary();
    let mut opts = if smoke {
        Options::smoke()
    } else {
        let reference = reference
            .exists()
            .then(|| Launch::Binary(reference.clone()));
        Options::full(Launch::Binary(our_binary()?), reference)
    };
    if opts.reference.is_none() {
        eprintln!(
            "reference engine skipped ({} not installed, or --smoke)",
            reference.display()
        );
    }
    args.retain(|a| a != "--smoke");
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> anyhow::Result<usize> {
            args.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--no-reference" => opts.reference = None,
            "--sleeping-reference" => opts.sleeping_reference = true,
            "--rounds" => opts.rounds = number("--rounds")?,
            "--latency" => opts.latency_creates = number("--latency")?,
            "--creates" => opts.throughput_creates = number("--creates")?,
            "--reference-creates" => {
                opts.reference_throughput_creates = number("--reference-creates")?
            }
            "--concurrency" => opts.concurrency = vec![number("--concurrency")?],
            "--wakes" => opts.wakes = number("--wakes")?,
            "--sleeping" => opts.sleeping = number("--sleeping")?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let figures = run(&opts).await?;
    print!("{}", table(&figures));
    Ok(())
}
