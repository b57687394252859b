//! `cargo run --release -p rivet-bench-store -- [--smoke] [--drivers fs-sync,fs-nosync,postgres,memory]`

use std::time::Duration;

use clap::Parser;
use rivet_bench_store::{run, DriverKind, Options};

/// Benchmark of rivet-store drivers.
#[derive(Parser, Debug)]
struct Args {
    /// Tiny run that only checks every phase works.
    #[arg(long)]
    smoke: bool,
    /// Comma-separated drivers: fs-sync, fs-nosync, postgres, memory.
    #[arg(long, value_delimiter = ',')]
    drivers: Option<Vec<DriverKind>>,
    /// Seconds per timed phase.
    #[arg(long)]
    seconds: Option<f64>,
    /// Comma-separated concurrent writer counts (default 1,16,64).
    #[arg(long, value_delimiter = ',')]
    writers: Option<Vec<usize>>,
    /// Only the commit phases (no reads, scans).
    #[arg(long)]
    commits_only: bool,
    /// Skip the raw fjall rows.
    #[arg(long)]
    no_raw: bool,
    /// PostgreSQL URL.
    #[arg(long)]
    pg_url: Option<String>,
}

fn main() {
    let args = Args::parse();
    let mut opts = if args.smoke {
        Options::smoke()
    } else {
        Options::full()
    };
    if let Some(d) = args.drivers {
        opts.drivers = d;
    }
    if let Some(s) = args.seconds {
        opts.phase = Duration::from_secs_f64(s);
    }
    if let Some(w) = args.writers {
        opts.writers = w;
    }
    opts.commits_only = args.commits_only;
    if args.no_raw {
        opts.raw_fjall = false;
    }
    if let Some(url) = args.pg_url {
        opts.pg_url = url;
    }
    println!(
        "rivet-store benchmark: {} s phases, drivers {:?}",
        opts.phase.as_secs_f64(),
        opts.drivers
    );
    if let Err(e) = run(&opts) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
