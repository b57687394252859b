//! Benchmark program for rivet-store; figures are recorded in docs/benchmarks.md.
