//! Benchmark program for rivet-client-protocol; figures are recorded in docs/benchmarks.md.
