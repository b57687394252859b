//! `cargo run --release -p rivet-bench-client-protocol [-- --smoke]`

use rivet_bench_client_protocol::{run, table, Options};

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let opts = if smoke {
        Options::smoke()
    } else {
        Options::full()
    };
    let results = run(&opts);
    println!("client protocol codec: ActionRequest + ActionResponse, encode + decode");
    print!("{}", table(&results));
}
