//! `rivet-bench-bus [--smoke] [--drivers memory,nats,postgres] [--payload BYTES]`

use rivet_bench_bus::{run, table, Opts};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut opts = Opts::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => opts.smoke = true,
            "--drivers" => {
                let list = args.next().unwrap_or_default();
                opts.drivers = list.split(',').map(str::to_owned).collect();
            }
            "--payload" => {
                opts.payload = args.next().unwrap_or_default().parse()?;
            }
            "--nats-url" => opts.nats_url = args.next().unwrap_or_default(),
            "--postgres-url" => opts.postgres_url = args.next().unwrap_or_default(),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let rows = run(&opts).await?;
    println!("payload {} bytes, smoke={}", opts.payload, opts.smoke);
    print!("{}", table(&rows));
    Ok(())
}
