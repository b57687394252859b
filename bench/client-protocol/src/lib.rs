//! Benchmark program for rivet-client-protocol; figures are recorded in docs/benchmarks.md.
//!
//! Measures encode+decode throughput of an `ActionRequest` / `ActionResponse` pair (the
//! WebSocket messages of one action call) in each client encoding.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rivet_client_protocol::{
    ActionRequest, ActionResponse, Encoding, Message, ToClient, ToServer, Value,
};

/// How long to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Minimum measuring time per encoding.
    pub duration: Duration,
    /// Untimed warm-up iterations per encoding.
    pub warmup: u64,
}

impl Options {
    /// The full run.
    pub fn full() -> Self {
        Options {
            duration: Duration::from_secs(3),
            warmup: 20_000,
        }
    }

    /// A tiny run that only checks the program works.
    pub fn smoke() -> Self {
        Options {
            duration: Duration::from_millis(20),
            warmup: 10,
        }
    }
}

/// The figures for one encoding.
#[derive(Debug, Clone)]
pub struct EncodingResult {
    /// The encoding measured.
    pub encoding: Encoding,
    /// Encoded size of the request.
    pub request_bytes: usize,
    /// Encoded size of the response.
    pub response_bytes: usize,
    /// Request+response pairs encoded and decoded per second.
    pub pairs_per_sec: f64,
    /// Encoded bytes processed (encoded once and decoded once) per second.
    pub mib_per_sec: f64,
}

/// A typical action call: a few scalar arguments, a small object and 64 bytes of binary.
pub fn sample_messages() -> (ToServer, ToClient) {
    let args = Value::Array(vec![
        Value::text("alice"),
        Value::Int(42),
        Value::object([
            ("title", Value::text("Write the benchmark")),
            ("done", Value::Bool(false)),
            ("priority", Value::Float(0.75)),
            (
                "tags",
                Value::Array(vec![Value::text("bench"), Value::text("codec")]),
            ),
            ("blob", Value::uint8_array(vec![7u8; 64])),
        ]),
    ]);
    let output = Value::object([
        ("id", Value::text("9ap8d3k2l00")),
        ("count", Value::Int(1_234_567)),
        ("total", Value::BigInt(9_007_199_254_740_993)),
        ("ratio", Value::Float(0.125)),
        (
            "items",
            Value::Array(
                (0..8)
                    .map(|i| Value::object([("n", Value::Int(i)), ("label", Value::text("item"))]))
                    .collect(),
            ),
        ),
        ("missing", Value::Undefined),
    ]);
    (
        ToServer::ActionRequest(ActionRequest {
            id: 17,
            name: "todos.add".into(),
            args,
        }),
        ToClient::ActionResponse(ActionResponse { id: 17, output }),
    )
}

/// One encode+decode of the request and of the response; returns bytes processed.
fn pair(req: &ToServer, resp: &ToClient, enc: Encoding) -> usize {
    let req_bytes = req.encode(enc);
    let req_back = ToServer::decode(&req_bytes, enc).expect("request decodes");
    black_box(&req_back);
    let resp_bytes = resp.encode(enc);
    let resp_back = ToClient::decode(&resp_bytes, enc).expect("response decodes");
    black_box(&resp_back);
    req_bytes.len() + resp_bytes.len()
}

/// Runs the benchmark for every encoding.
pub fn run(opts: &Options) -> Vec<EncodingResult> {
    let (req, resp) = sample_messages();
    Encoding::ALL
        .iter()
        .map(|&enc| {
            for _ in 0..opts.warmup {
                pair(&req, &resp, enc);
            }
            let start = Instant::now();
            let mut pairs: u64 = 0;
            let mut bytes: u64 = 0;
            while start.elapsed() < opts.duration {
                for _ in 0..64 {
                    bytes += pair(black_box(&req), black_box(&resp), enc) as u64;
                }
                pairs += 64;
            }
            let secs = start.elapsed().as_secs_f64();
            EncodingResult {
                encoding: enc,
                request_bytes: req.encode(enc).len(),
                response_bytes: resp.encode(enc).len(),
                pairs_per_sec: pairs as f64 / secs,
                // Each byte is written once and read once.
                mib_per_sec: (2 * bytes) as f64 / secs / (1024.0 * 1024.0),
            }
        })
        .collect()
}

/// Renders results as a Markdown table.
pub fn table(results: &[EncodingResult]) -> String {
    let mut out = String::from(
        "| encoding | request bytes | response bytes | pairs/s (encode+decode both) | MiB/s |\n|---|---:|---:|---:|---:|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.1} |\n",
            r.encoding.as_str(),
            r.request_bytes,
            r.response_bytes,
            r.pairs_per_sec,
            r.mib_per_sec
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let results = run(&Options::smoke());
        assert_eq!(results.len(), 3);
        for r in &results {
            assert!(r.pairs_per_sec > 0.0, "{r:?}");
            assert!(r.request_bytes > 0 && r.response_bytes > 0);
        }
        assert!(table(&results).contains("| bare |"));
    }
}
