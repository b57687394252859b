//! `cargo run --release -p rivet-bench-envoy-protocol [-- --smoke]`

use rivet_bench_envoy_protocol::{run, table, Options};

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let opts = if smoke {
        Options::smoke()
    } else {
        Options::full()
    };
    let results = run(&opts);
    println!("envoy protocol codec: encode / decode / encode+decode of ToEnvoy messages");
    print!("{}", table(&results));
}
