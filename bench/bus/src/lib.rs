//! Benchmark program for rivet-bus; figures are recorded in docs/benchmarks.md.
