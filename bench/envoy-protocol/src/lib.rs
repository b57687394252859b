//! Benchmark program for rivet-envoy-protocol; figures are recorded in docs/benchmarks.md.
//!
//! Workloads: a tunnelled HTTP request (`ToEnvoy` RequestStart with a 1 KiB body and typical
//! headers) and a `ToEnvoy::Commands` batch of 100 StartActor commands, each in versions 8 and 6.
//! For each, encode alone, decode alone, and encode+decode are timed; throughput is reported in
//! messages per second and MB/s of encoded bytes.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rivet_envoy_protocol::{
    decode, encode, encode_versioned, ActorCheckpoint, ActorConfig, Command, CommandStartActor,
    CommandWrapper, Headers, MessageId, ProtocolVersion, ToEnvoy, ToEnvoyRequestStart,
    ToEnvoyTunnelMessage, ToEnvoyTunnelMessageKind,
};

/// How long to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Minimum wall time per measurement.
    pub min_time: Duration,
    /// Minimum iterations per measurement.
    pub min_iters: u64,
}

impl Options {
    /// The full run (about 2 s per measurement).
    pub fn full() -> Self {
        Self {
            min_time: Duration::from_secs(2),
            min_iters: 1000,
        }
    }

    /// A tiny run that only checks everything works.
    pub fn smoke() -> Self {
        Self {
            min_time: Duration::from_millis(1),
            min_iters: 3,
        }
    }
}

/// One measured workload.
#[derive(Debug, Clone)]
pub struct WorkloadResult {
    /// Workload name.
    pub name: &'static str,
    /// Protocol version.
    pub version: u16,
    /// Encoded size of one message.
    pub bytes: usize,
    /// Encodes per second.
    pub encode_per_s: f64,
    /// Decodes per second.
    pub decode_per_s: f64,
    /// Encode+decode round trips per second.
    pub roundtrip_per_s: f64,
}

impl WorkloadResult {
    fn mb_per_s(&self, per_s: f64) -> f64 {
        per_s * self.bytes as f64 / 1e6
    }
}

/// A tunnelled `POST` with a 1 KiB body, as the gateway sends it.
pub fn tunnel_request() -> ToEnvoy {
    let headers: Headers = [
        ("host", "127.0.0.1:6420"),
        ("content-type", "application/json"),
        ("accept", "*/*"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) rivet-bench"),
        ("x-rivet-ray-id", "01J9Z8Y7X6W5V4T3S2R1Q0P9N8"),
        ("x-rivet-target", "actor"),
        ("content-length", "1024"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ToEnvoy::TunnelMessage(ToEnvoyTunnelMessage {
        message_id: MessageId {
            gateway_id: [0x9e, 0xa9, 0x01, 0x2e],
            request_id: [0xde, 0xfc, 0x99, 0x01],
            message_index: 0,
        },
        message_kind: ToEnvoyTunnelMessageKind::RequestStart(ToEnvoyRequestStart {
            actor_id: "1oufyekvve2a16lluh10fi8i12cl00".into(),
            actor_generation: None,
            method: "POST".into(),
            path: "/action/increment?x=1".into(),
            headers,
            body: Some((0..1024u32).map(|i| (i % 251) as u8).collect()),
            stream: false,
            response_stream: false,
        }),
    })
}

/// A batch of 100 StartActor commands.
pub fn start_batch() -> ToEnvoy {
    ToEnvoy::Commands(
        (0..100)
            .map(|i| CommandWrapper {
                checkpoint: ActorCheckpoint {
                    actor_id: format!("{i:0>28}00"),
                    generation: 1,
                    index: 1,
                },
                inner: Command::StartActor(CommandStartActor {
                    config: ActorConfig {
                        name: "counter".into(),
                        key: Some(format!("[\"room-{i}\"]")),
                        create_ts: 1_795_334_396_859,
                        input: Some(b"{\"count\":0}".to_vec()),
                    },
                    hibernating_requests: Vec::new(),
                    preloaded_kv: None,
                }),
            })
            .collect(),
    )
}

fn rate(opts: &Options, mut f: impl FnMut()) -> f64 {
    // Warm up caches and the allocator.
    for _ in 0..opts.min_iters.min(100) {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while n < opts.min_iters || start.elapsed() < opts.min_time {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn measure(
    opts: &Options,
    name: &'static str,
    v: ProtocolVersion,
    msg: &ToEnvoy,
) -> WorkloadResult {
    let bytes = encode(v, msg).expect("encode");
    let back: ToEnvoy = decode(v, &bytes).expect("decode");
    assert_eq!(encode(v, &back).expect("re-encode"), bytes, "round trip");
    let encode_per_s = rate(opts, || {
        black_box(encode(v, black_box(msg)).expect("encode"));
    });
    let decode_per_s = rate(opts, || {
        black_box(decode::<ToEnvoy>(v, black_box(&bytes)).expect("decode"));
    });
    let roundtrip_per_s = rate(opts, || {
        let b = encode(v, black_box(msg)).expect("encode");
        black_box(decode::<ToEnvoy>(v, &b).expect("decode"));
    });
    WorkloadResult {
        name,
        version: v.number(),
        bytes: bytes.len(),
        encode_per_s,
        decode_per_s,
        roundtrip_per_s,
    }
}

/// Runs every workload in both versions.
pub fn run(opts: &Options) -> Vec<WorkloadResult> {
    let tunnel = tunnel_request();
    let batch = start_batch();
    // The serverless start body must stay decodable too (version prefix + ToEnvoy).
    encode_versioned(ProtocolVersion::V8, &batch).expect("versioned");
    let mut out = Vec::new();
    for v in [ProtocolVersion::V8, ProtocolVersion::V6] {
        out.push(measure(opts, "tunnel HTTP request, 1 KiB body", v, &tunnel));
        out.push(measure(
            opts,
            "ToEnvoy commands, 100 x StartActor",
            v,
            &batch,
        ));
    }
    out
}

/// Markdown table of the results.
pub fn table(results: &[WorkloadResult]) -> String {
    let mut s = String::from(
        "| workload | v | bytes/msg | encode msgs/s (MB/s) | decode msgs/s (MB/s) | encode+decode msgs/s (MB/s) |\n|---|---|---|---|---|---|\n",
    );
    for r in results {
        s.push_str(&format!(
            "| {} | {} | {} | {:.0} ({:.0}) | {:.0} ({:.0}) | {:.0} ({:.0}) |\n",
            r.name,
            r.version,
            r.bytes,
            r.encode_per_s,
            r.mb_per_s(r.encode_per_s),
            r.decode_per_s,
            r.mb_per_s(r.decode_per_s),
            r.roundtrip_per_s,
            r.mb_per_s(r.roundtrip_per_s),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let results = run(&Options::smoke());
        assert_eq!(results.len(), 4);
        for r in &results {
            assert!(r.bytes > 1000, "{} encodes to {} bytes", r.name, r.bytes);
            assert!(r.encode_per_s > 0.0 && r.decode_per_s > 0.0 && r.roundtrip_per_s > 0.0);
        }
        assert!(table(&results).contains("100 x StartActor"));
    }
}
