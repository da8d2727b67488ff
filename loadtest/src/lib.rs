//! The load generator that speaks the real protocol. Empty until the load-test and benchmarks
//! issue lands; see BENCHMARKS.md.
