//! Benchmark program for rivet-bus; figures are recorded in docs/benchmarks.md.
//!
//! Per driver: publish → one subscriber (messages/s), fan-out to 4 subscribers (deliveries/s)
//! and sequential request/reply latency (p50, p99). NATS and PostgreSQL run with the publisher and
//! the subscribers on two separate buses, as two engine nodes would.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::StreamExt;
use rivet_bus::{Bus, BusConfig};

/// What to run.
#[derive(Debug, Clone)]
pub struct Opts {
    /// A tiny run that only checks everything works.
    pub smoke: bool,
    /// Drivers to measure: `memory`, `nats`, `postgres`.
    pub drivers: Vec<String>,
    /// NATS server URL (default `$RIVET_TEST_NATS_URL`, else nats://127.0.0.1:4222).
    pub nats_url: String,
    /// PostgreSQL URL (default `$RIVET_TEST_PG_URL`, else postgres://postgres@127.0.0.1:5432/test).
    pub postgres_url: String,
    /// Payload size of every message, in bytes.
    pub payload: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            smoke: false,
            drivers: vec!["memory".into(), "nats".into(), "postgres".into()],
            nats_url: std::env::var("RIVET_TEST_NATS_URL")
                .unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
            postgres_url: std::env::var("RIVET_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            payload: 128,
        }
    }
}

/// Figures for one driver.
#[derive(Debug, Clone)]
pub struct Row {
    /// Driver name.
    pub driver: String,
    /// Messages published and received.
    pub messages: usize,
    /// Publish → one subscriber, messages received per second.
    pub one_sub_per_s: f64,
    /// Fan-out subscribers.
    pub fanout_subs: usize,
    /// Fan-out: messages published per second (each delivered to every subscriber).
    pub fanout_published_per_s: f64,
    /// Fan-out: deliveries per second (published × subscribers).
    pub fanout_delivered_per_s: f64,
    /// Requests made.
    pub requests: usize,
    /// Request/reply median latency.
    pub rr_p50: Duration,
    /// Request/reply 99th percentile latency.
    pub rr_p99: Duration,
}

struct Sizes {
    messages: usize,
    requests: usize,
}

fn sizes(driver: &str, smoke: bool) -> Sizes {
    match (driver, smoke) {
        (_, true) => Sizes {
            messages: 200,
            requests: 20,
        },
        ("memory", false) => Sizes {
            messages: 1_000_000,
            requests: 50_000,
        },
        ("nats", false) => Sizes {
            messages: 200_000,
            requests: 10_000,
        },
        _ => Sizes {
            messages: 10_000,
            requests: 1_000,
        },
    }
}

/// Runs the benchmark and returns one row per driver.
pub async fn run(opts: &Opts) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for driver in &opts.drivers {
        let config = match driver.as_str() {
            "memory" => BusConfig::Memory,
            "nats" => BusConfig::Nats {
                url: opts.nats_url.clone(),
            },
            "postgres" => BusConfig::Postgres {
                url: opts.postgres_url.clone(),
            },
            other => bail!("unknown driver {other}"),
        };
        let publisher = Bus::connect(config.clone()).await?;
        let receiver = match config {
            BusConfig::Memory => publisher.clone(),
            _ => Bus::connect(config).await?,
        };
        let sizes = sizes(driver, opts.smoke);
        let payload = Bytes::from(vec![0x5a; opts.payload]);
        let prefix = format!("bench{}", std::process::id());

        let one = throughput(
            &publisher,
            &receiver,
            &format!("{prefix}.one"),
            1,
            sizes.messages,
            &payload,
        )
        .await
        .with_context(|| format!("{driver}: one subscriber"))?;
        let fanout_subs = 4;
        let fan = throughput(
            &publisher,
            &receiver,
            &format!("{prefix}.fan"),
            fanout_subs,
            sizes.messages / fanout_subs,
            &payload,
        )
        .await
        .with_context(|| format!("{driver}: fan-out"))?;
        let (p50, p99) = request_reply(
            &publisher,
            &receiver,
            &format!("{prefix}.rr"),
            sizes.requests,
            &payload,
        )
        .await
        .with_context(|| format!("{driver}: request/reply"))?;
        let fan_pub = (sizes.messages / fanout_subs) as f64 / fan.as_secs_f64();
        rows.push(Row {
            driver: driver.clone(),
            messages: sizes.messages,
            one_sub_per_s: sizes.messages as f64 / one.as_secs_f64(),
            fanout_subs,
            fanout_published_per_s: fan_pub,
            fanout_delivered_per_s: fan_pub * fanout_subs as f64,
            requests: sizes.requests,
            rr_p50: p50,
            rr_p99: p99,
        });
        publisher.close().await?;
        receiver.close().await?;
    }
    Ok(rows)
}

/// Time from the first publish until every one of `subs` subscribers received `n` messages.
async fn throughput(
    publisher: &Bus,
    receiver: &Bus,
    subject: &str,
    subs: usize,
    n: usize,
    payload: &Bytes,
) -> anyhow::Result<Duration> {
    let mut tasks = Vec::new();
    for _ in 0..subs {
        let mut sub = receiver.subscribe(subject).await?;
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                match sub.next().await {
                    Some(_) => got += 1,
                    None => break,
                }
            }
            got
        }));
    }
    let started = Instant::now();
    for _ in 0..n {
        publisher.publish(subject, payload.clone()).await?;
    }
    let deadline = Duration::from_secs(600);
    for task in tasks {
        let got = tokio::time::timeout(deadline, task)
            .await
            .context("subscriber did not receive every message in time")??;
        if got != n {
            bail!("subscriber received {got} of {n} messages");
        }
    }
    Ok(started.elapsed())
}

/// Sequential requests to an echo responder on `receiver`; returns (p50, p99).
async fn request_reply(
    publisher: &Bus,
    receiver: &Bus,
    subject: &str,
    n: usize,
    payload: &Bytes,
) -> anyhow::Result<(Duration, Duration)> {
    let mut svc = receiver.queue_subscribe(subject, "bench").await?;
    let responder = tokio::spawn(async move {
        while let Some(req) = svc.next().await {
            let _ = req.respond(req.payload().clone()).await;
        }
    });
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        publisher
            .request(subject, payload.clone(), Duration::from_secs(10))
            .await?;
        latencies.push(started.elapsed());
    }
    responder.abort();
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok((pick(0.50), pick(0.99)))
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| driver | messages | publish → 1 sub (msg/s) | fan-out to 4: published/s | fan-out deliveries/s | requests | req/reply p50 | req/reply p99 |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.1} µs | {:.1} µs |\n",
            r.driver,
            r.messages,
            r.one_sub_per_s,
            r.fanout_published_per_s,
            r.fanout_delivered_per_s,
            r.requests,
            r.rr_p50.as_secs_f64() * 1e6,
            r.rr_p99.as_secs_f64() * 1e6,
        ));
    }
    out
}
