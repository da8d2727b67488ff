//! Micro-benchmarks (criterion) of Jiebanke's hot paths. Empty until the load-test and
//! benchmarks issue lands; see BENCHMARKS.md for what is measured so far.
