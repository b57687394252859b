//! Benchmark program for rivet-envoy-protocol; figures are recorded in docs/benchmarks.md.
