//! Prometheus metrics: process figures, store commits and bus traffic, read at scrape time.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use rivet_bus::Bus;
use rivet_store::Db;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds the engine's registry.
pub fn registry(db: Db, bus: Bus) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ProcessCollector {
        start_time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    }));
    registry.register_collector(Box::new(StoreCollector(db)));
    registry.register_collector(Box::new(BusCollector(bus)));
    registry
}

/// Renders the registry in the text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(%error, "cannot encode metrics");
    }
    out
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

#[derive(Debug)]
struct ProcessCollector {
    start_time: f64,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let process = read_process();
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds.",
            self.start_time,
        )?;
        if let Some(rss) = process.resident_bytes {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                rss as f64,
            )?;
        }
        if let Some(cpu) = process.cpu_seconds {
            let metric = ConstCounter::new(cpu);
            metric.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?)?;
        }
        if let Some(fds) = process.open_fds {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                fds as f64,
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct ProcessFigures {
    resident_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    open_fds: Option<u64>,
}

/// Reads `/proc/self`; figures the platform lacks are left out rather than reported as zero.
fn read_process() -> ProcessFigures {
    let mut figures = ProcessFigures::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        figures.resident_bytes = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024);
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let ticks = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
            .and_then(|fields| {
                let utime = fields.get(11)?.parse::<u64>().ok()?;
                let stime = fields.get(12)?.parse::<u64>().ok()?;
                Some(utime + stime)
            });
        // Linux reports CPU time in USER_HZ, which is 100 on every mainstream architecture.
        figures.cpu_seconds = ticks.map(|t| t as f64 / 100.0);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        figures.open_fds = Some(dir.count() as u64);
    }
    figures
}

struct StoreCollector(Db);

impl fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = self.0.stats();
        counter(
            &mut encoder,
            "rivet_store_commits",
            "Store transactions committed with writes.",
            stats.commits,
        )?;
        counter(
            &mut encoder,
            "rivet_store_conflicts",
            "Store commits rejected by a conflict.",
            stats.conflicts,
        )?;
        counter(
            &mut encoder,
            "rivet_store_retries",
            "Store transactions run again after a retryable error.",
            stats.retries,
        )?;
        let latency = &stats.commit_latency;
        let mut metric = encoder.encode_descriptor(
            "rivet_store_commit_duration_seconds",
            "Latency of store commits.",
            None,
            MetricType::Histogram,
        )?;
        let mut buckets = latency.buckets.clone();
        buckets.push((f64::INFINITY, latency.count));
        // The encoder wants per-bucket counts, not cumulative ones.
        let mut previous = 0;
        let per_bucket: Vec<(f64, u64)> = buckets
            .into_iter()
            .map(|(bound, cumulative)| {
                let n = cumulative.saturating_sub(previous);
                previous = cumulative;
                (bound, n)
            })
            .collect();
        metric.encode_histogram::<NoLabelSet>(latency.sum_seconds, latency.count, &per_bucket, None)
    }
}

struct BusCollector(Bus);

impl fmt::Debug for BusCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BusCollector")
    }
}

impl Collector for BusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = self.0.stats();
        for (name, help, value) in [
            (
                "rivet_bus_messages_published",
                "Bus messages published, including requests and replies.",
                stats.published,
            ),
            (
                "rivet_bus_messages_received",
                "Bus messages delivered to this node's subscriptions.",
                stats.received,
            ),
            ("rivet_bus_requests", "Bus requests sent.", stats.requests),
            (
                "rivet_bus_request_no_responders",
                "Bus requests that found no responder.",
                stats.no_responders,
            ),
            (
                "rivet_bus_request_timeouts",
                "Bus requests that timed out.",
                stats.timeouts,
            ),
        ] {
            counter(&mut encoder, name, help, value)?;
        }
        Ok(())
    }
}
