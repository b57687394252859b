//! `rivet-bench-rivetkit [--smoke] [--no-reference] [--rounds N] [--calls N]
//! [--calls-reference N] [--tp-seconds S] [--tp-callers N] [--tp-actors N] [--creates N]
//! [--creates-reference N] [--wakes N] [--wakes-reference N] [--fan N] [--broadcasts N]
//! [--mem-actors N] [--mem-actors-reference N] [--phases http,conn,throughput,create,wake,
//! broadcast,memory] [--targets strict,relaxed,reference] [--client-runtime spawn|block|current]
//! [--count-heap] [--quiet]`
//!
//! `rivet-bench-rivetkit host --endpoint URL` is the actor host process the benchmark starts.
//!
//! The measured run starts `rivet-engine` from the same target directory (build both first:
//! `cargo build --release -p rivet-engine -p rivet-bench-rivetkit`) or `$RIVET_ENGINE_BIN`, this
//! binary in `host` mode, and the reference engine and npm host from `tests/compat`.

use std::time::Duration;

use anyhow::Context;
use rivet_bench_rivetkit::{actors, run, table, Options, ReferenceLaunch, PHASES, TARGETS};

/// Counts live heap bytes, for the memory figure's `benchStats.heap` (the host is this binary).
#[global_allocator]
static ALLOC: actors::CountingAlloc = actors::CountingAlloc;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("host") {
        let endpoint = match args.get(1..) {
            Some([flag, url]) if flag == "--endpoint" => url.clone(),
            _ => anyhow::bail!("usage: rivet-bench-rivetkit host --endpoint URL"),
        };
        return actors::host_main(endpoint);
    }
    // Where the load generator runs: on a runtime worker (`spawn`, the default: as a
    // request handler of a service would call actors), in `block_on` on the main thread
    // (`block`: every call then hands off between the main thread and the workers that own
    // the sockets), or on a one-thread runtime (`current`).
    let mode = match args.iter().position(|a| a == "--client-runtime") {
        Some(i) => {
            let mode = args.get(i + 1).cloned().unwrap_or_default();
            args.drain(i..(i + 2).min(args.len()));
            mode
        }
        None => "spawn".to_string(),
    };
    let multi = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    match mode.as_str() {
        "spawn" => multi()?.block_on(async { tokio::spawn(bench(args)).await? }),
        "block" => multi()?.block_on(bench(args)),
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(bench(args)),
        other => anyhow::bail!("--client-runtime is spawn, block or current, not {other:?}"),
    }
}

async fn bench(mut args: Vec<String>) -> anyhow::Result<()> {
    let smoke = args.iter().any(|a| a == "--smoke");
    args.retain(|a| a != "--smoke");
    let host_bin = std::env::current_exe()?;
    let reference = ReferenceLaunch::from_checkout();
    let mut opts = if smoke {
        Options::smoke(host_bin)
    } else {
        let engine = rivet_bench_engine::our_binary()?;
        let reference = reference.installed().then(|| reference.clone());
        Options::full(engine, host_bin, reference)
    };
    if opts.reference.is_none() && !smoke {
        eprintln!(
            "reference skipped: {} or {}/node_modules/rivetkit not installed",
            reference.engine.display(),
            reference.compat_dir.display()
        );
    }
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> anyhow::Result<f64> {
            args.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse::<f64>()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--no-reference" => opts.reference = None,
            "--targets" => {
                let list = args.next().context("--targets needs a list")?;
                opts.targets = list.split(',').map(str::to_string).collect();
                if let Some(bad) = opts.targets.iter().find(|t| !TARGETS.contains(&t.as_str())) {
                    anyhow::bail!("unknown target {bad}; targets: {}", TARGETS.join(","));
                }
            }
            "--phases" => {
                let list = args.next().context("--phases needs a list")?;
                opts.phases = list.split(',').map(str::to_string).collect();
                if let Some(bad) = opts.phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
                    anyhow::bail!("unknown phase {bad}; phases: {}", PHASES.join(","));
                }
            }
            "--quiet" => opts.verbose = false,
            "--count-heap" => opts.count_heap = true,
            "--rounds" => opts.rounds = number(&arg)? as usize,
            "--calls" => opts.seq_calls = number(&arg)? as usize,
            "--calls-reference" => opts.seq_calls_reference = number(&arg)? as usize,
            "--tp-seconds" => opts.tp_duration = Duration::from_secs_f64(number(&arg)?),
            "--tp-callers" => opts.tp_callers = number(&arg)? as usize,
            "--tp-actors" => opts.tp_actors = number(&arg)? as usize,
            "--creates" => opts.creates = number(&arg)? as usize,
            "--creates-reference" => opts.creates_reference = number(&arg)? as usize,
            "--wakes" => opts.wakes = number(&arg)? as usize,
            "--wakes-reference" => opts.wakes_reference = number(&arg)? as usize,
            "--fan" => opts.fan = number(&arg)? as usize,
            "--broadcasts" => opts.broadcasts = number(&arg)? as usize,
            "--mem-actors" => opts.mem_actors = number(&arg)? as usize,
            "--mem-actors-reference" => opts.mem_actors_reference = number(&arg)? as usize,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let report = run(&opts).await?;
    print!("{}", table(&report));
    Ok(())
}
